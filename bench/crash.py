#!/usr/bin/env python3
"""Crash loop: `kill -9` pm at a random moment of `pm build`, then build again.

    python3 bench/crash.py [--kills 50] [--seed 1] [--pm PATH ...]

Writes a project under bench/out/crash_<n>/ (one per binary, each with its
own embedded PostgreSQL) with tables, incremental models (delete+insert and
merge), views, a materialized view and data tests, 4 threads. For each pm
binary given (default: this checkout's release build) it builds the project
once cleanly and records every relation's row count and checksum, then
repeats --kills times: start `pm build`, `kill -9` it after a random delay
(uniform over a clean rebuild's wall time, same delays for every binary),
and run `pm build` again. A crash "left the project unable to build" when
that second build fails; the project is then repaired by dropping its schema
so the loop goes on. After each successful second build every relation must
hold the same rows as after the clean build. Prints, per binary, how many
kills left it unable to build, how many of the second builds announced that
they removed leftovers, and how many relations held wrong rows.
"""
import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import time

from common import HERE, local_server, pm_binary, sh

TABLES = 8
ROWS = 60000


def write_project(proj):
    """A project whose build is a few seconds of many short transactions."""
    if os.path.exists(proj):
        shutil.rmtree(proj)
    os.makedirs(os.path.join(proj, "models"))
    files = {
        "dbt_project.yml": "name: crash\nprofile: crash\nversion: '1.0'\n",
        "models/base.sql": "{{ config(materialized='table') }}\n"
        f"select g as id, g % 97 as k, md5(g::text) as h from generate_series(1, {ROWS}) g\n",
        "models/mv.sql": "{{ config(materialized='materialized_view') }}\n"
        "select k, count(*) as n from {{ ref('base') }} group by k\n",
    }
    tests = []
    for i in range(TABLES):
        files[f"models/t_{i}.sql"] = "{{ config(materialized='table') }}\n" \
            f"select id, k, h || '{i}' as h from {{{{ ref('base') }}}} where id % {i + 2} = 0\n"
        strategy = "delete+insert" if i % 2 == 0 else "merge"
        files[f"models/inc_{i}.sql"] = (
            f"{{{{ config(materialized='incremental', unique_key='id', incremental_strategy='{strategy}') }}}}\n"
            f"select id, k, h from {{{{ ref('t_{i}') }}}}\n"
            "{% if is_incremental() %} where id > (select coalesce(max(id), 0) - 5000 from {{ this }}){% endif %}\n"
        )
        files[f"models/v_{i}.sql"] = "{{ config(materialized='view') }}\n" \
            f"select t.id, t.k, i.h from {{{{ ref('t_{i}') }}}} t join {{{{ ref('inc_{i}') }}}} i using (id)\n"
        files[f"models/agg_{i}.sql"] = "{{ config(materialized='table') }}\n" \
            f"select k, count(*) as n, max(h) as h from {{{{ ref('v_{i}') }}}} group by k\n"
        tests.append(f"  - name: inc_{i}\n    columns:\n      - name: id\n"
                     "        data_tests: [unique, not_null]\n")
    files["models/schema.yml"] = "version: 2\nmodels:\n" + "".join(tests)
    for path, text in files.items():
        with open(os.path.join(proj, path), "w") as f:
            f.write(text)
    os.chmod(proj, 0o755)


def relations_sql():
    names = ["base", "mv"] + [f"{p}_{i}" for i in range(TABLES) for p in ("t", "inc", "v", "agg")]
    parts = [f"select '{n}' as r, count(*) as n, md5(coalesce(string_agg(x::text, ',' order by x::text), '')) "
             f"as sum from public.{n} x" for n in names]
    return " union all ".join(parts) + " order by 1"


def snapshot(psql, url):
    p = subprocess.run([psql, url, "-XAtq", "-c", relations_sql()], capture_output=True, text=True)
    return p.stdout if p.returncode == 0 else None


def build(pm, proj):
    return subprocess.run([pm, "build", "-q", "--threads", "4"], cwd=proj, capture_output=True, text=True)


def crash_loop(pm, proj, delays):
    write_project(proj)
    url, psql = local_server(pm, proj)
    try:
        for _ in range(2):  # the first creates everything; the second is what is killed later
            t0 = time.perf_counter()
            clean = build(pm, proj)
            wall = time.perf_counter() - t0
            if clean.returncode != 0:
                sys.exit(f"the clean build failed:\n{clean.stdout}{clean.stderr}")
        good = snapshot(psql, url)
        stuck, announced, wrong, errors = 0, 0, 0, []
        for delay in delays:
            p = subprocess.Popen([pm, "build", "-q", "--threads", "4"], cwd=proj,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(delay * wall)
            p.send_signal(signal.SIGKILL)
            p.wait()
            again = build(pm, proj)
            out = again.stdout + again.stderr
            if "interrupted run left behind" in out:
                announced += 1
            if again.returncode != 0:
                stuck += 1
                errors.append(next((l for l in out.splitlines() if "rror" in l or "is not" in l), out[:200]))
                sh([psql, url, "-Xq", "-c", "drop schema public cascade; create schema public"])
                if build(pm, proj).returncode != 0:
                    sys.exit("the build after repairing the schema failed")
            elif snapshot(psql, url) != good:
                wrong += 1
        return wall, stuck, announced, wrong, errors
    finally:
        subprocess.run([pm, "db", "stop", "-q"], cwd=proj, capture_output=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--pm", nargs="+", help="pm binaries to compare (default: this checkout's)")
    a = ap.parse_args()
    binaries = a.pm or [None]
    rng = random.Random(a.seed)
    delays = [rng.uniform(0.0, 1.0) for _ in range(a.kills)]
    print(f"{a.kills} kill -9s during pm build ({2 + 4 * TABLES} models: tables, incremental "
          f"delete+insert and merge, views, a materialized view; {2 * TABLES} tests; 4 threads)")
    for n, given in enumerate(binaries):
        pm = pm_binary(given)
        proj = os.path.join(HERE, "out", f"crash_{n}")
        t0 = time.perf_counter()
        wall, stuck, announced, wrong, errors = crash_loop(pm, proj, delays)
        print(f"{pm}\n  clean build {wall:.2f} s; unable to build after the kill: {stuck}/{a.kills}; "
              f"leftovers removed and named: {announced}; relations with wrong rows: {wrong} "
              f"({time.perf_counter() - t0:.0f} s)")
        for e in sorted(set(errors)):
            print(f"    {errors.count(e)}× {e.strip()}")


if __name__ == "__main__":
    main()
