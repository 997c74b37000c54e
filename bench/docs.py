#!/usr/bin/env python3
"""pm docs on a generated project: the time to write the site, and the time
headless Chromium takes to open it (data parsed, graph drawn, first paint).

Usage: python3 bench/docs.py [--models N] [--runs R] [--pm PATH]
Needs chromium and chromium-driver (Debian packages).
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import HERE, SHARED_BENCH, pm_binary, sh  # noqa: E402


def webdriver(base, method, path, body=None):
    req = urllib.request.Request(base + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.load(r)["value"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--pm")
    a = ap.parse_args()
    pm = pm_binary(a.pm)
    proj = os.path.join(HERE, "out", f"synth_{a.models}")
    if not os.path.exists(os.path.join(proj, "dbt_project.yml")):
        sh([sys.executable, os.path.join(SHARED_BENCH, "gen_project.py"), "--models", str(a.models), "--out", proj])
    write = []
    for _ in range(a.runs):
        t0 = time.perf_counter()
        sh([pm, "docs", "--no-catalog", "-q"], cwd=proj)
        write.append(time.perf_counter() - t0)
    size = os.path.getsize(os.path.join(proj, "target", "docs", "pm-docs-data.js"))
    nodes = json.loads(open(os.path.join(proj, "target", "docs", "pm-docs-data.js")).read()
                       .strip()[len("window.PM_DATA = "):-1])["nodes"]

    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    driver = subprocess.Popen(["chromedriver", f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    opened, painted, drawn = [], [], None
    try:
        for _ in range(50):
            try:
                webdriver(base, "GET", "/status"); break
            except OSError:
                time.sleep(0.1)
        for _ in range(a.runs):
            profile = tempfile.mkdtemp()
            sid = webdriver(base, "POST", "/session", {"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                         "--disable-background-networking", "--disable-component-update", "--disable-sync",
                         "--window-size=1400,900", f"--user-data-dir={profile}"]}}}})["sessionId"]
            url = "file://" + os.path.join(proj, "target", "docs", "index.html")
            webdriver(base, "POST", f"/session/{sid}/url", {"url": url})
            for _ in range(600):
                v = webdriver(base, "POST", f"/session/{sid}/execute/sync",
                              {"script": "return [document.body.dataset.readyMs, document.body.dataset.paintedMs, document.querySelectorAll('g.node').length]", "args": []})
                if v[1]:
                    break
                time.sleep(0.05)
            opened.append(int(v[0]) / 1000)
            painted.append(int(v[1]) / 1000)
            drawn = v[2]
            # Still responsive: a hover highlight over the whole graph.
            t0 = time.perf_counter()
            webdriver(base, "POST", f"/session/{sid}/execute/sync",
                      {"script": "highlight(Math.floor(N.length / 2)); return 1", "args": []})
            hover = time.perf_counter() - t0
            webdriver(base, "DELETE", f"/session/{sid}")
    finally:
        driver.kill()
    print(f"{a.models} models ({len(nodes)} nodes drawn: {drawn}), data {size / 1e6:.1f} MB; median of {a.runs} runs [min/max]")
    for label, t in [("pm docs (write the site)      ", write),
                     ("page ready in Chromium         ", opened),
                     ("first paint in Chromium        ", painted)]:
        print(f"  {label}: {statistics.median(t):.2f} s  [{min(t):.2f}/{max(t):.2f}]")
    print(f"  hover highlight (last run)      : {hover:.2f} s")


if __name__ == "__main__":
    main()
