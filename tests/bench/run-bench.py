#!/usr/bin/python3
"""Engine vs PyTorch on a random checkpoint with the exact ViT-B/16 shapes.

Runs bench-engine and the PyTorch baseline (both attention variants; the faster
one is the baseline) in alternating rounds in this one process tree, then
prints, per case, the medians, the ratio engine/PyTorch (< 1: engine faster)
and the engine's GFLOP/s as a share of the large-sgemm GFLOP/s measured by the
same OpenBLAS in the same run. Timings on shared machines are noisy: compare
the ratios, not the absolute numbers.

Usage: run-bench.py BENCH_ENGINE [--model DIR] [--rounds N] [--runs N] [--threads N]
"""
import argparse
import os
import subprocess
import sys

import vitb16

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = ['dense224', 'dense448', 'segment336x448']


def parse(out):
    rows = {}
    for line in out.splitlines():
        if line.startswith('case='):
            kv = dict(f.split('=', 1) for f in line.split())
            rows[kv['case']] = {k: float(v) for k, v in kv.items() if k != 'case'}
    return rows


def run(cmd):
    print('$ ' + ' '.join(cmd), flush=True)
    p = subprocess.run(cmd, capture_output=True, text=True)
    sys.stdout.write(p.stdout)
    if p.returncode != 0:
        sys.stderr.write(p.stderr)
        raise SystemExit('bench: %s failed with %d' % (cmd[0], p.returncode))
    return parse(p.stdout)


def median(values):
    v = sorted(values)
    return v[len(v) // 2]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('engine')
    ap.add_argument('--model', help='ViT-B/16-shaped HF checkpoint (generated when absent)')
    ap.add_argument('--rounds', type=int, default=2)
    ap.add_argument('--runs', type=int, default=7)
    ap.add_argument('--threads', type=int, default=2)
    a = ap.parse_args()

    model = vitb16.ensure(a.model)

    common = ['--threads', str(a.threads), '--runs', str(a.runs)]
    engine, torch_best, peak = {c: [] for c in CASES}, {c: [] for c in CASES}, []
    for r in range(a.rounds):
        print('--- round %d of %d' % (r + 1, a.rounds), flush=True)
        e = run([a.engine, model] + common)
        peak.append(e['sgemm2048']['gflops'])
        for c in CASES:
            engine[c].append(e[c]['median_ms'])
        for attn in ('mha', 'manual'):
            t = run([sys.executable, os.path.join(HERE, 'bench_torch.py'), model, '--attn', attn] + common)
            for c in CASES:
                if len(torch_best[c]) <= r:
                    torch_best[c].append(t[c]['median_ms'])
                else:
                    torch_best[c][r] = min(torch_best[c][r], t[c]['median_ms'])
        gflop = {c: e[c]['gflop'] for c in CASES}

    sgemm = median(peak)
    print('\nViT-B/16 shapes, %d threads, medians over %d rounds of %d runs' % (a.threads, a.rounds, a.runs))
    print('OpenBLAS sgemm 2048^3: %.1f GFLOP/s' % sgemm)
    print('| case | engine ms | PyTorch ms | engine/PyTorch | engine GFLOP/s | of sgemm peak |')
    print('|---|---|---|---|---|---|')
    worst = 0.0
    for c in CASES:
        em, tm = median(engine[c]), median(torch_best[c])
        rate = gflop[c] / (em / 1000)
        worst = max(worst, em / tm)
        print('| %s | %.1f | %.1f | %.2f | %.1f | %.0f%% |' % (c, em, tm, em / tm, rate, 100 * rate / sgemm))
    print('worst ratio engine/PyTorch: %.2f' % worst)
    return 0


if __name__ == '__main__':
    sys.exit(main())
