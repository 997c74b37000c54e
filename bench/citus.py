#!/usr/bin/env python3
"""PulseMetrics built on one PostgreSQL and on a local Citus cluster (a
coordinator and two workers on the same machine): times side by side, and
every table of the marts compared.

    python3 bench/citus.py [--scale 10] [--days 365] [--pm PATH]

Needs the Citus extension (../shared/citus/install.sh). One run, two copies
of project/ under bench/out/citus/ (each with its own embedded servers):
  1. `pm generate` loads the same data into both (seed 42, from 2025-01-01);
  2. `pm build --full-refresh` builds the marts on each; its wall time is
     the figure (the whole command);
  3. every table of the intermediate, analytics and reference schemas is
     compared (row count and the sum of its rows' hashes): they must agree.
On one 2-core machine three servers are not faster than one: each query's
work is split into 32 shard tasks that share the same two cores, plus the
coordination. What the run shows is that the plans are distributed (the
facts are built on the workers) and that the numbers do not change.
"""
import argparse
import os
import shutil
import subprocess
import sys

from common import HERE, ROOT, local_server, pm_binary, sh, timed

SCHEMAS = ("intermediate", "analytics", "reference")


def psql(server, query):
    url, psql_path = server
    return sh([psql_path, url, "-AtX", "-c", query]).stdout.strip()


def fingerprints(server):
    tables = psql(
        server,
        "select table_schema || '.' || table_name from information_schema.tables "
        f"where table_schema in {SCHEMAS} and table_type = 'BASE TABLE' order by 1",
    ).splitlines()
    return {
        # Order-independent, and small enough for tables of millions of rows:
        # the sum of each row's hash (60 bits of its MD5).
        t: psql(server, f"select count(*), sum(('x' || left(md5(x::text), 15))::bit(60)::bigint::numeric) from {t} x")
        for t in tables
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", default="10")
    ap.add_argument("--days", default="365")
    ap.add_argument("--pm", help="pm binary (default: build target/release/pm)")
    args = ap.parse_args()
    pm = pm_binary(args.pm)
    out = os.path.join(HERE, "out", "citus")
    projects, servers = {}, {}
    for name, workers in (("single", None), ("cluster", "2")):
        proj = os.path.join(out, name)
        if os.path.exists(proj):
            subprocess.run([pm, "db", "stop"], cwd=proj, capture_output=True)
            shutil.rmtree(proj)
        shutil.copytree(os.path.join(ROOT, "project"), proj, ignore=shutil.ignore_patterns(".pm", "target"))
        os.chmod(proj, 0o755)
        start = [pm, "db", "start"] + (["--workers", workers] if workers else [])
        sh(start, cwd=proj)
        projects[name] = proj
        servers[name] = local_server(pm, proj)
    gen = ["generate", "--seed", "42", "--scale", args.scale, "--start", "2025-01-01", "--days", args.days]
    times = {}
    try:
        for name, proj in projects.items():
            times[(name, "generate")] = timed([pm] + gen, proj)[0]
            times[(name, "build")] = timed([pm, "build", "--full-refresh", "--vars", "{rebuild_history: true}"], proj)[0]
        single, cluster = (fingerprints(servers[n]) for n in ("single", "cluster"))
        differ = [t for t in single if single[t] != cluster.get(t)]
        shards = psql(
            servers["cluster"],
            "select count(distinct nodeport) from citus_shards where table_name = 'analytics.fct_events'::regclass",
        )
        rows = psql(servers["single"], "select count(*) from analytics.fct_events")
    finally:
        for proj in projects.values():
            subprocess.run([pm, "db", "stop"], cwd=proj, capture_output=True)
    print(f"PulseMetrics --scale {args.scale} --days {args.days} ({rows} fct_events rows), {os.cpu_count()} cores")
    print(f"{'step':<10} {'one node':>10} {'coordinator + 2 workers':>25}")
    for step in ("generate", "build"):
        print(f"{step:<10} {times[('single', step)]:>9.1f}s {times[('cluster', step)]:>24.1f}s")
    print(f"tables compared: {len(single)}, differing: {len(differ)} {differ if differ else ''}")
    print(f"fct_events' shards on {shards} workers")
    if differ:
        sys.exit(1)


if __name__ == "__main__":
    main()
