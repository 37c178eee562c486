#!/usr/bin/python3
"""Engine vs SCLIP's official structure in PyTorch, on a random checkpoint with
the exact ViT-B/16 shapes, whole-image dense SCLIP forward at 224 and 448, in
fp32 and bf16.

The peer is bench_torch.py: OpenAI CLIP's VisionTransformer with
nn.MultiheadAttention blocks and SCLIP's correlative last block, on Debian's
torch, under inference_mode (fp32) and autocast to bfloat16 (bf16: the faster
of autocast with its weight cache and without, per round). The engine
is bench-engine with --precision fp32 and bf16. Both get the same thread count
and OMP_WAIT_POLICY=passive, and glibc malloc tunables that spare torch's
large temporaries the page faults of fresh mappings; each round runs every side once, the order
alternating between rounds, and every process times each case --runs times.

Per case and precision it prints the median over rounds of the per-process
medians: engine ms, peer ms, engine/peer (< 1: engine faster), the engine's
GFLOP/s and its share of the best large-GEMM rate of that precision measured in
the same run (2048³: OpenBLAS sgemm and the engine's own packed linear from
bench-engine; torch.matmul and, for fp32, a oneDNN Linear from torch). It then
prints how much of the engine's forward its linears take (the linears224/448
cases of bench-engine: the same GEMMs without layer norms or attention).
Timings on a shared machine are noisy: compare ratios from the same run.

Usage: run-bench.py BENCH_ENGINE [--model DIR] [--rounds N] [--runs N] [--threads N]
"""
import argparse
import os
import subprocess
import sys

import vitb16

HERE = os.path.dirname(os.path.abspath(__file__))
SIDES = (224, 448)
PRECISIONS = ('fp32', 'bf16')
MALLOC_TUNABLES = 'glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967296'


def parse(out):
    """Lines 'case=NAME [precision=P] k=v ...' -> {(NAME, P or None): {k: float}}."""
    rows = {}
    for line in out.splitlines():
        if line.startswith('case='):
            kv = dict(f.split('=', 1) for f in line.split())
            key = (kv.pop('case'), kv.pop('precision', None))
            rows[key] = {k: float(v) for k, v in kv.items()}
    return rows


def run(cmd):
    print('$ ' + ' '.join(cmd), flush=True)
    p = subprocess.run(cmd, capture_output=True, text=True)
    sys.stdout.write(p.stdout)
    if p.returncode != 0:
        sys.stderr.write(p.stderr)
        raise SystemExit('bench: %s failed with %d' % (cmd[0], p.returncode))
    return parse(p.stdout), p.stdout


