#!/usr/bin/python3
# nll: times torch.nn.functional.cross_entropy forward + backward (class-index targets, mean
# reduction, float32 logits) on the shapes of bench/bench_categorical.cpp and prints the ratio
# against our benchmark's numbers.
#
#   build/bench/bench_categorical --benchmark_repetitions=5 --benchmark_filter=BM_value_grad \
#       --benchmark_out=ours.json --benchmark_out_format=json
#   /usr/bin/python3 bench/compare_pytorch.py ours.json [--threads 1] [--repetitions 5]
#
# Binary cross entropy (bench/bench_bernoulli.cpp): F.binary_cross_entropy_with_logits forward +
# backward, mean reduction, on the benchmark's 2^24 float logits N(0, 4^2) and 30 % positive labels,
# against BM_bce_with_logits:
#
#   build/bench/bench_bernoulli --benchmark_repetitions=5 --benchmark_filter=BM_bce_with_logits$ \
#       --benchmark_out=bce.json --benchmark_out_format=json
#   /usr/bin/python3 bench/compare_pytorch.py [ours.json] --bernoulli bce.json
#
# Gaussian NLL (bench/bench_gaussian.cpp): F.gaussian_nll_loss(input, target, var) forward + backward
# (gradients for input and var), mean reduction, on 2^24 float elements like the benchmark's (means
# N(0, 1), targets N(0.3, 1.5^2), variances U[0.05, 2]) against BM_gaussian_nll_loss; and the
# hand-written log-variance NLL 0.5 * (s + (x - y)**2 * exp(-s)), mean, against BM_gaussian_nll_logvar:
#
#   build/bench/bench_gaussian --benchmark_repetitions=5 --benchmark_filter='BM_gaussian' \
#       --benchmark_out=gauss.json --benchmark_out_format=json
#   /usr/bin/python3 bench/compare_pytorch.py [ours.json] --gaussian gauss.json
#
# Needs the system python with torch (Debian python3-torch). Both sides run on the same number of
# threads (torch.set_num_threads; our benchmark is single-threaded unless built with NLL_OPENMP).
# Times are medians of the repetitions; ours are read from the JSON (the median aggregate of
# BM_value_grad/0 and /1 if present, else the median of the iterations), as CPU time and as wall
# time. torch's are wall and process CPU time per forward + backward.
import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

SHAPES = [(2048, 32000), (512, 128256)]


def torch_times(rows, cols, threads, repetitions):
    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(20261128)
    offset = 4.0 * torch.randn(rows, 1, generator=gen)
    spread = 1.0 + 3.0 * torch.rand(rows, 1, generator=gen)
    x = (offset + spread * torch.randn(rows, cols, generator=gen)).requires_grad_(True)
    y = torch.randint(0, cols, (rows,), generator=gen)
    wall, cpu = [], []
    for rep in range(repetitions + 1):  # the first run warms up (allocations, page faults)
        x.grad = None
        t0, c0 = time.perf_counter(), time.process_time()
        loss = F.cross_entropy(x, y)
        loss.backward()
        t1, c1 = time.perf_counter(), time.process_time()
        if rep > 0:
            wall.append(t1 - t0)
            cpu.append(c1 - c0)
    return statistics.median(wall), statistics.median(cpu)


BCE_ELEMENTS = 1 << 24


def torch_bce_times(threads, repetitions):
    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(20240608)
    x = (4.0 * torch.randn(BCE_ELEMENTS, generator=gen)).requires_grad_(True)
    y = (torch.rand(BCE_ELEMENTS, generator=gen) < 0.3).float()
    wall, cpu = [], []
    for rep in range(repetitions + 1):  # the first run warms up
        x.grad = None
        t0, c0 = time.perf_counter(), time.process_time()
        loss = F.binary_cross_entropy_with_logits(x, y)
        loss.backward()
        t1, c1 = time.perf_counter(), time.process_time()
        if rep > 0:
            wall.append(t1 - t0)
            cpu.append(c1 - c0)
    return statistics.median(wall), statistics.median(cpu)


