// tests/test_log_sum_exp.cpp again, with the AVX-512 fast path switched off (NLL_NO_AVX512), so the
// generic Eigen path of log_sum_exp and LogSumExpState is held to the same mpmath references and
// budgets on machines where the fast path would otherwise take every float input.
#define NLL_NO_AVX512 1
#include "test_log_sum_exp.cpp"
