#!/usr/bin/python3
"""PyTorch parity data for include/nll/dist/gaussian.hpp (tests/test_gaussian.cpp).

Run with /usr/bin/python3 (torch 1.13):  /usr/bin/python3 scripts/gen_torch_reference_gaussian.py
Writes tests/data/gaussian_torch.txt: for each case, the inputs, torch's value (or per-element
losses for reduction='none') and torch's autograd gradients with respect to the mean (input) and the
variance, computed by torch.nn.functional.mse_loss and torch.nn.functional.gaussian_nll_loss in
float32 and float64. Every number is written as an exact hex float.

Record layout (one per line; matrices column-major, as Eigen stores them):
  case <name> <loss> <dtype> <reduction> <full> <eps> <rows> <cols> <var_rows> <var_cols>
  <name> <field> <count> v_0 ... v_{count-1}
fields: mean, target, var (gaussian only), upstream (reduction none: the gradient fed to backward),
value (1 number) or loss (rows*cols numbers), grad_mean, grad_var, row_log_prob (optional: torch.
distributions.Normal(mean, var.sqrt()).log_prob(target).sum(-1), the diagonal multivariate
log-density of each row).
torch shapes are mapped to Eigen as: (N, D) -> N x D; (N,) for an input -> N x 1; (N,) for the var
of an (N, D) input -> N x 1 (torch unsqueezes it); a 0-dim or (1,) var of an (N,) input -> 1 x 1.
"""
import os

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "data", "gaussian_torch.txt")
lines = []


def hexs(t):
    return [float(v).hex() for v in t]


def colmajor(t, rows, cols):
    return t.detach().reshape(rows, cols).t().reshape(-1).tolist()


def emit(name, field, values):
    lines.append(" ".join([name, field, str(len(values))] + hexs(values)))


def make_inputs(gen, rows, cols, dtype):
    mean = torch.randn(rows, cols, generator=gen, dtype=torch.float64).to(dtype)
    target = (torch.randn(rows, cols, generator=gen, dtype=torch.float64) * 1.5 + 0.25).to(dtype)
    return mean, target


def mse_cases(gen):
    for dtype, dname in ((torch.float32, "float"), (torch.float64, "double")):
        rows, cols = 7, 5
        mean, target = make_inputs(gen, rows, cols, dtype)
        for reduction in ("none", "mean", "sum"):
            name = "mse_%s_%s" % (reduction, dname)
            x = mean.clone().requires_grad_(True)
            loss = F.mse_loss(x, target, reduction=reduction)
            lines.append("case %s mse %s %s 0 0 %d %d 0 0" % (name, dname, reduction, rows, cols))
            emit(name, "mean", colmajor(mean, rows, cols))
            emit(name, "target", colmajor(target, rows, cols))
            if reduction == "none":
                up = torch.randn(rows, cols, generator=gen, dtype=torch.float64).to(dtype)
                loss.backward(up)
                emit(name, "upstream", colmajor(up, rows, cols))
                emit(name, "loss", colmajor(loss, rows, cols))
            else:
                loss.backward()
                emit(name, "value", [loss.item()])
            emit(name, "grad_mean", colmajor(x.grad, rows, cols))


def gaussian_case(gen, name, dtype, dname, input_shape, var_shape, eig_var, reduction, full, eps, tiny_var):
    """input_shape / var_shape: torch shapes; eig_var: the Eigen (rows, cols) of var."""
    rows, cols = (input_shape[0], input_shape[1]) if len(input_shape) == 2 else (input_shape[0], 1)
    mean, target = make_inputs(gen, rows, cols, dtype)
    mean = mean.reshape(input_shape)
    target = target.reshape(input_shape)
    var = (torch.rand(var_shape, generator=gen, dtype=torch.float64) * 2 + 0.05).to(dtype)
    if tiny_var and var.numel() > 1:
        flat = var.reshape(-1)
        flat[0] = 0.0
        flat[1] = eps * 0.5
        if flat.numel() > 2:
            flat[2] = eps
        if flat.numel() > 3:
            flat[3] = eps * 1.5
        var = flat.reshape(var_shape)
        # a residual large compared to eps for the clamped entries, and one small one
        target.reshape(-1)[0] = mean.reshape(-1)[0] + 1e-3
    x = mean.clone().requires_grad_(True)
    v = var.clone().requires_grad_(True)
    loss = F.gaussian_nll_loss(x, target, v, full=bool(full), eps=eps, reduction=reduction)
    vr, vc = eig_var
    lines.append("case %s gaussian %s %s %d %s %d %d %d %d" % (name, dname, reduction, full, float(eps).hex(), rows,
                                                              cols, vr, vc))
    emit(name, "mean", colmajor(mean, rows, cols))
    emit(name, "target", colmajor(target, rows, cols))
    emit(name, "var", colmajor(var, vr, vc))
    if reduction == "none":
        up = torch.randn(loss.shape, generator=gen, dtype=torch.float64).to(dtype)
        loss.backward(up)
        emit(name, "upstream", colmajor(up, rows, cols))
        emit(name, "loss", colmajor(loss, rows, cols))
    else:
        loss.backward()
        emit(name, "value", [loss.item()])
    emit(name, "grad_mean", colmajor(x.grad, rows, cols))
    emit(name, "grad_var", colmajor(v.grad, vr, vc))
    if full and reduction == "none" and not tiny_var and len(input_shape) == 2:
        std = var.reshape(rows, -1).sqrt().expand(rows, cols)
        lp = torch.distributions.Normal(mean.reshape(rows, cols), std).log_prob(target.reshape(rows, cols)).sum(-1)
        emit(name, "row_log_prob", lp.tolist())


def gaussian_cases(gen):
    n, d = 9, 4
    layouts = [
        ("elem", (n, d), (n, d), (n, d)),        # heteroscedastic, one variance per element
        ("rowN1", (n, d), (n, 1), (n, 1)),       # one per row, torch shape (N, 1)
        ("rowN", (n, d), (n,), (n, 1)),          # one per row, torch shape (N,) (unsqueezed by torch)
        ("vec", (n,), (n,), (n, 1)),             # 1-D input, one per element
        ("vec_scalar0", (n,), (), (1, 1)),       # 1-D input, a 0-dim var
        ("vec_scalar1", (n,), (1,), (1, 1)),     # 1-D input, a (1,) var
    ]
    for dtype, dname in ((torch.float32, "float"), (torch.float64, "double")):
        for lname, ishape, vshape, eig in layouts:
            for reduction in ("none", "mean", "sum"):
                for full, eps, tiny in ((0, 1e-6, False), (0, 1e-6, True), (0, 0.1, True), (1, 1e-6, False)):
                    name = "gnll_%s_%s_%s_full%d_eps%g%s" % (lname, reduction, dname, full, eps, "_tiny" if tiny else "")
                    gaussian_case(gen, name, dtype, dname, ishape, vshape, eig, reduction, full, eps, tiny)


def main():
    gen = torch.Generator().manual_seed(20240613)
    mse_cases(gen)
    gaussian_cases(gen)
    with open(OUT, "w") as f:
        f.write("# torch %s parity data for nll's Gaussian losses: scripts/gen_torch_reference_gaussian.py\n"
                % torch.__version__)
        f.write("\n".join(lines) + "\n")
    print("wrote", OUT, sum(1 for l in lines if l.startswith("case")), "cases")


if __name__ == "__main__":
    main()
