#!/usr/bin/env python3
"""`pm run` of models that query the warehouse while rendering, against
`dbt run` of the same project.

    python3 bench/run_render.py [--models 400] [--runs 3] [--pm PATH ...] [--dbt PATH]

Every model runs `run_query` in its template, so pm renders it again right
before it runs, with the warehouse at hand (dbt renders every node then).
One project of --models views under bench/out/run_render, one embedded
PostgreSQL, 4 threads for both tools; each binary given with --pm (say, before
and after a change) and dbt run it in turn, --runs times, and the median wall
time of the whole command is printed.
"""
import argparse
import os
import shutil
import statistics
import sys

from common import HERE, dbt_profiles, local_server, pm_binary, sh, timed

MODEL = """{{ config(materialized='view') }}
{% set r = run_query('select count(*) as n from pg_class') %}
select {% if execute %}{{ r.columns[0].values()[0] }}{% else %}0{% endif %} as relations
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=400)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--pm", nargs="+", help="pm binaries (default: build target/release/pm)")
    ap.add_argument("--dbt", default=shutil.which("dbt"))
    a = ap.parse_args()
    pms = [pm_binary(p) for p in (a.pm or [None])]
    proj = os.path.join(HERE, "out", "run_render")
    if os.path.exists(os.path.join(proj, ".pm")):
        sh([pms[0], "db", "stop", "-q"], cwd=proj)
    shutil.rmtree(proj, ignore_errors=True)
    os.makedirs(os.path.join(proj, "models"))
    with open(os.path.join(proj, "dbt_project.yml"), "w") as f:
        f.write("name: run_render\nversion: '1.0'\nconfig-version: 2\nprofile: run_render\n")
    for i in range(a.models):
        with open(os.path.join(proj, "models", f"m{i:04}.sql"), "w") as f:
            f.write(MODEL)
    url, _ = local_server(pms[0], proj)
    commands = [(f"pm run ({p})", [p, "run", "-q", "--threads", "4"]) for p in pms]
    if a.dbt:
        flags = dbt_profiles(url, "run_render", os.path.join(HERE, "out", "dbt_profiles"))
        commands.append(("dbt run", [a.dbt, "--no-use-colors", "run"] + flags))
    else:
        print('dbt not found (pip install "dbt-core==1.11.16" "dbt-postgres==1.11.0"): pm only', file=sys.stderr)
    try:
        times = {label: [] for label, _ in commands}
        for label, cmd in commands:
            timed(cmd, proj)  # the first run creates the views
        for _ in range(a.runs):
            for label, cmd in commands:
                times[label].append(timed(cmd, proj)[0])
    finally:
        sh([pms[0], "db", "stop", "-q"], cwd=proj)
    print(f"{a.models} models rendered again at run time (run_query), 4 threads, median of {a.runs} runs:")
    for label, t in times.items():
        print(f"  {label:<60} {statistics.median(t):7.2f} s  [{min(t):.2f}/{max(t):.2f}]")


if __name__ == "__main__":
    main()
