#!/usr/bin/env python3
"""`pm serve` under load on loopback, against PulseMetrics on the embedded
PostgreSQL, with a bounded load generator (bench/serve_load.rs: a request
count and a time limit, each client one keep-alive connection).

    python3 bench/serve.py [--scale 1] [--pm PATH] [--requests 100000]

One run (a copy of project/ under bench/out/serve):
  1. `pm generate --build` at --scale (a year of data to yesterday), then
     ANALYZE (what autovacuum does within a minute of a build);
  2. cached answers: 50 clients send --requests GETs of a saved query as
     finance (the first reads the warehouse, the rest are cache hits),
     while the server's resident memory is sampled every 0.2 s;
  3. uncached answers: the server again with `cache_entries: 0`; each of
     PulseMetrics' five saved queries in turn, as finance, from 4 clients
     (the pool's size: latency without queueing) and from 50 (Little's law:
     the time in the queue for 4 connections).
"""
import argparse
import datetime
import json
import os
import shutil
import subprocess
import threading
import time

from common import HERE, ROOT, local_server, pm_binary, sh

SECRET = "bench-secret-0123456789abcdef0123456789abcdef"
SERVE_YML = """serve:
  roles: [reader, analyst, finance]
  issuer: pulsemetrics
  audience: pm-serve
  pool_size: 4
  cache_entries: {cache}
"""


def saved_queries(yesterday):
    """Seed 004's calls of PulseMetrics' saved queries: (label, path, role)."""
    month = (yesterday - datetime.timedelta(days=29)).isoformat()
    day = yesterday.isoformat()
    year = (yesterday - datetime.timedelta(days=364)).isoformat()
    base = "/api/v1/saved-queries/"
    return [
        ("overview, a day", f"{base}overview?date={day}", "finance"),
        ("payments_by_country, 30 days", f"{base}payments_by_country?start_date={month}&end_date={day}", "finance"),
        ("payments_by_country, one country", f"{base}payments_by_country?start_date={month}&end_date={day}&country=US", "finance"),
        ("payments_by_country, a year", f"{base}payments_by_country", "finance"),
        ("engagement, 30 days", f"{base}engagement?start_date={month}&end_date={day}", "analyst"),
        ("revenue_by_month, a year", f"{base}revenue_by_month?start_date={year}", "finance"),
        ("cohort_retention, all", f"{base}cohort_retention", "analyst"),
    ]


def loadgen():
    subprocess.run(["cargo", "build", "--release", "--quiet", "--example", "serve_load"], cwd=ROOT, check=True)
    return os.path.join(ROOT, "target", "release", "examples", "serve_load")


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Server:
    def __init__(self, pm, proj, cache):
        with open(os.path.join(proj, "serve.yml"), "w") as f:
            f.write(SERVE_YML.format(cache=cache))
        env = dict(os.environ, PM_JWT_SECRET=SECRET)
        self.p = subprocess.Popen([pm, "serve", "--port", "0"], cwd=proj, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.p.stdout.readline()
        self.address = line.split("http://", 1)[1].split(" ", 1)[0]
        # The access log goes on: drain it so the pipe never fills.
        self.lines = 0
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for _ in self.p.stdout:
            self.lines += 1

    def stop(self):
        self.p.terminate()
        return self.p.wait(timeout=30)


def run_load(gen, address, token, clients, requests, seconds, paths):
    cmd = [gen, "--address", address, "--token", token, "--clients", str(clients),
           "--requests", str(requests), "--seconds", str(seconds)]
    for p in paths:
        cmd += ["--path", p]
    return json.loads(sh(cmd).stdout)


def show(label, r):
    print(f"  {label}: {r['requests']:,} requests in {r['seconds']:.2f} s = {r['per_second']:,.0f}/s, "
          f"p50 {r['p50_ms']:.2f} ms, p90 {r['p90_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, max {r['max_ms']:.1f} ms, "
          f"statuses {r['statuses']}, errors {r['errors']}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", default="1")
    ap.add_argument("--pm")
    ap.add_argument("--requests", type=int, default=100_000)
    args = ap.parse_args()
    pm = pm_binary(args.pm)
    gen = loadgen()
    proj = os.path.join(HERE, "out", "serve")
    if os.path.exists(proj):
        subprocess.run([pm, "db", "stop", "-q"], cwd=proj)
        shutil.rmtree(proj)
    shutil.copytree(os.path.join(ROOT, "project"), proj, ignore=shutil.ignore_patterns(".pm", "target", "logs"))
    os.chmod(proj, 0o755)
    start = (datetime.date.today() - datetime.timedelta(days=365)).isoformat()
    t0 = time.perf_counter()
    sh([pm, "generate", "--build", "-q", "--scale", args.scale, "--start", start, "--days", "365"], cwd=proj)
    print(f"PulseMetrics at scale {args.scale}, a year to yesterday, built in {time.perf_counter() - t0:.1f} s")
    # Statistics, as autovacuum gathers them within a minute of a build:
    # without them the planner guesses a few rows per table and may join
    # by nested loop (4 s instead of 20 ms for a one-country filter).
    url, psql = local_server(pm, proj)
    sh([psql, url, "-XAtqc", "analyze"])
    env = dict(os.environ, PM_JWT_SECRET=SECRET)
    tokens = {role: subprocess.run([pm, "serve", "--mint-token", role, "--expires-in", "7200"], cwd=proj, env=env,
                                   check=True, capture_output=True, text=True).stdout.strip()
              for role in ["finance", "analyst"]}
    token = tokens["finance"]
    try:
        s = Server(pm, proj, cache=1000)
        path = "/api/v1/saved-queries/revenue_by_month"
        samples = []
        done = threading.Event()

        def sample():
            while not done.is_set():
                samples.append(rss_mb(s.p.pid))
                time.sleep(0.2)

        before = rss_mb(s.p.pid)
        threading.Thread(target=sample, daemon=True).start()
        cached = run_load(gen, s.address, token, 50, args.requests, 300, [path])
        done.set()
        after = rss_mb(s.p.pid)
        print(f"cached (GET {path}, 50 clients, at most {args.requests:,} requests or 300 s):")
        show("answers", cached)
        tail = samples[len(samples) // 4:] or [after]
        print(f"  server memory (RSS): {before:.1f} MB before, {min(tail):.1f}-{max(tail):.1f} MB over the last "
              f"three quarters of the run, {after:.1f} MB after")
        print(f"  stop on SIGTERM: exit {s.stop()} ({s.lines:,} access-log lines)")

        s = Server(pm, proj, cache=0)
        calls = saved_queries(datetime.date.today() - datetime.timedelta(days=1))
        print("uncached (cache_entries: 0), seed 004's calls, 4 clients (the pool's size), 400 requests each:")
        for label, p, role in calls:
            show(f"{label:<34} as {role:<7}", run_load(gen, s.address, tokens[role], 4, 400, 60, [p]))
        month = [p for label, p, role in calls if role == "finance" and "a year" not in label]
        show("finance's month calls in turn, 50 clients", run_load(gen, s.address, token, 50, 2000, 120, month))
        print(f"  stop on SIGTERM: exit {s.stop()}")
    finally:
        subprocess.run([pm, "db", "stop", "-q"], cwd=proj)


if __name__ == "__main__":
    main()
