#!/usr/bin/env python3
"""pm query against MetricFlow's mf query, on the same database.

Builds tests/fixtures/metrics (a shop with semantic models, metrics of each
type and a saved query) on pm's embedded PostgreSQL, points dbt's profile at
that server, and runs every query of QUERIES through both `pm query --output
csv` and `mf query --csv`. Every answer is compared row for row (as a
multiset, columns by name, numbers to 9 significant digits, timestamps
without their zone); the script prints each query's times and whether the
rows matched, then the totals, and exits 1 when any differ.

Needs dbt-core 1.11 with dbt-postgres, and MetricFlow beside it:
    pip install "dbt-core==1.11.16" "dbt-postgres==1.11.0" dbt-metricflow
Usage: python3 bench/semantic.py [--pm target/release/pm] [--only NAME]
"""

import argparse
import csv
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (name, arguments both tools take). Each metric type, each grain, joined
# and multi-hop dimensions, entities, filters, time bounds and saved queries.
QUERIES = [
    ("simple by month", ["--metrics", "revenue", "--group-by", "metric_time__month"]),
    ("every aggregation by quarter", ["--metrics", "revenue,customers_with_orders,average_order,median_order,p90_order,gift_orders,discounts", "--group-by", "metric_time__quarter"]),
    ("simple by day", ["--metrics", "revenue", "--group-by", "metric_time"]),
    ("simple by week", ["--metrics", "revenue", "--group-by", "metric_time__week"]),
    ("no grouping", ["--metrics", "revenue,signups"]),
    ("local dimensions", ["--metrics", "revenue", "--group-by", "order__status,order__is_gift"]),
    ("joined dimension", ["--metrics", "revenue", "--group-by", "metric_time__month,customer__tier"]),
    ("two hops", ["--metrics", "revenue", "--group-by", "customer__region__manager,customer__region__country"]),
    ("entity", ["--metrics", "revenue", "--group-by", "customer"]),
    ("joined entity", ["--metrics", "revenue", "--group-by", "customer__region"]),
    ("own time dimension at a grain", ["--metrics", "revenue", "--group-by", "order__ordered_at__month"]),
    ("joined time dimension", ["--metrics", "revenue", "--group-by", "customer__signed_up_on__month"]),
    ("metrics of two models", ["--metrics", "revenue,signups", "--group-by", "metric_time__month,customer__region"]),
    ("metric filter", ["--metrics", "completed_revenue,revenue", "--group-by", "metric_time__month"]),
    ("where on a joined dimension", ["--metrics", "revenue", "--group-by", "metric_time__month", "--where", "{{ Dimension('customer__tier') }} = 'pro'"]),
    ("where on a two-hop dimension", ["--metrics", "revenue,customers_with_orders", "--group-by", "customer__tier", "--where", "{{ Dimension('region__country', entity_path=['customer']) }} in ('US', 'NO')"]),
    ("where on metric_time", ["--metrics", "revenue", "--group-by", "customer__tier", "--where", "{{ TimeDimension('metric_time', 'day') }} >= '2024-03-01'"]),
    ("time bounds", ["--metrics", "revenue", "--group-by", "metric_time__month", "--start-time", "2024-02-15", "--end-time", "2024-05-10"]),
    ("ratio", ["--metrics", "revenue_per_customer", "--group-by", "metric_time__month"]),
    ("ratio with a filtered numerator", ["--metrics", "completed_share", "--group-by", "customer__tier"]),
    ("derived", ["--metrics", "net_revenue", "--group-by", "metric_time__month,customer__region"]),
    ("derived and simple together", ["--metrics", "net_revenue,revenue,discounts", "--group-by", "order__status"]),
    ("order and limit", ["--metrics", "revenue", "--group-by", "metric_time__month", "--order", "-revenue", "--limit", "3"]),
    ("saved query", ["--saved-query", "revenue_by_region"]),
    ("fill nulls, joined to the spine", ["--metrics", "orders", "--group-by", "metric_time__month"]),
    ("spine join with a dimension", ["--metrics", "orders,revenue", "--group-by", "metric_time__month,customer__tier"]),
    ("spine join within bounds", ["--metrics", "orders", "--group-by", "metric_time", "--start-time", "2024-06-01", "--end-time", "2024-06-20"]),
    ("fill nulls without metric_time", ["--metrics", "orders", "--group-by", "customer__region"]),
    ("cumulative 7 days by day", ["--metrics", "revenue_7d", "--group-by", "metric_time"]),
    ("cumulative 7 days by month and tier", ["--metrics", "revenue_7d", "--group-by", "metric_time__month,customer__tier"]),
    ("month to date by month", ["--metrics", "revenue_mtd", "--group-by", "metric_time__month"]),
    ("month to date by day within bounds", ["--metrics", "revenue_mtd", "--group-by", "metric_time", "--start-time", "2024-03-10", "--end-time", "2024-04-05"]),
    ("all time by week", ["--metrics", "revenue_all_time", "--group-by", "metric_time__week"]),
    ("all time, no metric_time", ["--metrics", "revenue_all_time", "--group-by", "customer__tier"]),
    ("offset a month, by month", ["--metrics", "revenue_growth_mom", "--group-by", "metric_time__month"]),
    ("offset a month, by day", ["--metrics", "revenue_growth_mom", "--group-by", "metric_time"]),
    ("non-additive: the last day's balances by month", ["--metrics", "total_balance", "--group-by", "metric_time__month"]),
    ("non-additive by month and tier", ["--metrics", "total_balance", "--group-by", "metric_time__month,customer__tier"]),
    ("non-additive, no grouping", ["--metrics", "total_balance"]),
    ("non-additive per customer's first day", ["--metrics", "opening_balance", "--group-by", "metric_time__month"]),
    ("non-additive by week and customer", ["--metrics", "opening_balance,total_balance", "--group-by", "metric_time__week,customer"]),
    ("conversion by month", ["--metrics", "visit_to_order", "--group-by", "metric_time__month"]),
    ("conversion, no grouping", ["--metrics", "visit_to_order"]),
    ("conversion by day and channel", ["--metrics", "visit_to_order", "--group-by", "metric_time,visit__channel"]),
    ("conversion by a joined dimension, filtered", ["--metrics", "visit_to_order", "--group-by", "customer__tier", "--where", "{{ Dimension('visit__channel') }} != 'email'"]),
    ("a Metric() filter on the primary entity", ["--metrics", "signups", "--group-by", "customer__region", "--where", "{{ Metric('revenue', group_by=['customer']) }} > 500"]),
    ("a Metric() filter on a foreign entity", ["--metrics", "revenue", "--group-by", "metric_time__month", "--where", "{{ Metric('customers_with_orders', group_by=['customer']) }} >= 1 and {{ Metric('revenue', group_by=['customer']) }} < 800"]),
    ("offset a week, by month", ["--metrics", "revenue_week_ago", "--group-by", "metric_time__month"]),
    ("offset a week, by week and tier", ["--metrics", "revenue_week_ago,revenue", "--group-by", "metric_time__week,customer__tier"]),
    ("offset a week, by month within bounds", ["--metrics", "revenue_week_ago", "--group-by", "metric_time__month", "--start-time", "2024-03-01", "--end-time", "2024-05-31"]),
    ("conversion with a constant property", ["--metrics", "same_channel_conversions", "--group-by", "metric_time__month"]),
    ("constant property, by channel", ["--metrics", "same_channel_conversions,visit_to_order", "--group-by", "visit__channel"]),
    ("offset within bounds", ["--metrics", "revenue_growth_mom", "--group-by", "metric_time__month", "--start-time", "2024-04-01", "--end-time", "2024-06-30"]),
]


