// tests/test_categorical_api.cpp again, with the AVX-512 kernels switched off (NLL_NO_AVX512): the
// fused row kernel's Eigen-packet path (16-bit rows widened into a float buffer) against the
// per-example function, NaN/inf rows, bfloat16 and half, the 128256-class vocabulary.
#define NLL_NO_AVX512 1
#include "test_categorical_api.cpp"
