#!/usr/bin/python3
"""What MaskCLIP's refinements, PAMR and SC-CLIP's last block cost per frame, on a random checkpoint with the
exact ViT-B/16 shapes (vitb16.py): bench-engine's segment336x448 cases (SCLIP's 224/112
windows, 6 per frame, 8 labels with 10 names, label map at the input size 336x448):

  segment336x448                      SCLIP's defaults
  segment336x448-pamr10               the same with 10 PAMR steps (NACLIP's setting)
  segment336x448-maskclip             MaskCLIP's value path
  segment336x448-maskclip-ks1-pd0.5   the same with key smoothing 1 and prompt denoising 0.5
  segment336x448-scclip               SC-CLIP (mode scclip)

Each round runs bench-engine once with every case (--runs timed runs each, median per
process); the cost of an option is the median over rounds of the difference of the
per-process medians with and without it. Run it alone (`flock -x /work/cpu.lock` on a
shared machine).

Usage: bench_refine.py BENCH_ENGINE [--model DIR] [--rounds N] [--runs N] [--threads N]
       [--precision auto|fp32|bf16]
"""
import argparse
import importlib.util
import os
import sys

import vitb16

HERE = os.path.dirname(os.path.abspath(__file__))
# run-bench.py's process runner, output parser and median
_spec = importlib.util.spec_from_file_location('run_bench', os.path.join(HERE, 'run-bench.py'))
run_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run_bench)
median, run = run_bench.median, run_bench.run

CASES = ('segment336x448', 'segment336x448-pamr10', 'segment336x448-maskclip',
         'segment336x448-maskclip-ks1-pd0.5', 'segment336x448-scclip')
OPTIONS = (('PAMR, 10 steps', 'segment336x448', 'segment336x448-pamr10'),
           ('key smoothing 1 + prompt denoising 0.5', 'segment336x448-maskclip',
            'segment336x448-maskclip-ks1-pd0.5'),
           ('SC-CLIP instead of SCLIP', 'segment336x448', 'segment336x448-scclip'))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('engine')
    ap.add_argument('--model', help='ViT-B/16-shaped HF checkpoint (generated when absent)')
    ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--runs', type=int, default=7)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--precision', default='auto')
    a = ap.parse_args()
    os.environ['OMP_WAIT_POLICY'] = 'passive'
    model = vitb16.ensure(a.model)
    ms = {c: [] for c in CASES}
    what = ''
    for r in range(a.rounds):
        print('--- round %d of %d' % (r + 1, a.rounds), flush=True)
        rows, out = run([a.engine, model, '--precision', a.precision, '--threads', str(a.threads),
                         '--runs', str(a.runs), '--cases', ','.join(CASES)])
        what = [line[2:] for line in out.splitlines() if line.startswith('# linears:')][0]
        for c in CASES:
            ms[c].append(rows[(c, None)]['median_ms'])
    print('\nViT-B/16 shapes, %d threads, %s; medians over %d rounds of per-process medians of %d'
          ' runs' % (a.threads, what, a.rounds, a.runs))
    print('\n| case | ms per frame (range over rounds) |\n|---|---|')
    for c in CASES:
        print('| %s | %.1f (%.1f-%.1f) |' % (c, median(ms[c]), min(ms[c]), max(ms[c])))
    print()
    for name, base, opt in OPTIONS:
        d = [o - b for o, b in zip(ms[opt], ms[base])]
        print('%s: +%.1f ms per frame (%.1f-%.1f), %.0f%% of %s' % (
            name, median(d), min(d), max(d), 100 * median(d) / median(ms[base]), base))
    return 0


if __name__ == '__main__':
    sys.exit(main())
