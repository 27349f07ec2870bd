#!/usr/bin/python3
"""High-precision references for include/nll/dist/gaussian.hpp (tests/test_gaussian.cpp).

Run with /usr/bin/python3 (it has mpmath and numpy):  /usr/bin/python3 scripts/gen_reference_gaussian.py
Writes tests/data/gaussian_var.txt, gaussian_logvar.txt and gaussian_fixed.txt.

Every input is a float32 value (so it is exact in float, double and long double) written as a C99
hex float; every output is the exact value of the formula at those inputs, computed with mpmath at
50 significant digits and printed with 25. Where an output is a sum or difference of terms that can
cancel, a "scale" column gives the sum of the terms' magnitudes: the tests measure errors relative
to max(|exact|, scale), i.e. relative to the size of what was computed, not of what survived the
cancellation (the inputs' own rounding already limits what any implementation can reach there).

Formulas (torch.nn.functional.gaussian_nll_loss, torch 1.13, for the variance form):
  var form:     v = max(var, eps), d = mu - y
                loss = 1/2 (log v + d^2/v) [+ 1/2 log 2 pi]
                dloss/dmu = d/v;  dloss/dvar = 1/2 (1 - d^2/v)/v   (straight through the clamp, as torch)
  log-var form: loss = 1/2 (s + d^2 e^-s) [+ 1/2 log 2 pi]
                dloss/dmu = d e^-s;  dloss/ds = 1/2 (1 - d^2 e^-s)
  fixed sigma:  loss = d^2/(2 sigma^2) [+ log sigma + 1/2 log 2 pi];  dloss/dmu = d/sigma^2
  mse:          loss = d^2;  dloss/dmu = 2 d
"""
import os

import mpmath
import numpy as np
from mpmath import mp, mpf

mp.dps = 50
HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "tests", "data")


def f32(x):
    return float(np.float32(x))


def hexf(x):
    if x != x:
        return "nan"
    if x in (float("inf"), float("-inf")):
        return "inf" if x > 0 else "-inf"
    return float(x).hex()


def num(x):
    return mpmath.nstr(x, 25, strip_zeros=False, min_fixed=-5, max_fixed=5)


def next_f32(x, k):
    """x moved by k float32 ulps (k may be negative)."""
    v = np.float32(x)
    direction = np.float32(np.inf) if k > 0 else np.float32(-np.inf)
    for _ in range(abs(k)):
        v = np.nextafter(v, direction, dtype=np.float32)
    return float(v)


HALF_LOG_2PI = mpmath.log(2 * mpmath.pi) / 2

# (mu, y) pairs: zero residual, ordinary ones, both signs, huge residuals, tiny residuals.
PAIRS = [(0.0, 0.0), (1.0, 0.0), (0.5, -1.25), (3.0, 3.5), (-2.0, 7.0), (f32(0.1), f32(0.2)),
         (1000.0, -1000.0), (f32(1e10), 0.0), (f32(1e18), f32(-1e18)), (f32(1e30), 0.0),
         (f32(1e-20), 0.0), (0.0, f32(-3e-3))]


def var_table():
    rows = []
    for eps in (2.0 ** -20, f32(1e-6), 0.25):
        variances = sorted(set([0.0, eps / 2, next_f32(eps, -1), eps, next_f32(eps, 1), next_f32(eps, 2), 2 * eps,
                                0.5, 1.0, 4.0, f32(1e10), f32(1e38)]))
        for full in (0, 1):
            for mu, y in PAIRS:
                for var in variances:
                    v = max(mpf(var), mpf(eps))
                    d = mpf(mu) - mpf(y)
                    q = d * d / v
                    c = HALF_LOG_2PI if full else mpf(0)
                    loss = (mpmath.log(v) + q) / 2 + c
                    loss_scale = (abs(mpmath.log(v)) + q) / 2 + c
                    dmu = d / v
                    dvar = (1 - q) / (2 * v)
                    dvar_scale = (1 + q) / (2 * v)
                    rows.append(" ".join([hexf(eps), str(full), hexf(mu), hexf(var), hexf(y), num(loss),
                                          num(loss_scale), num(dmu), num(dvar), num(dvar_scale)]))
    header = ("# gaussian_nll_loss references (mpmath, 50 digits): scripts/gen_reference_gaussian.py\n"
              "# eps full mu var y loss loss_scale dloss/dmu dloss/dvar dvar_scale\n")
    return header + "\n".join(rows) + "\n"


def logvar_table():
    rows = []
    logvars = [-80.0, -50.5, -10.0, -1.0, -0.125, 0.0, 0.5, 1.0, 3.25, 10.0, 50.0, 80.0]
    for full in (0, 1):
        for mu, y in PAIRS:
            for s in logvars:
                d = mpf(mu) - mpf(y)
                z2 = d * d * mpmath.exp(-mpf(s))
                c = HALF_LOG_2PI if full else mpf(0)
                loss = (mpf(s) + z2) / 2 + c
                loss_scale = (abs(mpf(s)) + z2) / 2 + c
                dmu = d * mpmath.exp(-mpf(s))
                ds = (1 - z2) / 2
                ds_scale = (1 + z2) / 2
                rows.append(" ".join([str(full), hexf(mu), hexf(s), hexf(y), num(loss), num(loss_scale), num(dmu),
                                      num(ds), num(ds_scale)]))
    header = ("# gaussian_nll_loss_logvar references (mpmath, 50 digits): scripts/gen_reference_gaussian.py\n"
              "# full mu log_var y loss loss_scale dloss/dmu dloss/dlog_var dlog_var_scale\n")
    return header + "\n".join(rows) + "\n"


def fixed_table():
    rows = []
    for mu, y in PAIRS:
        d = mpf(mu) - mpf(y)
        rows.append(" ".join(["mse", "1", "0", hexf(mu), hexf(y), num(d * d), num(d * d), num(2 * d)]))
        for sigma in (1.0, 0.5, 2.0, 0.75, f32(1e-3), f32(1e3)):
            for constants in (0, 1):
                s = mpf(sigma)
                q = d * d / (2 * s * s)
                c = (mpmath.log(s) + HALF_LOG_2PI) if constants else mpf(0)
                rows.append(" ".join(["fixed", hexf(sigma), str(constants), hexf(mu), hexf(y), num(q + c),
                                      num(q + abs(c)), num(d / (s * s))]))
    header = ("# mse_loss and gaussian_nll_loss_fixed references (mpmath, 50 digits): "
              "scripts/gen_reference_gaussian.py\n"
              "# kind sigma include_constants mu y loss loss_scale dloss/dmu\n")
    return header + "\n".join(rows) + "\n"


def main():
    os.makedirs(DATA, exist_ok=True)
    for name, text in (("gaussian_var.txt", var_table()), ("gaussian_logvar.txt", logvar_table()),
                       ("gaussian_fixed.txt", fixed_table())):
        with open(os.path.join(DATA, name), "w") as f:
            f.write(text)
        print("wrote", name, text.count("\n") - 2, "records")


if __name__ == "__main__":
    main()
