#!/usr/bin/env python3
"""`pm run` on the generated 1,000-model project (views, 4 threads).

    python3 bench/run.py [--models 1000] [--runs 3] [--threads 4] [--pm PATH]

Sets the project up once (seeds with `pm seed`, sources with the generator's
setup_sources.sql, all in pm's embedded PostgreSQL), then times `pm run`.
pm's own overhead is the wall time minus the time the nodes spent being built
(their execution times from run_results.json, over the threads that ran them
side by side), per model.
"""
import argparse
import json
import os
import statistics
import sys
import time

from common import HERE, SHARED_BENCH, local_server, pm_binary, sh

GEN = os.path.join(SHARED_BENCH, "gen_project.py")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--pm")
    a = ap.parse_args()
    pm = pm_binary(a.pm)
    proj = os.path.join(HERE, "out", f"run_{a.models}")
    if not os.path.exists(os.path.join(proj, ".synth_project")):
        sh([sys.executable, GEN, "--models", str(a.models), "--out", proj, "--force"])
    os.chmod(proj, 0o755)
    url, psql = local_server(pm, proj)
    try:
        sh([psql, url, "-Xq", "-f", os.path.join(proj, "setup_sources.sql")])
        sh([pm, "seed", "-q"], cwd=proj)
        sh([pm, "run", "-q", "--threads", str(a.threads)], cwd=proj)  # first build creates everything
        walls, overheads = [], []
        for _ in range(a.runs):
            t0 = time.perf_counter()
            sh([pm, "run", "-q", "--threads", str(a.threads)], cwd=proj)
            wall = time.perf_counter() - t0
            results = json.load(open(os.path.join(proj, "target", "run_results.json")))["results"]
            assert all(r["status"] == "success" for r in results), "a model failed"
            busy = sum(r["execution_time"] for r in results) / a.threads
            walls.append(wall)
            overheads.append((wall - busy) / len(results))
    finally:
        sh([pm, "db", "stop", "-q"], cwd=proj)
    print(f"pm run, {a.models} models (views), {a.threads} threads, median of {a.runs} runs:")
    print(f"  wall time       : {statistics.median(walls):.2f} s  [{min(walls):.2f}/{max(walls):.2f}]")
    print(f"  pm's overhead   : {statistics.median(overheads) * 1000:.2f} ms per model "
          f"[{min(overheads) * 1000:.2f}/{max(overheads) * 1000:.2f}] (wall minus node build time / threads)")


if __name__ == "__main__":
    main()