def median(values):
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('engine')
    ap.add_argument('--model', help='ViT-B/16-shaped HF checkpoint (generated when absent)')
    ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--runs', type=int, default=7)
    ap.add_argument('--threads', type=int, default=2)
    a = ap.parse_args()
    if a.runs < 7:
        print('note: fewer than 7 runs per process', flush=True)

    os.environ['OMP_WAIT_POLICY'] = 'passive'
    # malloc keeps large freed blocks instead of unmapping them: torch's 30 MB
    # temporaries otherwise fault their pages in anew in every op (bench_torch.py);
    # the engine allocates nothing per forward, so this only helps the peer
    os.environ['GLIBC_TUNABLES'] = MALLOC_TUNABLES
    model = vitb16.ensure(a.model)
    common = ['--threads', str(a.threads), '--runs', str(a.runs)]
    dense = ['dense%d' % s for s in SIDES]
    linears = ['linears%d' % s for s in SIDES]

    # samples[(side, precision, 'engine'|'peer')] = per-round medians
    samples, gemm, gflop, what = {}, {}, {}, {}

    def add(key, value):
        samples.setdefault(key, []).append(value)

    def engine(precision):
        cases = dense + linears + ['gemm2048'] + (['sgemm2048'] if precision == 'fp32' else [])
        e, out = run([a.engine, model, '--precision', precision, '--cases', ','.join(cases)] + common)
        for s in SIDES:
            add((s, precision, 'engine'), e[('dense%d' % s, None)]['median_ms'])
            add((s, precision, 'linears'), e[('linears%d' % s, None)]['median_ms'])
            gflop[s] = e[('dense%d' % s, None)]['gflop']
        what[precision] = [l[2:] for l in out.splitlines() if l.startswith('# linears:')][0]
        gemm.setdefault((precision, 'engine packed linear'), []).append(e[('gemm2048', None)]['gflops'])
        if precision == 'fp32':
            gemm.setdefault((precision, 'OpenBLAS sgemm'), []).append(e[('sgemm2048', None)]['gflops'])

    def peer():
        t, _ = run([sys.executable, os.path.join(HERE, 'bench_torch.py'), model,
                 '--precision', 'fp32,bf16,bf16-nocache'] + common)
        for p in PRECISIONS:
            for s in SIDES:
                # bf16: the faster way of running autocast (bench_torch.py's docstring)
                flavours = [p] + (['bf16-nocache'] if p == 'bf16' else [])
                best = min(flavours, key=lambda f: t[('dense%d' % s, f)]['median_ms'])
                add((s, p, 'peer'), t[('dense%d' % s, best)]['median_ms'])
                add((s, p, 'peer flavour'), best)
            gemm.setdefault((p, 'torch.matmul'), []).append(t[('matmul2048', p)]['gflops'])
            if ('mkldnn2048', p) in t:
                gemm.setdefault((p, 'torch oneDNN Linear'), []).append(t[('mkldnn2048', p)]['gflops'])

    steps = [lambda: engine('fp32'), lambda: engine('bf16'), peer]
    for r in range(a.rounds):
        print('--- round %d of %d' % (r + 1, a.rounds), flush=True)
        for step in (steps if r % 2 == 0 else steps[::-1]):
            step()

    print('\nViT-B/16 shapes, whole-image dense SCLIP forward, %d threads, OMP_WAIT_POLICY=passive,'
          ' GLIBC_TUNABLES=%s;' % (a.threads, MALLOC_TUNABLES))
    print('medians over %d rounds of per-process medians of %d runs' % (a.rounds, a.runs))
    print('peer: SCLIP official structure (OpenAI CLIP VisionTransformer, nn.MultiheadAttention, '
          'correlative last block) in torch, fp32 inference_mode / bf16 autocast')
    print('engine ' + '; '.join(what[p] for p in PRECISIONS))
    peak = {}
    for p in PRECISIONS:
        rates = {src: median(v) for (pp, src), v in gemm.items() if pp == p}
        best = max(rates, key=rates.get)
        peak[p] = rates[best]
        print('2048^3 GEMM %s GFLOP/s: %s; best %s' % (
            p, ', '.join('%s %.0f' % kv for kv in sorted(rates.items())), best))
    print()
    print('| case | precision | engine ms | peer ms | engine/peer | engine GFLOP/s | of GEMM peak |')
    print('|---|---|---|---|---|---|---|')
    worst = 0.0
    for s in SIDES:
        for p in PRECISIONS:
            e, t = samples[(s, p, 'engine')], samples[(s, p, 'peer')]
            em, tm = median(e), median(t)
            rate = gflop[s] / (em / 1000)
            worst = max(worst, em / tm)
            print('| dense%d | %s | %.1f (%.0f-%.0f) | %.1f (%.0f-%.0f) | %.2f | %.1f | %.0f%% |' % (
                s, p, em, min(e), max(e), tm, min(t), max(t), em / tm, rate, 100 * rate / peak[p]))
    print('(ranges: the per-round medians; bf16 peer per round, the faster autocast flavour: %s)' % '; '.join(
        'dense%d %s' % (s, ', '.join(samples[(s, 'bf16', 'peer flavour')])) for s in SIDES))
    print('worst ratio engine/peer: %.2f' % worst)
    print('\nengine time in its linears (same GEMMs alone, bench-engine linears<side>):')
    for s in SIDES:
        for p in PRECISIONS:
            lm, em = median(samples[(s, p, 'linears')]), median(samples[(s, p, 'engine')])
            print('  dense%d %s: linears %.1f ms of %.1f (%.0f%%), the rest (attention, layer norms, '
                  'patches, head) %.1f ms' % (s, p, lm, em, 100 * lm / em, em - lm))
    return 0


if __name__ == '__main__':
    sys.exit(main())
