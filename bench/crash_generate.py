#!/usr/bin/env python3
"""Crash loop: `kill -9` `pm generate --append-days 1` at a random moment.

    python3 bench/crash_generate.py [--kills 100] [--seed 1] [--scale 0.3] [--pm PATH ...]

Copies PulseMetrics to bench/out/crash_generate_<n>/ (one per binary, each
with its own embedded PostgreSQL) and loads --days 60 of it. An uninterrupted
`--append-days 1` gives the reference: every raw table's row count and the
sum of its rows' hashes. Then, --kills times, from a fresh copy of the loaded
dataset (a template database): start the append, `kill -9` it after a random
delay (uniform over the uninterrupted append's wall time, the same delays for
every binary), and look at raw: it must hold either the loaded rows (nothing
of the day) or the reference (all of it); when it holds the loaded rows, the
same command is run again and must end with the reference. Prints, per
binary, how many kills left raw with part of the day, how many re-runs
failed, and how many ended with other rows than the reference.
"""
import argparse
import os
import random
import shutil
import signal
import subprocess
import time

from common import HERE, ROOT, local_server, pm_binary, sh

FINGERPRINT = """
select string_agg(t || ' ' || n, E'\\n' order by t) from (
  select 'companies' t, count(*) || ' ' || coalesce(sum(hashtext(x::text)::bigint), 0) n from raw.companies x union all
  select 'users', count(*) || ' ' || coalesce(sum(hashtext(x::text)::bigint), 0) from raw.users x union all
  select 'sessions', count(*) || ' ' || coalesce(sum(hashtext(x::text)::bigint), 0) from raw.sessions x union all
  select 'events', count(*) || ' ' || coalesce(sum(hashtext(x::text)::bigint), 0) from raw.events x union all
  select 'subscriptions', count(*) || ' ' || coalesce(sum(hashtext(x::text)::bigint), 0) from raw.subscriptions x union all
  select 'subscription_changes', count(*) || ' ' || coalesce(sum(hashtext(x::text)::bigint), 0) from raw.subscription_changes x union all
  select 'payments', count(*) || ' ' || coalesce(sum(hashtext(x::text)::bigint), 0) from raw.payments x union all
  select 'partner_commissions', count(*) || ' ' || coalesce(sum(hashtext(x::text)::bigint), 0) from raw.partner_commissions x union all
  select 'generator_state', string_agg(end_date::text, ',') from raw.generator_state
) s
"""


def fingerprint(psql, url):
    return sh([psql, url, "-XAtq", "-c", FINGERPRINT]).stdout


def with_db(url, db):
    """The URL of another database of the same server."""
    base, query = url.split("?", 1)
    return base.rsplit("/", 1)[0] + "/" + db + "?" + query


def append(pm, proj):
    return subprocess.run([pm, "generate", "-q", "--append-days", "1", "--project-dir", proj],
                          cwd=proj, capture_output=True, text=True)


def crash_loop(pm, proj, a, delays):
    if os.path.exists(proj):
        shutil.rmtree(proj)
    shutil.copytree(os.path.join(ROOT, "project"), proj,
                    ignore=shutil.ignore_patterns(".pm", "target", "logs"))
    os.chmod(proj, 0o755)
    sh([pm, "generate", "-q", "--seed", str(a.seed), "--scale", str(a.scale), "--start", "2024-01-01",
        "--days", "60", "--project-dir", proj], cwd=proj)
    url, psql = local_server(pm, proj)
    admin = with_db(url, "postgres")
    try:
        # The loaded dataset, kept as a template to start each kill from.
        sh([psql, admin, "-Xq", "-c", "create database loaded template pm"])
        loaded = fingerprint(psql, url)
        t0 = time.perf_counter()
        first = append(pm, proj)
        wall = time.perf_counter() - t0
        if first.returncode != 0:
            raise SystemExit(f"the uninterrupted append failed:\n{first.stderr}")
        reference = fingerprint(psql, url)
        part, rerun_failed, wrong, whole, nothing = 0, 0, 0, 0, 0
        for delay in delays:
            sh([psql, admin, "-Xq", "-c", "drop database pm with (force)", "-c",
                "create database pm template loaded"])
            p = subprocess.Popen([pm, "generate", "-q", "--append-days", "1", "--project-dir", proj],
                                 cwd=proj, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(delay * wall)
            p.send_signal(signal.SIGKILL)
            p.wait()
            # The server finishes (or rolls back) what the killed pm had sent.
            while sh([psql, url, "-XAtq", "-c",
                      "select count(*) from pg_stat_activity where application_name = 'pm'"]).stdout.strip() != "0":
                time.sleep(0.05)
            now = fingerprint(psql, url)
            if now == reference:
                whole += 1
                continue
            if now != loaded:
                part += 1
                continue
            nothing += 1
            again = append(pm, proj)
            if again.returncode != 0:
                rerun_failed += 1
            elif fingerprint(psql, url) != reference:
                wrong += 1
        return wall, part, rerun_failed, wrong, whole, nothing
    finally:
        subprocess.run([pm, "db", "stop", "-q"], cwd=proj, capture_output=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--scale", type=float, default=0.3)
    ap.add_argument("--pm", nargs="+", help="pm binaries to compare (default: this checkout's)")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    delays = [rng.uniform(0.0, 1.0) for _ in range(a.kills)]
    print(f"{a.kills} kill -9s during pm generate --append-days 1 (PulseMetrics, scale {a.scale}, 60 days loaded)")
    for n, given in enumerate(a.pm or [None]):
        pm = pm_binary(given)
        proj = os.path.join(HERE, "out", f"crash_generate_{n}")
        t0 = time.perf_counter()
        wall, part, rerun_failed, wrong, whole, nothing = crash_loop(pm, proj, a, delays)
        print(f"{pm}\n  uninterrupted append {wall:.2f} s; after the kill: nothing of the day {nothing}, "
              f"all of it {whole}, part of it {part}; re-runs that failed: {rerun_failed}; "
              f"re-runs that ended with other rows than the uninterrupted run: {wrong} "
              f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
