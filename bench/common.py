"""What the benchmark scripts share: the pm binary, running commands, and the
project's embedded PostgreSQL (its URL and psql)."""
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHARED_BENCH = os.path.join(ROOT, "..", "shared", "bench")


def sh(cmd, **kw):
    """Runs a command, failing loudly; returns the completed process."""
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def pm_binary(given=None):
    """`given`, or pm built in release mode from this checkout."""
    if not given:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
        given = os.path.join(ROOT, "target", "release", "pm")
    return os.path.abspath(given)


def local_server(pm, proj):
    """Starts the project's embedded PostgreSQL; returns (url, psql path)."""
    sh([pm, "db", "start", "-q"], cwd=proj)
    url = sh([pm, "db", "url"], cwd=proj).stdout.strip()
    status = sh([pm, "db", "status"], cwd=proj).stdout
    bindir = [l.split(":", 1)[1].strip() for l in status.splitlines() if l.startswith("binaries:")][0]
    return url, os.path.join(bindir, "psql")


def timed(cmd, cwd):
    """Runs a command, failing loudly; returns (wall seconds, its output)."""
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout[-4000:]}\n{p.stderr[-4000:]}")
    return elapsed, p.stdout + p.stderr


def dbt_profiles(url, profile, out_dir, threads=4):
    """A profiles.yml in `out_dir` whose `profile` points dbt at the embedded
    server of `url`; returns dbt's flags for it."""
    socket_dir = url.split("host=", 1)[1].split("&", 1)[0]
    user = url.split("://", 1)[1].split("@", 1)[0]
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "profiles.yml"), "w") as f:
        f.write(f"{profile}:\n  target: dev\n  outputs:\n    dev:\n      type: postgres\n"
                f"      host: {socket_dir}\n      port: 5432\n      user: {user}\n      password: ''\n"
                f"      dbname: pm\n      schema: public\n      threads: {threads}\n")
    return ["--profiles-dir", out_dir]