def our_bce_times(path):
    """(cpu seconds, wall seconds) of BM_bce_with_logits from Google Benchmark JSON (median)."""
    with open(path) as f:
        data = json.load(f)
    scale = {'ns': 1e-9, 'us': 1e-6, 'ms': 1e-3, 's': 1.0}
    samples = []
    for b in data['benchmarks']:
        if b.get('run_name', b['name']) != 'BM_bce_with_logits':
            continue
        unit = scale[b.get('time_unit', 'ns')]
        pair = (b['cpu_time'] * unit, b['real_time'] * unit)
        if b.get('run_type') == 'aggregate':
            if b.get('aggregate_name') == 'median':
                return pair
        else:
            samples.append(pair)
    if not samples:
        return None
    return statistics.median(p[0] for p in samples), statistics.median(p[1] for p in samples)


GAUSSIAN_ELEMENTS = 1 << 24


def torch_gaussian_times(threads, repetitions, logvar):
    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(20240614)
    mean = torch.randn(GAUSSIAN_ELEMENTS, generator=gen)
    target = 0.3 + 1.5 * torch.randn(GAUSSIAN_ELEMENTS, generator=gen)
    var = 0.05 + 1.95 * torch.rand(GAUSSIAN_ELEMENTS, generator=gen)
    x = mean.clone().requires_grad_(True)
    v = (var.log() if logvar else var).requires_grad_(True)
    wall, cpu = [], []
    for rep in range(repetitions + 1):  # the first run warms up
        x.grad = None
        v.grad = None
        t0, c0 = time.perf_counter(), time.process_time()
        if logvar:
            loss = (0.5 * (v + (x - target) ** 2 * torch.exp(-v))).mean()
        else:
            loss = F.gaussian_nll_loss(x, target, v)
        loss.backward()
        t1, c1 = time.perf_counter(), time.process_time()
        if rep > 0:
            wall.append(t1 - t0)
            cpu.append(c1 - c0)
    return statistics.median(wall), statistics.median(cpu)


def our_named_times(path, name):
    """(cpu seconds, wall seconds) of the benchmark `name` from Google Benchmark JSON (median), or None."""
    with open(path) as f:
        data = json.load(f)
    scale = {'ns': 1e-9, 'us': 1e-6, 'ms': 1e-3, 's': 1.0}
    samples = []
    for b in data['benchmarks']:
        if b.get('run_name', b['name']) != name:
            continue
        unit = scale[b.get('time_unit', 'ns')]
        pair = (b['cpu_time'] * unit, b['real_time'] * unit)
        if b.get('run_type') == 'aggregate':
            if b.get('aggregate_name') == 'median':
                return pair
        else:
            samples.append(pair)
    if not samples:
        return None
    return statistics.median(p[0] for p in samples), statistics.median(p[1] for p in samples)


def compare_gaussian(args):
    print('torch %s, %d thread(s), forward + backward, %d float32 elements, medians of %d runs'
          % (torch.__version__, args.threads, GAUSSIAN_ELEMENTS, args.repetitions))
    print('%-26s %12s %12s %12s %12s %10s %10s' % ('loss', 'torch wall', 'torch cpu', 'nll wall', 'nll cpu',
                                                    'wall ratio', 'cpu ratio'))
    for label, bench, logvar in (('F.gaussian_nll_loss', 'BM_gaussian_nll_loss', False),
                                 ('log-variance NLL', 'BM_gaussian_nll_logvar', True)):
        tw, tc = torch_gaussian_times(args.threads, args.repetitions, logvar)
        ours = our_named_times(args.gaussian, bench)
        if ours is None:
            print('%-26s %10.1f ms %10.1f ms   (%s not in %s)' % (label, tw * 1e3, tc * 1e3, bench, args.gaussian))
            continue
        oc, ow = ours
        print('%-26s %10.1f ms %10.1f ms %10.1f ms %10.1f ms %10.1f %10.1f'
              % (label, tw * 1e3, tc * 1e3, ow * 1e3, oc * 1e3, tw / ow, tc / oc))
    print('(ratio = torch time / nll time: how many times faster nll is)')


