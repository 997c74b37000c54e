#!/usr/bin/env python3
"""PulseMetrics built by pm and by dbt on the same data: times side by side,
and every table's contents compared.

    python3 bench/pulsemetrics.py [--scale 1] [--pm PATH] [--dbt PATH]

dbt installs with `pip install "dbt-core==1.11.16" "dbt-postgres==1.11.0"`.
One run, against one embedded PostgreSQL (a copy of project/ under
bench/out/pulsemetrics):
  1. `pm generate` loads a year of data (seed 42, from 2025-01-01);
  2. with the marts' schemas emptied, `pm build --full-refresh`, then the
     contents of every relation (row count and a hash of every row, column
     names and types) are taken; the same with `dbt build --full-refresh`;
     both must be equal;
  3. `pm generate --append-days 1` adds a day, and the nightly build runs
     with each tool in turn on the tables the previous one left (the daily
     models incremental: they compute the recent days again, see
     project/macros/recomputed_days.sql; the rest rebuilt); again compared,
     and then with a full rebuild by pm.
Times are wall-clock times of the whole command (dbt's include its parse).
"""
import argparse
import os
import shutil
import subprocess
import sys

from common import HERE, ROOT, dbt_profiles, local_server, pm_binary, sh, timed

SCHEMAS = ["reference", "staging", "intermediate", "analytics"]


def contents(psql, url):
    """{relation: (columns and types, rows, hash of rows)} of the marts' schemas."""
    q = ("select table_schema || '.' || table_name, string_agg(column_name || ' ' || data_type, ', ' "
         "order by ordinal_position) from information_schema.columns where table_schema = any(array[{}]) "
         # The job log records each tool's own invocation ids and times.
         "and table_name <> 'metrics_job_log' group by 1 order by 1").format(", ".join(f"'{s}'" for s in SCHEMAS))
    out = {}
    for line in sh([psql, url, "-XAtc", q]).stdout.splitlines():
        rel, cols = line.split("|", 1)
        n, h = sh([psql, url, "-XAtc",
                   f"select count(*), coalesce(sum(hashtextextended(t::text, 0)::numeric), 0) from {rel} as t"]
                  ).stdout.strip().split("|")
        out[rel] = (cols, int(n), h)
    return out


def compare(label, a, b):
    differ = [r for r in sorted(set(a) | set(b)) if a.get(r) != b.get(r)]
    rows = sum(v[1] for v in a.values())
    if differ:
        print(f"  {label}: {len(differ)} of {len(set(a) | set(b))} relations differ:")
        for r in differ:
            print(f"    {r}: pm {a.get(r, ('missing', 0, ''))[1:]} dbt {b.get(r, ('missing', 0, ''))[1:]}")
    else:
        print(f"  {label}: all {len(a)} relations equal ({rows:,} rows, columns and types)")
    return not differ


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", default="1")
    ap.add_argument("--pm")
    ap.add_argument("--dbt", default=shutil.which("dbt"))
    a = ap.parse_args()
    if not a.dbt:
        sys.exit('dbt not found: pip install "dbt-core==1.11.16" "dbt-postgres==1.11.0", or pass --dbt PATH')
    pm = pm_binary(a.pm)
    proj = os.path.join(HERE, "out", "pulsemetrics")
    if os.path.exists(os.path.join(proj, ".pm")):
        subprocess.run([pm, "db", "stop", "-q"], cwd=proj)
    shutil.rmtree(proj, ignore_errors=True)
    shutil.copytree(os.path.join(ROOT, "project"), proj,
                    ignore=shutil.ignore_patterns(".pm", "target", "logs"))
    os.chmod(proj, 0o755)
    url, psql = local_server(pm, proj)
    dbt = [a.dbt, "--no-use-colors"]
    dbt_flags = dbt_profiles(url, "pulsemetrics", os.path.join(HERE, "out", "dbt_profiles"))

    def empty_marts():
        sh([psql, url, "-Xqc", "; ".join(f"drop schema if exists {s} cascade" for s in SCHEMAS)])
        # Re-applies warehouse/*.sql (schemas and their grants) without touching raw.
        sh([pm, "generate", "--if-empty", "-q"], cwd=proj)

    try:
        t_gen, _ = timed([pm, "generate", "-q", "--seed", "42", "--scale", a.scale,
                          "--start", "2025-01-01", "--days", "365"], proj)
        rows = sh([psql, url, "-XAtc", "select sum(n_live_tup) from pg_stat_user_tables where schemaname = 'raw'"]
                  ).stdout.strip()
        print(f"PulseMetrics at scale {a.scale}: ~{int(rows):,} raw rows generated and loaded in {t_gen:.2f} s")
        ok = True

        empty_marts()
        # rebuild_history: the models that keep history past raw retention
        # (full_refresh: false) are rebuilt too, by both tools.
        rebuild = ["--vars", "{rebuild_history: true}"]
        t_pm, _ = timed([pm, "build", "--full-refresh", "-q"] + rebuild, proj)
        pm_full = contents(psql, url)
        empty_marts()
        t_dbt, _ = timed(dbt + ["build", "--full-refresh"] + rebuild + dbt_flags, proj)
        dbt_full = contents(psql, url)
        nodes = sh([pm, "ls", "-q", "--resource-type", "seed", "model", "test"], cwd=proj).stdout.count("\n")
        print(f"  full build ({nodes} nodes: seeds, models, tests):")
        print(f"    pm build   {t_pm:7.2f} s")
        print(f"    dbt build  {t_dbt:7.2f} s   (pm {t_dbt / t_pm:.1f}x faster)")
        ok &= compare("full build", pm_full, dbt_full)

        t_add, _ = timed([pm, "generate", "--append-days", "1", "-q"], proj)
        t_pm_n, _ = timed([pm, "build", "-q"], proj)
        pm_nightly = contents(psql, url)
        t_dbt_n, _ = timed(dbt + ["build"] + dbt_flags, proj)
        dbt_nightly = contents(psql, url)
        print(f"  nightly: pm generate --append-days 1 {t_add:.2f} s, then the incremental build:")
        print(f"    pm build   {t_pm_n:7.2f} s")
        print(f"    dbt build  {t_dbt_n:7.2f} s   (pm {t_dbt_n / t_pm_n:.1f}x faster)")
        ok &= compare("nightly build", pm_nightly, dbt_nightly)
        # The incremental models hold what a full rebuild from raw computes.
        sh([pm, "build", "--full-refresh", "-q"] + rebuild, cwd=proj)
        ok &= compare("nightly build against a full rebuild", pm_nightly, contents(psql, url))
        print(f"    nightly / full: pm {t_pm_n / t_pm:.2f}, dbt {t_dbt_n / t_dbt:.2f}")
        counts = {r: v[1] for r, v in pm_nightly.items() if r.startswith("analytics.")}
        print("  rows per table (analytics): " + ", ".join(f"{r.split('.')[1]} {n:,}" for r, n in sorted(counts.items())))
        raw = sh([psql, url, "-XAtc", "select relname, n_live_tup from pg_stat_user_tables where schemaname = 'raw' "
                  "and relname not like 'events\\_%' order by 1"]).stdout
        raw_events = sh([psql, url, "-XAtc", "select count(*) from raw.events"]).stdout.strip()
        print("  rows per table (raw): " + ", ".join(
            f"{l.split('|')[0]} {int(l.split('|')[1]):,}" if l.split('|')[0] != "events" else f"events {int(raw_events):,}"
            for l in raw.splitlines()))
        if not ok:
            sys.exit(1)
    finally:
        sh([pm, "db", "stop", "-q"], cwd=proj)


if __name__ == "__main__":
    main()
