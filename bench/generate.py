#!/usr/bin/env python3
"""`pm generate` against `psql \\copy` of the same rows as CSV, side by side.

    python3 bench/generate.py [--scales 1 10] [--runs 3] [--pm PATH]

For each scale, in one run against one embedded PostgreSQL (a bench project
under bench/out/):
  - `pm generate --out DIR` writes the dataset as CSV files (not timed as a load);
  - `pm generate` simulates the business and loads it (warehouse DDL, binary
    COPY of every table at once, ANALYZE, one commit): its wall time and peak
    memory (RSS) are measured from outside;
  - psql loads the same CSV files: one psql per table, all at once (as pm
    does), each `begin; truncate; \\copy; analyze; commit` (the truncate in the
    same transaction lets PostgreSQL skip WAL, as pm's load does).
Rows per second are total rows ÷ wall time; the dataset is the same for both
(same seed, scale, start and days).
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

from common import HERE, local_server, pm_binary, sh

TABLES = ["plans", "titles", "companies", "users", "sessions", "events", "subscriptions",
          "subscription_changes", "payments", "partner_commissions"]
START = "2025-01-01"
DAYS = "365"


def run_measured(cmd, cwd):
    """Runs cmd; returns (seconds, peak RSS in MiB) of that process."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(p.pid, 0)
    elapsed = time.perf_counter() - t0
    out, err = p.stdout.read(), p.stderr.read()
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({p.returncode}):\n{out}\n{err}")
    return elapsed, usage.ru_maxrss / 1024


def psql_load(psql, url, csv_dir):
    """Loads every CSV at once, one psql each; returns the wall time."""
    t0 = time.perf_counter()
    procs = []
    for t in TABLES:
        path = os.path.join(csv_dir, f"{t}.csv")
        procs.append(subprocess.Popen(
            [psql, url, "-Xq", "-v", "ON_ERROR_STOP=1",
             "-c", "begin", "-c", f"truncate raw.{t}",
             "-c", f"\\copy raw.{t} from '{path}' with (format csv, header true)",
             "-c", f"analyze raw.{t}", "-c", "commit"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for p in procs:
        _, err = p.communicate()
        if p.returncode != 0:
            sys.exit(f"psql failed: {err}")
    return time.perf_counter() - t0


def count_rows(psql, url):
    q = " union all ".join(f"select count(*) from raw.{t}" for t in TABLES)
    out = sh([psql, url, "-XAtc", f"select sum(count) from ({q}) as c(count)"]).stdout
    return int(out.strip())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scales", type=float, nargs="+", default=[1.0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--pm")
    a = ap.parse_args()
    pm = pm_binary(a.pm)
    proj = os.path.join(HERE, "out", "generate")
    os.makedirs(proj, exist_ok=True)
    os.chmod(proj, 0o755)
    with open(os.path.join(proj, "pm_project.yml"), "w") as f:
        f.write("name: generatebench\n")
    url, psql = local_server(pm, proj)
    try:
        for scale in a.scales:
            flags = ["--seed", "42", "--scale", str(scale), "--start", START, "--days", DAYS]
            csv_dir = os.path.join(proj, f"csv_{scale:g}")
            shutil.rmtree(csv_dir, ignore_errors=True)
            t_csv, _ = run_measured([pm, "generate", "-q", "--out", csv_dir] + flags, proj)
            # Warm-up: creates the warehouse and the partitions.
            run_measured([pm, "generate", "-q"] + flags, proj)
            rows = count_rows(psql, url)
            pm_times, pm_rss, psql_times = [], [], []
            for _ in range(a.runs):
                t, rss = run_measured([pm, "generate", "-q"] + flags, proj)
                pm_times.append(t)
                pm_rss.append(rss)
                assert count_rows(psql, url) == rows
                psql_times.append(psql_load(psql, url, csv_dir))
                assert count_rows(psql, url) == rows
            csv_mb = sum(os.path.getsize(os.path.join(csv_dir, f"{t}.csv")) for t in TABLES) / 2**20
            p, q = statistics.median(pm_times), statistics.median(psql_times)
            print(f"scale {scale:g}: {rows:,} rows ({csv_mb:,.0f} MiB as CSV), median of {a.runs} runs [min/max]")
            print(f"  pm generate --out (CSV files) : {t_csv:.2f} s")
            print(f"  pm generate (simulate + load) : {p:.2f} s [{min(pm_times):.2f}/{max(pm_times):.2f}]"
                  f"  {rows / p:,.0f} rows/s  peak RSS {max(pm_rss):.0f} MiB")
            print(f"  psql \\copy of the CSV files   : {q:.2f} s [{min(psql_times):.2f}/{max(psql_times):.2f}]"
                  f"  {rows / q:,.0f} rows/s")
            print(f"  pm's rows/s = {q / p * 100:.0f}% of psql \\copy's")
            shutil.rmtree(csv_dir, ignore_errors=True)
    finally:
        sh([pm, "db", "stop", "-q"], cwd=proj)


if __name__ == "__main__":
    main()