def our_times(path):
    """{shape index: (cpu seconds, wall seconds)} for BM_value_grad/<shape> from Google Benchmark JSON."""
    with open(path) as f:
        data = json.load(f)
    scale = {'ns': 1e-9, 'us': 1e-6, 'ms': 1e-3, 's': 1.0}
    samples, medians = {}, {}
    for b in data['benchmarks']:
        name = b.get('run_name', b['name'])
        if not name.startswith('BM_value_grad/'):
            continue
        shape = int(name.split('/')[1])
        unit = scale[b.get('time_unit', 'ns')]
        pair = (b['cpu_time'] * unit, b['real_time'] * unit)
        if b.get('run_type') == 'aggregate':
            if b.get('aggregate_name') == 'median':
                medians[shape] = pair
        else:
            samples.setdefault(shape, []).append(pair)
    for shape, pairs in samples.items():
        if shape not in medians:
            medians[shape] = (statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs))
    return medians


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('ours', nargs='?',
                        help='JSON written by bench_categorical --benchmark_out=... --benchmark_out_format=json')
    parser.add_argument('--bernoulli', help='JSON written by bench_bernoulli --benchmark_out=... (BCE section)')
    parser.add_argument('--gaussian', help='JSON written by bench_gaussian --benchmark_out=... (Gaussian section)')
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--repetitions', type=int, default=5)
    args = parser.parse_args()
    if args.bernoulli:
        compare_bce(args)
    if args.gaussian:
        compare_gaussian(args)
    if not args.ours:
        return
    ours = our_times(args.ours)
    print('torch %s, %d thread(s), F.cross_entropy forward + backward, float32, medians of %d runs'
          % (torch.__version__, args.threads, args.repetitions))
    print('%-12s %12s %12s %12s %12s %10s %10s' % ('shape', 'torch wall', 'torch cpu', 'nll wall', 'nll cpu',
                                                    'wall ratio', 'cpu ratio'))
    for k, (rows, cols) in enumerate(SHAPES):
        tw, tc = torch_times(rows, cols, args.threads, args.repetitions)
        if k not in ours:
            print('%dx%d: BM_value_grad/%d not in %s' % (rows, cols, k, args.ours))
            continue
        oc, ow = ours[k]
        print('%-12s %10.1f ms %10.1f ms %10.1f ms %10.1f ms %10.1f %10.1f'
              % ('%dx%d' % (rows, cols), tw * 1e3, tc * 1e3, ow * 1e3, oc * 1e3, tw / ow, tc / oc))
    print('(ratio = torch time / nll time: how many times faster nll is)')


def compare_bce(args):
    ours = our_bce_times(args.bernoulli)
    tw, tc = torch_bce_times(args.threads, args.repetitions)
    print('torch %s, %d thread(s), F.binary_cross_entropy_with_logits forward + backward, %d float32 elements, '
          'medians of %d runs' % (torch.__version__, args.threads, BCE_ELEMENTS, args.repetitions))
    if ours is None:
        print('BM_bce_with_logits not in %s (torch: %.1f ms wall, %.1f ms cpu)' % (args.bernoulli, tw * 1e3, tc * 1e3))
        return
    oc, ow = ours
    print('%12s %12s %12s %12s %10s %10s' % ('torch wall', 'torch cpu', 'nll wall', 'nll cpu', 'wall ratio',
                                             'cpu ratio'))
    print('%10.1f ms %10.1f ms %10.1f ms %10.1f ms %10.1f %10.1f'
          % (tw * 1e3, tc * 1e3, ow * 1e3, oc * 1e3, tw / ow, tc / oc))
    print('(ratio = torch time / nll time: how many times faster nll is)')


if __name__ == '__main__':
    main()
