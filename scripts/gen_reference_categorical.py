#!/usr/bin/python3
# nll: reference tables for the categorical family (include/nll/dist/categorical.hpp):
# cross_entropy with every option, nll_loss, entropy, kl_divergence and kl_div, computed with mpmath
# at 50 significant digits.
#
# Run from the repository root (the system python, which has mpmath):
#
#   /usr/bin/python3 scripts/gen_reference_categorical.py
#
# It (re)writes tests/data/categorical_cases.txt and tests/data/categorical_large.txt; the output is
# deterministic. The tables are read by tests/test_categorical.cpp.
#
# The formulas are written here from their definitions, independently of the C++ code:
#   z_c   = s(x_c)/T, s(x) = κ·tanh(x/κ) (soft-cap) or x; masked classes are left out entirely
#   lse   = log Σ_{c kept} exp(z_c)
#   index target y:  ℓ = (1−ε)·w_y·(lse − z_y) + ε/C'·Σ_c w_c·(lse − z_c) + λ·w_y·lse²
#   probabilities q: ℓ = Σ_c w_c·((1−ε)q_c + ε/C')·(lse − z_c) + λ·lse²
# (torch.nn.functional.cross_entropy's definition for the options torch has; z-loss from PaLM,
# soft-cap from Gemma 2), then the reduction: Σ_i w_i·ℓ_i / D with D = Σ_i w_i·v_i (v_i = w_{y_i}
# for indices, 1 for probabilities), 1 for sum/none, or the normaliser. The gradient of the
# reduced value is the analytic derivative of each row's ℓ (written out below at 50 digits),
# checked by this script against mpmath's numerical differentiation (mp.diff) of the row's loss
# for every row whose inputs are finite and moderate (|x| <= 100; for ±1e4 the differences of
# e^-20000-sized terms are below even 50 digits, and −inf has no neighbourhood).
#
# Inputs are float32 values (multiples of 1/64, or ±1e4, or −inf) so float, double and long double
# read the same numbers; options are doubles (0.1 is the double 0.1 in both languages). Inputs are
# written with repr (shortest round-trip), results with 30 significant digits (0 below 1e-4900).
#
# Record format (one case = consecutive lines; the first field names the line):
#   case <name> <kind> <N> <C>      kind: ce (class indices), ce_prob, ce_logit, nll, entropy, kl, kldiv
#   opt <key> <value>               reduction (none/sum/mean), label_smoothing, z_loss, soft_cap,
#                                   temperature, ignore_index, empty_mean (zero/nan), normalizer,
#                                   log_target (0/1), elementwise_mean (0/1)
#   x <N·C values>                  logits / log-probs / input (row-major)
#   t <N ints | N·C values>         targets (probabilities, target logits, or log-targets)
#   cw <C values>  cm <C 0/1>  w <N values>      class weight, class mask, per-example weight
#   value <v>  total_weight <tw>
#   per_example <N values>          reduction none: w_i·ℓ_i
#   rowloss <N values>              ℓ_i (the per-row loss output; 0 where the row does not count)
#   lse <N values>                  per-row log-sum-exp output (nan where the row does not count)
#   grad <N·C values>               gradient of the reduced value (none: of Σ w_i·ℓ_i)
#   end
# The large table (vocabulary 128256) generates its logits instead of listing them, identically
# in Python and C++: x[i][c] = (((i·7919 + c·104729) mod 2039) − 1019)/64 (exact in float);
# targets y_i = (i·31337 + 11) mod C; its gradient is listed only at a few (i, c) pairs:
#   gradat <i> <c> <value>
import math
import os
import random

from mpmath import mp, mpf

mp.dps = 50
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests', 'data')
NINF = -math.inf


def fmt_in(x):
    if isinstance(x, int):
        return str(x)
    if math.isnan(x):
        return 'nan'
    if math.isinf(x):
        return 'inf' if x > 0 else '-inf'
    return repr(float(x))


def fmt_out(v):
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return fmt_in(v)
    if mp.isnan(v):
        return 'nan'
    if mp.isinf(v):
        return 'inf' if v > 0 else '-inf'
    if v == 0 or abs(v) < mpf('1e-4900'):  # below long double's range: 0 in every C++ type
        return '0'
    return mp.nstr(v, 30, min_fixed=-5, max_fixed=5)


