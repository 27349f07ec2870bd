// nll: negative-log-likelihood losses on Eigen. SPDX-License-Identifier: MIT
#pragma once

/// The library version; CMake reads these three lines, so they stay the one source of truth.
#define NLL_VERSION_MAJOR 0
#define NLL_VERSION_MINOR 1
#define NLL_VERSION_PATCH 0

#define NLL_DETAIL_STR2(x) #x
#define NLL_DETAIL_STR(x) NLL_DETAIL_STR2(x)
/// "MAJOR.MINOR.PATCH"
#define NLL_VERSION_STRING                                                                                             \
  NLL_DETAIL_STR(NLL_VERSION_MAJOR) "." NLL_DETAIL_STR(NLL_VERSION_MINOR) "." NLL_DETAIL_STR(NLL_VERSION_PATCH)
