#!/usr/bin/env python3
"""Seed loading speed: `pm seed` against `psql \\copy` of the same CSV.

    python3 bench/seed.py [--rows 1000000] [--runs 3] [--pm PATH]

The CSV comes from ../shared/bench/gen_seed.py. Both loads go to pm's embedded
PostgreSQL of a bench project under bench/out/, into tables of the same
column types (the seed's column_types match gen_seed.py's DDL). psql's table
is created before its clock starts; pm's clock covers everything `pm seed`
does (reading the project, checking and typing the CSV, COPY, swap).
"""
import argparse
import os
import statistics
import sys
import time

from common import HERE, SHARED_BENCH, local_server, pm_binary, sh

GEN = os.path.join(SHARED_BENCH, "gen_seed.py")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--pm")
    ap.add_argument("--infer", action="store_true",
                    help="give pm no column_types: it reads the file once more to infer them "
                         "(amount then becomes double precision, psql's table keeps numeric)")
    a = ap.parse_args()
    pm = pm_binary(a.pm)
    proj = os.path.join(HERE, "out", f"seed_{a.rows}")
    os.makedirs(os.path.join(proj, "seeds"), exist_ok=True)
    os.chmod(proj, 0o755)
    csv_path = os.path.join(proj, "seeds", "big.csv")
    if not os.path.exists(csv_path):
        sh([sys.executable, GEN, "--rows", str(a.rows), "--out", csv_path])
    with open(os.path.join(proj, "pm_project.yml"), "w") as f:
        if a.infer:
            f.write("name: seedbench\n")
        else:
            f.write("name: seedbench\nseeds:\n  seedbench:\n    big:\n      +column_types:\n"
                    "        id: integer\n        name: text\n        created_at: timestamp without time zone\n"
                    "        amount: numeric\n        active: boolean\n")
    url, psql = local_server(pm, proj)
    ddl = ("drop table if exists psql_big; create table psql_big (id integer, name text, "
           "created_at timestamp without time zone, amount numeric, active boolean);")
    pm_times, pm_replace_times, psql_times = [], [], []
    try:
        sh([pm, "seed", "-q"], cwd=proj)  # warm up the page cache and the server
        for _ in range(a.runs):
            sh([psql, url, "-Xqc", ddl])
            t0 = time.perf_counter()
            sh([psql, url, "-Xqc", f"\\copy psql_big from '{csv_path}' with (format csv, header true)"])
            psql_times.append(time.perf_counter() - t0)
            # Like psql's, pm's table does not exist when its clock starts ...
            sh([psql, url, "-Xqc", "drop table if exists public.big"])
            t0 = time.perf_counter()
            sh([pm, "seed", "-q"], cwd=proj)
            pm_times.append(time.perf_counter() - t0)
            # ... and then the everyday case: replacing the table of the last run.
            t0 = time.perf_counter()
            sh([pm, "seed", "-q"], cwd=proj)
            pm_replace_times.append(time.perf_counter() - t0)
        n = sh([psql, url, "-XAtc", "select count(*) from public.big"]).stdout.strip()
        assert int(n) == a.rows, f"pm loaded {n} rows, expected {a.rows}"
    finally:
        sh([pm, "db", "stop", "-q"], cwd=proj)
    q = statistics.median(psql_times)
    print(f"{a.rows} rows, median of {a.runs} runs each (min/max in brackets)")
    print(f"  psql \\copy into a new table : {q:.3f} s  [{min(psql_times):.3f}/{max(psql_times):.3f}]  {a.rows / q:,.0f} rows/s")
    for label, times in [("pm seed, new table       ", pm_times), ("pm seed, replacing table ", pm_replace_times)]:
        p = statistics.median(times)
        print(f"  {label}   : {p:.3f} s  [{min(times):.3f}/{max(times):.3f}]  {a.rows / p:,.0f} rows/s"
              f"  = {q / p * 100:.0f}% of psql's rows/s")


if __name__ == "__main__":
    main()
