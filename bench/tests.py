#!/usr/bin/env python3
"""pm test on a 1,000,000-row table with not_null on 10 columns and unique on 2:
merged scans against the same tests run one query each.

Three ways, side by side, on the same table and the same server:
  - pm test (not_null tests merged into one scan, unique tests each on their own,
    all under --threads 4);
  - pm test with PM_TEST_MERGE=0 (one query per test, --threads 4);
  - the twelve test queries one after the other through psql (what a
    one-query-per-test tool without parallelism does).
Usage: python3 bench/tests.py [--rows N] [--runs R] [--pm PATH]
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import HERE, local_server, pm_binary, sh  # noqa: E402

COLS = [f"c{k}" for k in range(10)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--pm")
    a = ap.parse_args()
    pm = pm_binary(a.pm)
    proj = os.path.join(HERE, "out", f"tests_{a.rows}")
    os.makedirs(os.path.join(proj, "models"), exist_ok=True)
    os.chmod(proj, 0o755)
    with open(os.path.join(proj, "pm_project.yml"), "w") as f:
        f.write("name: testbench\n")
    with open(os.path.join(proj, "models", "schema.yml"), "w") as f:
        f.write("version: 2\nsources:\n  - name: bench\n    schema: bench\n    tables:\n      - name: wide\n        columns:\n")
        for c in COLS:
            f.write(f"          - name: {c}\n            data_tests: [not_null]\n")
        for c in ["id", "code"]:
            f.write(f"          - name: {c}\n            data_tests: [unique]\n")
    url, psql = local_server(pm, proj)
    cols = ", ".join(
        f"(i % {k + 7})::{'text' if k % 2 else 'int'} as {c}" for k, c in enumerate(COLS))
    sh([psql, url, "-Xqc",
        "drop schema if exists bench cascade; create schema bench; "
        f"create table bench.wide as select i as id, md5(i::text) as code, {cols} "
        f"from generate_series(1, {a.rows}) i; analyze bench.wide;"])
    singles = [f"select count(*) from (select {c} from bench.wide where {c} is null) t" for c in COLS]
    singles += [f"select count(*) from (select {c} from bench.wide where {c} is not null "
                f"group by {c} having count(*) > 1) t" for c in ["id", "code"]]
    times = {"merged": [], "single": [], "psql": []}
    try:
        sh([pm, "test", "-q", "--threads", "4"], cwd=proj)  # warm the cache
        for _ in range(a.runs):
            t0 = time.perf_counter()
            sh([pm, "test", "-q", "--threads", "4"], cwd=proj)
            times["merged"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            sh([pm, "test", "-q", "--threads", "4"], cwd=proj, env={**os.environ, "PM_TEST_MERGE": "0"})
            times["single"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            for q in singles:
                sh([psql, url, "-XAtc", q])
            times["psql"].append(time.perf_counter() - t0)
    finally:
        sh([pm, "db", "stop", "-q"], cwd=proj)
    base = statistics.median(times["psql"])
    print(f"{a.rows} rows, not_null on 10 columns + unique on 2; median of {a.runs} runs [min/max]")
    for label, key in [("pm test (merged scans, 4 threads)   ", "merged"),
                       ("pm test, one query per test, 4 thr. ", "single"),
                       ("12 queries one after another (psql) ", "psql")]:
        t = times[key]
        med = statistics.median(t)
        print(f"  {label}: {med:.3f} s  [{min(t):.3f}/{max(t):.3f}]  = {med / base * 100:.0f}% of the one-by-one time")


if __name__ == "__main__":
    main()
