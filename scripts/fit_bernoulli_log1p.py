#!/usr/bin/python3
"""The polynomial behind the float logits kernel of include/nll/dist/bernoulli.hpp.

log1p(e) for e = exp(-|x|) in [0, 1] is evaluated as e * q(e) with q(e) ~ log1p(e)/e a degree-9
polynomial: a Chebyshev fit on [0, 1] (mpmath.chebyfit, 40 digits), coefficients rounded to float.
log1p is analytic on a Bernstein ellipse around [0, 1] reaching -1, so the fit converges fast and
needs no range reduction. This script prints the coefficients (highest degree first) and the worst
relative error of e * q(e) evaluated in float32 with Horner's rule on 4001 points of [0, 1], against
mpmath's log1p (about 1.2 eps; tests/test_bernoulli.cpp checks the kernel against mpmath tables and
the scalar log1p path).

  /usr/bin/python3 scripts/fit_bernoulli_log1p.py
"""
import numpy as np
from mpmath import chebyfit, log1p, mp, mpf

mp.dps = 40
DEGREE = 9


def q(e):
    return log1p(e) / e if e != 0 else mpf(1)


poly, fit_error = chebyfit(q, [0, 1], DEGREE + 1, error=True)
coefficients = [np.float32(float(c)) for c in poly]
worst = 0.0
for e in np.linspace(0, 1, 4001, dtype=np.float64).astype(np.float32):
    acc = coefficients[0]
    for c in coefficients[1:]:
        acc = np.float32(acc * e + c)
    value = np.float32(e * acc)
    exact = log1p(mpf(float(e)))
    if exact != 0:
        worst = max(worst, float(abs((mpf(float(value)) - exact) / exact)))
print("coefficients (highest degree first):")
for c in coefficients:
    print("  %.9eF" % c)
print("fit error %.3e, worst relative error in float %.3f eps" % (fit_error, worst / np.finfo(np.float32).eps))
