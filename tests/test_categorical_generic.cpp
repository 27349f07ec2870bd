// tests/test_categorical.cpp again, with the AVX-512 kernels switched off (NLL_NO_AVX512): the fused
// row kernel then runs on Eigen packets with the Cephes exponential (pexp_nonpositive), as on
// machines without AVX-512, and is held to the same mpmath references and budgets.
#define NLL_NO_AVX512 1
#include "test_categorical.cpp"
