// nll: negative-log-likelihood losses on Eigen. SPDX-License-Identifier: MIT
//
// The umbrella header: everything public in one include.
#pragma once

#include "version.hpp"

#include "core/check.hpp"
#include "core/distribution.hpp"
#include "core/nll.hpp"
#include "core/options.hpp"

#include "math/log_sum_exp.hpp"
#include "math/softmax.hpp"
#include "math/softplus.hpp"

#include "dist/bernoulli.hpp"
#include "dist/categorical.hpp"
#include "dist/gaussian.hpp"