class Case:
    def __init__(self, name, kind, x, t, **opts):
        self.name, self.kind, self.x, self.t = name, kind, x, t
        self.n, self.c = len(x), len(x[0])
        self.reduction = opts.pop('reduction', 'mean')
        self.eps = opts.pop('label_smoothing', 0.0)
        self.lam = opts.pop('z_loss', 0.0)
        self.cap = opts.pop('soft_cap', 0.0)
        self.temp = opts.pop('temperature', 1.0)
        self.ignore = opts.pop('ignore_index', -100)
        self.empty_mean = opts.pop('empty_mean', 'zero')
        self.normalizer = opts.pop('normalizer', None)
        self.log_target = opts.pop('log_target', 0)
        self.elementwise_mean = opts.pop('elementwise_mean', 0)
        self.cw = opts.pop('cw', None)
        self.cm = opts.pop('cm', None)
        self.w = opts.pop('w', None)
        assert not opts, opts

    # ---- per-row losses from the definitions -------------------------------------------------
    def kept(self, c):
        return self.cm is None or self.cm[c] != 0

    def cwt(self, c):
        return mpf(1) if self.cw is None else mpf(self.cw[c])

    def z_of(self, x, c):
        v = mpf(x)
        if self.cap > 0:
            v = mpf(self.cap) * mp.tanh(v / mpf(self.cap))
        return v / mpf(self.temp)

    def lse(self, zs):
        kept = [z for c, z in enumerate(zs) if self.kept(c) and z != mp.ninf]
        if not kept:
            return mp.ninf
        m = max(kept)
        return m + mp.log(mp.fsum(mp.exp(z - m) for z in kept))

    def counts(self, i):
        if self.kind in ('ce', 'nll') and self.t[i] == self.ignore:
            return False
        if self.w is not None and self.w[i] == 0:
            return False
        return True

    def target_weight(self, i):
        if self.kind in ('ce', 'nll'):
            return self.cwt(self.t[i])
        if self.kind == 'kldiv' and self.elementwise_mean:
            return mpf(self.c)
        return mpf(1)

    def row_loss(self, xrow, i):
        """ℓ_i as an mpf for the row of inputs xrow (mpf or float values)."""
        c_all = range(self.c)
        if self.kind == 'nll':
            y = self.t[i]
            return -self.cwt(y) * mpf(xrow[y])
        if self.kind == 'entropy':
            zs = [mpf(v) for v in xrow]
            l = self.lse(zs)
            return mp.fsum(mp.exp(z - l) * (l - z) for z in zs if z != mp.ninf)
        if self.kind == 'kl':
            zq = [mpf(v) for v in xrow]
            zp = [mpf(v) for v in self.t[i]]
            lq, lp = self.lse(zq), self.lse(zp)
            return mp.fsum(mp.exp(zp[c] - lp) * ((zp[c] - lp) - (zq[c] - lq)) for c in c_all if zp[c] != mp.ninf)
        if self.kind == 'kldiv':
            s = mpf(0)
            for c in c_all:
                tv, xv = mpf(self.t[i][c]), mpf(xrow[c])
                if self.log_target:
                    s += mp.exp(tv) * (tv - xv)
                elif tv != 0:
                    s += tv * (mp.log(tv) - xv)
            return s
        zs = [self.z_of(v, c) if self.kept(c) else mp.ninf for c, v in enumerate(xrow)]
        l = self.lse(zs)
        cp = sum(1 for c in c_all if self.kept(c))
        eps = mpf(self.eps)
        if self.kind == 'ce':
            y = self.t[i]
            coef = {c: eps * self.cwt(c) / cp for c in c_all if self.kept(c)}
            coef[y] = coef.get(y, 0) + (1 - eps) * self.cwt(y)
            v = self.cwt(y)
        else:
            if self.kind == 'ce_logit':
                tz = [mpf(t) if self.kept(c) else mp.ninf for c, t in enumerate(self.t[i])]
                tl = self.lse(tz)
                q = [mp.exp(t - tl) if t != mp.ninf else mpf(0) for t in tz]
            else:
                q = [mpf(t) for t in self.t[i]]
            coef = {c: self.cwt(c) * ((1 - eps) * q[c] + eps / cp) for c in c_all if self.kept(c)}
            v = mpf(1)
        loss = mp.fsum(b * (l - zs[c]) for c, b in coef.items() if b != 0)
        return loss + mpf(self.lam) * v * l * l

    def weight(self, i):
        return mpf(1) if self.w is None else mpf(self.w[i])

    def total_weight(self):
        return mp.fsum(self.weight(i) * self.target_weight(i) for i in range(self.n) if self.counts(i))

    def denominator(self):
        if self.reduction != 'mean':
            return mpf(1)
        if self.normalizer is not None:
            return mpf(self.normalizer)
        return self.total_weight()

    def reduced(self, x):
        d = self.denominator()
        s = mp.fsum(self.weight(i) * self.row_loss(x[i], i) for i in range(self.n) if self.counts(i))
        if d == 0:
            return mp.nan if self.empty_mean == 'nan' else mpf(0)
        return s / d

    def row_gradient(self, xrow, i):
        """∂ℓ_i/∂x_ic, analytic, for every class c."""
        c_all = range(self.c)
        if self.kind == 'nll':
            return [-self.cwt(c) if c == self.t[i] else mpf(0) for c in c_all]
        if self.kind == 'kldiv':
            return [-(mp.exp(mpf(t)) if self.log_target else mpf(t)) for t in self.t[i]]
        if self.kind in ('entropy', 'kl'):
            zs = [mpf(v) for v in xrow]
            l = self.lse(zs)
            p = [mp.exp(z - l) if z != mp.ninf else mpf(0) for z in zs]
            if self.kind == 'entropy':
                h = self.row_loss(xrow, i)
                return [-p[c] * ((zs[c] - l) + h) if p[c] != 0 else mpf(0) for c in c_all]
            tz = [mpf(v) for v in self.t[i]]
            tl = self.lse(tz)
            return [p[c] - (mp.exp(tz[c] - tl) if tz[c] != mp.ninf else 0) for c in c_all]
        zs = [self.z_of(v, c) if self.kept(c) else mp.ninf for c, v in enumerate(xrow)]
        l = self.lse(zs)
        cp = sum(1 for c in c_all if self.kept(c))
        eps = mpf(self.eps)
        if self.kind == 'ce':
            y = self.t[i]
            b = [eps * self.cwt(c) / cp if self.kept(c) else mpf(0) for c in c_all]
            b[y] += (1 - eps) * self.cwt(y)
            v = self.cwt(y)
        else:
            if self.kind == 'ce_logit':
                tz = [mpf(t) if self.kept(c) else mp.ninf for c, t in enumerate(self.t[i])]
                tl = self.lse(tz)
                q = [mp.exp(t - tl) if t != mp.ninf else mpf(0) for t in tz]
            else:
                q = [mpf(t) for t in self.t[i]]
            b = [self.cwt(c) * ((1 - eps) * q[c] + eps / cp) if self.kept(c) else mpf(0) for c in c_all]
            v = mpf(1)
        a = mp.fsum(b) + 2 * mpf(self.lam) * v * l
        g = []
        for c in c_all:
            if not self.kept(c):
                g.append(mpf(0))
                continue
            p = mp.exp(zs[c] - l) if zs[c] != mp.ninf else mpf(0)
            xv = mpf(xrow[c])
            if self.cap > 0:
                dt = (1 / mp.cosh(xv / mpf(self.cap)) ** 2 if xv != mp.ninf else mpf(0)) / mpf(self.temp)
            else:
                dt = 1 / mpf(self.temp)
            g.append((p * a - b[c]) * dt)
        return g

    def gradient(self):
        d = self.denominator()
        g = [[mpf(0)] * self.c for _ in range(self.n)]
        for i in range(self.n):
            if not self.counts(i):
                continue
            if d == 0:
                if self.empty_mean == 'nan':
                    g[i] = [mp.nan] * self.c
                continue
            row = self.row_gradient(self.x[i], i)
            if all(math.isfinite(v) and abs(v) <= 100 for v in self.x[i]):
                big = max(abs(v) for v in row) or mpf(1)
                for c in range(self.c):
                    def f(u, i=i, c=c):
                        r = list(self.x[i])
                        r[c] = u
                        return self.row_loss(r, i)
                    numeric = mp.diff(f, mpf(self.x[i][c]))
                    assert abs(numeric - row[c]) <= mpf(10) ** -30 * big, (self.name, i, c, numeric, row[c])
            scale = self.weight(i) / d
            g[i] = [v * scale for v in row]
        return g

    def write(self, out):
        out.append('case %s %s %d %d' % (self.name, self.kind, self.n, self.c))
        out.append('opt reduction %s' % self.reduction)
        for key, val, default in (('label_smoothing', self.eps, 0.0), ('z_loss', self.lam, 0.0),
                                  ('soft_cap', self.cap, 0.0), ('temperature', self.temp, 1.0),
                                  ('ignore_index', self.ignore, -100), ('empty_mean', self.empty_mean, 'zero'),
                                  ('normalizer', self.normalizer, None), ('log_target', self.log_target, 0),
                                  ('elementwise_mean', self.elementwise_mean, 0)):
            if val != default:
                out.append('opt %s %s' % (key, val if isinstance(val, str) else fmt_in(val)))
        out.append('x ' + ' '.join(fmt_in(v) for row in self.x for v in row))
        if self.kind in ('ce', 'nll'):
            out.append('t ' + ' '.join(str(v) for v in self.t))
        elif self.t is not None:
            out.append('t ' + ' '.join(fmt_in(v) for row in self.t for v in row))
        if self.cw is not None:
            out.append('cw ' + ' '.join(fmt_in(v) for v in self.cw))
        if self.cm is not None:
            out.append('cm ' + ' '.join(str(v) for v in self.cm))
        if self.w is not None:
            out.append('w ' + ' '.join(fmt_in(v) for v in self.w))
        out.append('value ' + fmt_out(self.reduced(self.x)))
        out.append('total_weight ' + fmt_out(self.total_weight()))
        losses = [self.row_loss(self.x[i], i) if self.counts(i) else mpf(0) for i in range(self.n)]
        if self.reduction == 'none':
            out.append('per_example ' + ' '.join(fmt_out(self.weight(i) * losses[i]) for i in range(self.n)))
        if self.kind in ('ce', 'ce_prob', 'ce_logit'):
            empty = self.reduction == 'mean' and self.denominator() == 0 and self.empty_mean == 'zero'
            out.append('rowloss ' + ' '.join('0' if empty else fmt_out(v) for v in losses))
            lses = []
            for i in range(self.n):
                if empty or not self.counts(i):
                    lses.append('nan')
                    continue
                zs = [self.z_of(v, c) if self.kept(c) else mp.ninf for c, v in enumerate(self.x[i])]
                lses.append(fmt_out(self.lse(zs)))
            out.append('lse ' + ' '.join(lses))
        g = self.gradient()
        out.append('grad ' + ' '.join(fmt_out(v) for row in g for v in row))
        out.append('end')


