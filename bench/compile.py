#!/usr/bin/env python3
"""Times pm's project-wide commands on generated projects.

    python3 bench/compile.py [--models 1000 10000] [--runs 5] [--pm PATH]

Projects come from ../shared/bench/gen_project.py (deterministic) and are
written under bench/out/. pm is built in release mode unless --pm is given.
For each size it reports, per command, the median wall time of --runs runs
and the largest peak RSS of those runs (from wait4's rusage).
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

from common import HERE, SHARED_BENCH, pm_binary

GEN = os.path.join(SHARED_BENCH, "gen_project.py")


def run(cmd, cwd):
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, rusage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    err = p.stderr.read().decode()
    p.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"{' '.join(cmd)} failed ({code}):\n{err}")
    return wall, rusage.ru_maxrss / 1024.0  # MiB


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--pm", help="pm binary (default: build target/release/pm)")
    a = ap.parse_args()
    pm = pm_binary(a.pm)
    out = os.path.join(HERE, "out")
    os.makedirs(out, exist_ok=True)
    print(f"{'models':>7} {'command':<28} {'median wall':>12} {'min':>8} {'max':>8} {'peak RSS':>10}")
    for n in a.models:
        proj = os.path.join(out, f"synth_{n}")
        if not os.path.exists(os.path.join(proj, ".synth_project")):
            subprocess.run([sys.executable, GEN, "--models", str(n), "--out", proj, "--force"],
                           check=True, stdout=subprocess.DEVNULL)
        one = f"mart_{n - 1:05d}"
        commands = [
            ("pm parse", [pm, "parse", "-q"]),
            ("pm compile", [pm, "compile", "-q"]),
            ("pm ls", [pm, "ls", "-q"]),
            (f"pm compile -s {one}", [pm, "compile", "-q", "-s", one]),
        ]
        run([pm, "compile", "-q"], proj)  # warm the page cache and target/
        for label, cmd in commands:
            walls, rss = [], []
            for _ in range(a.runs):
                w, r = run(cmd, proj)
                walls.append(w)
                rss.append(r)
            print(f"{n:>7} {label:<28} {statistics.median(walls):>10.3f} s {min(walls):>6.3f} s "
                  f"{max(walls):>6.3f} s {max(rss):>7.0f} MiB", flush=True)


if __name__ == "__main__":
    main()
