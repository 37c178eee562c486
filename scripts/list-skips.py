#!/usr/bin/python3
"""Prints what a `meson test` run skipped, and why, one line each: "skipped: TEST CASE: REASON".

Reads BUILD_DIR/meson-logs/testlog.json. A skipped case is a line a test printed: "SKIP CASE:
REASON" (the Python suites) or "ok N CASE # SKIP REASON" (GLib's TAP output); a test meson
reports as skipped (exit status 77) without such a line is listed with its last output line.

Usage: list-skips.py BUILD_DIR [LABEL]   (LABEL, e.g. "asan", goes before each TEST)
"""
import json
import os
import re
import sys

CASE = [re.compile(r"^SKIP (\S+): (.*)$"), re.compile(r"^ok \d+ (\S+) # SKIP ?(.*)$")]


def skips(test):
    """(case, reason) of each skip in one testlog entry."""
    lines = (test.get("stdout") or "").splitlines()
    found = [m.groups() for line in lines for m in (p.match(line) for p in CASE) if m]
    if not found and test.get("result") == "SKIP":
        last = [line for line in lines if line.strip()]
        found = [("", last[-1] if last else "exit status 77")]
    return found


def main(argv):
    if len(argv) not in (2, 3):
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    label = argv[2] + " " if len(argv) == 3 else ""
    log = os.path.join(argv[1], "meson-logs", "testlog.json")
    with open(log, encoding="utf-8") as f:
        for line in f:
            test = json.loads(line)
            name = test["name"].split(" / ")[-1]
            for case, reason in skips(test):
                print("skipped: %s%s%s: %s" % (label, name, " " + case if case else "", reason))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