def grid(rng, n, c, lo=-512, hi=512):
    """Logits that are multiples of 1/64 in [lo/64, hi/64]: exact in float."""
    return [[rng.randint(lo, hi) / 64.0 for _ in range(c)] for _ in range(n)]


def probs(rng, n, c):
    """Rows of probabilities k/64 summing to 1 (exact in float), some zero."""
    rows = []
    for _ in range(n):
        cuts = sorted(rng.randint(0, 64) for _ in range(c - 1))
        parts = [b - a for a, b in zip([0] + cuts, cuts + [64])]
        rows.append([p / 64.0 for p in parts])
    return rows


def cases():
    rng = random.Random(20261128)
    out = []
    x = grid(rng, 4, 5)
    y = [3, 0, 4, 1]
    for red in ('mean', 'sum', 'none'):
        out.append(Case('basic_' + red, 'ce', x, y, reduction=red))
    cw = [0.5, 2.0, 1.25, 1.0, 0.75]
    out.append(Case('class_weight_mean', 'ce', x, y, cw=cw))
    out.append(Case('class_weight_sum', 'ce', x, y, cw=cw, reduction='sum'))
    out.append(Case('ignore_default', 'ce', x, [3, -100, 4, -100], cw=cw))
    out.append(Case('ignore_custom', 'ce', x, [3, 2, 4, 2], ignore_index=2, reduction='none'))
    out.append(Case('all_ignored_zero', 'ce', x, [-100] * 4))
    out.append(Case('all_ignored_nan', 'ce', x, [-100] * 4, empty_mean='nan'))
    out.append(Case('all_ignored_sum', 'ce', x, [-100] * 4, reduction='sum'))
    out.append(Case('smoothing', 'ce', x, y, label_smoothing=0.1))
    out.append(Case('smoothing_weighted', 'ce', x, y, label_smoothing=0.25, cw=cw))
    out.append(Case('smoothing_one', 'ce', x, y, label_smoothing=1.0, reduction='sum'))
    out.append(Case('z_loss', 'ce', x, y, z_loss=1e-4))
    out.append(Case('z_loss_weighted', 'ce', x, y, z_loss=0.01, cw=cw))
    out.append(Case('soft_cap_5', 'ce', x, y, soft_cap=5.0))
    out.append(Case('temperature_half', 'ce', x, y, temperature=0.5))
    out.append(Case('temperature_1_5', 'ce', x, y, temperature=1.5, reduction='sum'))
    out.append(Case('class_mask', 'ce', x, y, cm=[1, 1, 0, 1, 1], reduction='none'))
    out.append(Case('example_weight', 'ce', x, y, w=[1.0, 0.0, 2.5, 0.5], cw=cw))
    out.append(Case('normalizer', 'ce', x, y, normalizer=64.0, label_smoothing=0.1))
    out.append(Case('everything', 'ce', x, [3, -100, 4, 1], cw=cw, label_smoothing=0.1, z_loss=1e-3,
                    soft_cap=6.0, temperature=1.5, cm=[1, 1, 0, 1, 1], w=[1.0, 1.0, 2.0, 0.5]))
    out.append(Case('everything_none', 'ce', x, [3, 0, 4, 1], cw=cw, label_smoothing=0.2, z_loss=1e-3,
                    soft_cap=3.0, temperature=0.5, cm=[1, 1, 0, 1, 1], reduction='none'))
    # extreme logits
    big = [[1e4, -1e4, 0.0, 9999.0], [-1e4, -1e4, -1e4, -9999.0], [1e4, 1e4, -1e4, 1e4], [0.5, -1e4, 1e4, 0.25]]
    out.append(Case('extreme_target_max', 'ce', big, [0, 3, 1, 2], reduction='none'))
    out.append(Case('extreme_target_min', 'ce', big, [1, 0, 2, 0], reduction='none'))
    out.append(Case('extreme_smoothing_zloss', 'ce', big, [0, 3, 1, 2], label_smoothing=0.1, z_loss=1e-4))
    out.append(Case('extreme_soft_cap', 'ce', big, [1, 0, 2, 3], soft_cap=30.0, reduction='none'))
    # −inf (masked vocabulary) logits of non-target classes
    minf = [[1.0, NINF, 2.0, NINF], [NINF, 0.5, NINF, -0.25], [3.0, 2.0, 1.0, NINF]]
    out.append(Case('minus_inf', 'ce', minf, [0, 1, 2], reduction='sum'))
    out.append(Case('minus_inf_weighted_temp', 'ce', minf, [2, 3, 0], cw=[1.0, 2.0, 0.5, 1.5], temperature=2.0))
    out.append(Case('minus_inf_soft_cap', 'ce', minf, [0, 3, 1], soft_cap=4.0, reduction='none'))
    # vocabularies of 1 and 2
    out.append(Case('vocab1', 'ce', [[0.5], [-3.0], [1e4]], [0, 0, 0], reduction='none'))
    out.append(Case('vocab1_smoothing', 'ce', [[0.5], [-3.0]], [0, 0], label_smoothing=0.3, z_loss=0.01))
    x2 = grid(rng, 5, 2)
    out.append(Case('vocab2', 'ce', x2, [0, 1, 1, 0, 1], reduction='none'))
    out.append(Case('vocab2_weighted', 'ce', x2, [0, 1, 1, 0, -100], cw=[0.25, 3.0], label_smoothing=0.05))
    # probability targets
    q = probs(rng, 4, 5)
    out.append(Case('prob_mean', 'ce_prob', x, q))
    out.append(Case('prob_none', 'ce_prob', x, q, reduction='none'))
    out.append(Case('prob_weighted_smoothing', 'ce_prob', x, q, cw=cw, label_smoothing=0.1, z_loss=1e-3))
    qm = [[r[0], r[1], 0.0, r[3] + r[2], r[4]] for r in q]
    out.append(Case('prob_masked_cap_temp', 'ce_prob', x, qm, cm=[1, 1, 0, 1, 1], soft_cap=4.0, temperature=2.0,
                    label_smoothing=0.2, w=[1.0, 0.5, 0.0, 2.0]))
    unnorm = [[0.5, 0.25, 0.0, 1.0, 0.125] for _ in range(4)]
    out.append(Case('prob_unnormalised', 'ce_prob', x, unnorm, reduction='sum'))
    # target distributions given as logits
    tl = grid(rng, 4, 5)
    out.append(Case('logit_targets', 'ce_logit', x, tl))
    out.append(Case('logit_targets_smoothing', 'ce_logit', x, tl, label_smoothing=0.1, reduction='sum'))
    # nll_loss on log-probabilities
    lp = grid(rng, 4, 5, -1024, 0)
    out.append(Case('nll_mean', 'nll', lp, y))
    out.append(Case('nll_weighted_ignore', 'nll', lp, [3, -100, 4, 1], cw=cw))
    out.append(Case('nll_none', 'nll', lp, [3, 0, 4, 1], cw=cw, reduction='none'))
    # entropy, KL from logits, kl_div
    out.append(Case('entropy', 'entropy', x, None))
    out.append(Case('entropy_minus_inf', 'entropy', minf, None, reduction='sum'))
    out.append(Case('entropy_extreme', 'entropy', big, None, reduction='none'))
    out.append(Case('kl', 'kl', x, tl))
    out.append(Case('kl_minus_inf_p', 'kl', [[1.0, 2.0, 0.5, -1.0]] * 3, minf, reduction='none'))
    out.append(Case('kl_extreme', 'kl', big, [r[::-1] for r in big], reduction='sum'))
    logq = grid(rng, 4, 5, -768, 0)
    out.append(Case('kldiv_batchmean', 'kldiv', logq, q))
    out.append(Case('kldiv_sum', 'kldiv', logq, q, reduction='sum'))
    out.append(Case('kldiv_elementwise_mean', 'kldiv', logq, q, elementwise_mean=1))
    out.append(Case('kldiv_log_target', 'kldiv', logq, grid(rng, 4, 5, -512, 0), log_target=1))
    out.append(Case('kldiv_none', 'kldiv', logq, q, reduction='none'))
    return out


