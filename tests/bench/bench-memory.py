#!/usr/bin/python3
"""Resident memory of a clipseg element with a ViT-B/16-shaped checkpoint, fp32 against bf16.

Runs, per precision and in one invocation, gst-launch-1.0 with videotestsrc (640x480,
non-live, so every frame is inferred in sync mode) through clipseg with the element's
defaults (imagenet80 templates, 336-pixel sliding windows) into a fakesink, sampling
/proc/PID/status every 20 ms: steady is the median VmRSS over the second half of the
run (model loaded, labels encoded, inferring), peak is the final VmHWM (loading
included). Rounds alternate the order of the precisions; the figures are medians over
rounds. Prints both and the bf16/fp32 ratios (issue 16 asks steady <= 0.60).

Usage: bench-memory.py BUILD_DIR [--vitb16 DIR] [--frames N] [--rounds N]
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

import vitb16

LABELS = "person, car|truck, dog, bicycle"


def status_kb(pid, field):
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def run_once(build, model, precision, frames):
    """(steady MB, peak MB, seconds) of one element run."""
    env = dict(os.environ, GST_PLUGIN_PATH=os.path.join(build, 'gst'),
               GST_REGISTRY=os.path.join(build, 'bench-memory-registry.bin'))
    cmd = ['gst-launch-1.0', '-q', 'videotestsrc', 'num-buffers=%d' % frames, 'pattern=ball', '!',
           'video/x-raw,width=640,height=480,framerate=30/1', '!',
           'clipseg', 'model=%s' % model, 'precision=%s' % precision, 'labels=%s' % LABELS, '!',
           'fakesink', 'sync=false']
    start = time.monotonic()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    samples, peak = [], 0
    while p.poll() is None:
        rss, hwm = status_kb(p.pid, 'VmRSS'), status_kb(p.pid, 'VmHWM')
        if rss is not None:
            samples.append((time.monotonic() - start, rss))
            peak = max(peak, hwm or 0)
        time.sleep(0.02)
    err = p.stderr.read().decode(errors='replace')
    if p.returncode != 0:
        raise SystemExit('bench-memory: gst-launch-1.0 failed (%d): %s' % (p.returncode, err))
    span = time.monotonic() - start
    steady = statistics.median(r for t, r in samples if t >= span / 2)
    return steady / 1024, peak / 1024, span


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('build')
    ap.add_argument('--vitb16', help='ViT-B/16-shaped HF checkpoint (generated when absent)')
    ap.add_argument('--frames', type=int, default=8)
    ap.add_argument('--rounds', type=int, default=3)
    a = ap.parse_args()
    model = vitb16.ensure(a.vitb16)
    order = ['fp32', 'bf16']
    got = {p: [] for p in order}
    for r in range(a.rounds):
        for p in (order if r % 2 == 0 else order[::-1]):
            steady, peak, span = run_once(a.build, model, p, a.frames)
            print('round %d %s: steady %.0f MB, peak %.0f MB (%.1f s)' % (r + 1, p, steady, peak, span),
                  flush=True)
            got[p].append((steady, peak))
    med = {p: (statistics.median(s for s, _ in v), statistics.median(k for _, k in v))
           for p, v in got.items()}
    print('\nclipseg element, ViT-B/16-shaped checkpoint (%s), 640x480, element defaults, '
          '%d frames, medians of %d rounds:' % (model, a.frames, a.rounds))
    print('| precision | steady RSS MB | peak RSS MB |')
    print('|---|---|---|')
    for p in order:
        print('| %s | %.0f | %.0f |' % (p, med[p][0], med[p][1]))
    print('bf16/fp32: steady %.2f, peak %.2f' % (med['bf16'][0] / med['fp32'][0],
                                                  med['bf16'][1] / med['fp32'][1]))
    return 0


if __name__ == '__main__':
    sys.exit(main())