def run(cmd, cwd, env=None):
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    return p, time.perf_counter() - t0


def normal(value):
    v = value.strip()
    if v == "":
        return ""
    try:
        f = float(v)
        return f"{f:.9g}"
    except ValueError:
        pass
    if v in ("True", "False"):
        return v.lower()
    if len(v) > 10 and v[4] == "-" and v[10] == "T":
        v = v[:10] + " " + v[11:]
    for zone in ("+00:00", "+00"):
        if v.endswith(zone):
            v = v[: -len(zone)]
    return v


def rows_of(text):
    reader = csv.reader(io.StringIO(text))
    header = next(reader, [])
    order = sorted(range(len(header)), key=lambda k: header[k])
    cols = [header[k] for k in order]
    rows = sorted(tuple(normal(r[k]) for k in order) for r in reader if r)
    return cols, rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pm", help="pm binary (default: build target/release/pm)")
    ap.add_argument("--only", help="run the queries whose name contains this")
    args = ap.parse_args()
    pm = str(Path(args.pm).resolve()) if args.pm else None
    if not pm:
        subprocess.run(["cargo", "build", "--release", "-q"], cwd=ROOT, check=True)
        pm = str(ROOT / "target/release/pm")
    mf = shutil.which("mf")
    if not mf:
        sys.exit("MetricFlow's mf is not installed: pip install dbt-metricflow")
    work = Path(tempfile.mkdtemp(prefix="pm-semantic-"))
    work.chmod(0o755)  # the embedded server runs as postgres when pm runs as root
    project = work / "metrics"
    shutil.copytree(ROOT / "tests/fixtures/metrics", project)
    try:
        p, secs = run([pm, "build", "-q"], project)
        if p.returncode != 0:
            sys.exit(f"pm build failed:\n{p.stdout}{p.stderr}")
        url = subprocess.run([pm, "db", "url"], cwd=project, capture_output=True, text=True).stdout.strip()
        socket = url.split("host=")[1].split("&")[0]
        profiles = work / "profiles"
        profiles.mkdir()
        (profiles / "profiles.yml").write_text(
            "metrics_shop:\n  target: dev\n  outputs:\n    dev:\n"
            f"      type: postgres\n      host: {socket}\n      port: 5432\n      user: postgres\n"
            "      password: ''\n      dbname: pm\n      schema: public\n      threads: 2\n"
        )
        env = dict(os.environ, DBT_PROFILES_DIR=str(profiles))
        p, _ = run(["dbt", "parse", "-q"], project, env)
        if p.returncode != 0:
            sys.exit(f"dbt parse failed:\n{p.stdout}{p.stderr}")
        matched = failed = 0
        pm_total = mf_total = 0.0
        print(f"{'query':<34} {'pm':>8} {'mf':>8}  rows  result")
        for name, q in QUERIES:
            if args.only and args.only not in name:
                continue
            ours, t_pm = run([pm, "query", "-q", *q, "--output", "csv"], project)
            out = work / "mf.csv"
            out.unlink(missing_ok=True)
            theirs, t_mf = run([mf, "query", *q, "--csv", str(out)], project, env)
            pm_total += t_pm
            mf_total += t_mf
            if ours.returncode != 0 or theirs.returncode != 0 or not out.exists():
                failed += 1
                why = (ours.stderr if ours.returncode != 0 else theirs.stdout)[-600:]
                print(f"{name:<34} {t_pm:7.3f}s {t_mf:7.3f}s     -  FAILED\n{why}")
                continue
            a, b = rows_of(ours.stdout), rows_of(out.read_text())
            if a == b:
                matched += 1
                print(f"{name:<34} {t_pm:7.3f}s {t_mf:7.3f}s {len(a[1]):5}  same rows")
            else:
                failed += 1
                print(f"{name:<34} {t_pm:7.3f}s {t_mf:7.3f}s {len(a[1]):5}  DIFFERENT (mf has {len(b[1])})")
                print(f"  pm columns {a[0]}\n  mf columns {b[0]}")
                for r in sorted(set(a[1]) ^ set(b[1]))[:6]:
                    print(f"  {'pm' if r in a[1] else 'mf'} only: {r}")
        print(f"{matched} of {matched + failed} queries gave the same rows; pm {pm_total:.2f} s in all, mf {mf_total:.2f} s")
        sys.exit(0 if failed == 0 else 1)
    finally:
        subprocess.run([pm, "db", "stop", "-q"], cwd=project, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