def large_logit(i, c):
    return (((i * 7919 + c * 104729) % 2039) - 1019) / 64.0


def large_table():
    n, c = 3, 128256
    lines = ['# vocabulary 128256, generated logits (see the header of gen_reference_categorical.py)',
             'large %d %d' % (n, c)]
    ys = [(i * 31337 + 11) % c for i in range(n)]
    lines.append('t ' + ' '.join(str(v) for v in ys))
    losses, lses = [], []
    for i in range(n):
        zs = [mpf(large_logit(i, k)) for k in range(c)]
        m = max(zs)
        lse = m + mp.log(mp.fsum(mp.exp(z - m) for z in zs))
        lses.append(lse)
        losses.append(lse - zs[ys[i]])
    lines.append('lse ' + ' '.join(fmt_out(v) for v in lses))
    lines.append('rowloss ' + ' '.join(fmt_out(v) for v in losses))
    lines.append('value ' + fmt_out(mp.fsum(losses) / n))
    # d(mean)/dx_ic = (softmax_c − [c = y_i]) / n at a few classes of each row
    for i in range(n):
        for k in sorted({0, 1, ys[i], c // 2, c - 1, (ys[i] + 1) % c}):
            p = mp.exp(mpf(large_logit(i, k)) - lses[i])
            lines.append('gradat %d %d %s' % (i, k, fmt_out((p - (1 if k == ys[i] else 0)) / n)))
    return lines


def main():
    lines = ['# cross_entropy / nll_loss / entropy / kl_divergence / kl_div references, mpmath at 50 digits.',
             '# Generated by scripts/gen_reference_categorical.py; do not edit.']
    for case in cases():
        case.write(lines)
    with open(os.path.join(OUT, 'categorical_cases.txt'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    with open(os.path.join(OUT, 'categorical_large.txt'), 'w') as f:
        f.write('\n'.join(large_table()) + '\n')


if __name__ == '__main__':
    main()
