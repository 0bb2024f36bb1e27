"""Measure what dmage.pyz adds to a bare interpreter start; prints, asserts nothing.

    python3 bench/exec_speed.py dist/dmage.pyz --runs 30

It starts its own `dmage serve` from the .pyz on a free loopback port with a
throwaway SQLite database and device in a temporary folder, creates an app
with twelve keys, and times, each over N runs after one untimed warm-up:
`python -c pass`, a bare interpreter making one HTTP request to the server,
`dmage --version`, and `dmage exec APP -- true` with the key cached.
The goal: exec costs little more than the bare interpreter plus one request.
"""

import argparse
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

SAMPLE = "".join(f"KEY_{n}=value-{n}\n" for n in range(12))


def main(argv=None):
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dmage-bench-") as folder:
        folder = Path(folder)
        env = bench_environment(folder, args)
        server = start_server(args, env, folder)
        try:
            report(args, env, server_url(env), folder)
        finally:
            server.terminate()
            server.wait()
    return 0


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pyz", nargs="?", default=os.path.join("dist", "dmage.pyz"))
    parser.add_argument("--runs", type=int, default=20, help="timed runs per command")
    parser.add_argument(
        "--python",
        default=os.path.realpath(sys.executable),
        help="interpreter to run (default: this one; a pyenv shim adds its own cost)",
    )
    return parser.parse_args(argv)


def bench_environment(folder: Path, args) -> dict:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return dict(
        os.environ,
        DOTMAGE_HOME=str(folder / "device"),
        DOTMAGE_CACHE_DIR=str(folder / "cache"),
        DOTMAGE_DB_URL=f"sqlite:///{folder / 'server.db'}",
        DOTMAGE_BOOTSTRAP_SECRET="bench-bootstrap-secret",
        DOTMAGE_MASTER_PASSWORD="bench master password",
        DOTMAGE_KEYRING="file",
        DOTMAGE_BENCH_PORT=str(port),
    )


def server_url(env: dict) -> str:
    return f"http://127.0.0.1:{env['DOTMAGE_BENCH_PORT']}"


def start_server(args, env, folder: Path) -> subprocess.Popen:
    command = [args.python, args.pyz, "serve", "--port", env["DOTMAGE_BENCH_PORT"]]
    log = open(folder / "server.log", "wb")  # noqa: SIM115 - lives with the server
    server = subprocess.Popen(command, env=env, stdout=log, stderr=log)
    for _ in range(200):
        try:
            urllib.request.urlopen(server_url(env) + "/api/v1/health", timeout=1)
            break
        except OSError:
            time.sleep(0.05)

    (folder / ".env").write_text(SAMPLE)
    for step in (["auth", "--server", server_url(env)], ["init", "bench"]):
        subprocess.run(
            [args.python, args.pyz, *step],
            env=env,
            cwd=folder,
            check=True,
            stdin=subprocess.DEVNULL,
            capture_output=True,
        )
    return server


def report(args, env, url, folder) -> None:
    request = f"import urllib.request; urllib.request.urlopen('{url}/api/v1/health')"
    cases = [
        ("python -c pass", [args.python, "-c", "pass"]),
        ("python + one HTTP request", [args.python, "-c", request]),
        ("dmage --version", [args.python, args.pyz, "--version"]),
        (
            "dmage exec bench -- true",
            [args.python, args.pyz, "exec", "bench", "--", "true"],
        ),
    ]
    print(f"{args.python}, {args.runs} runs each, after one untimed warm-up run")
    print(f"{'command':28} {'median ms':>10} {'p90 ms':>10} {'x bare':>8}")
    medians = {}
    for label, command in cases:
        timings = time_runs(command, env, folder, args.runs)
        medians[label] = statistics.median(timings)
        ratio = medians[label] / medians["python -c pass"]
        print(
            f"{label:28} {medians[label] * 1e3:10.1f} "
            f"{percentile(timings, 90) * 1e3:10.1f} {ratio:8.2f}"
        )
    floor = medians["python + one HTTP request"]
    print(
        f"exec against python + one request: "
        f"{medians['dmage exec bench -- true'] / floor:.2f}x"
    )


def time_runs(command, env, folder, runs):
    """Wall-clock seconds per run; the warm-up run must succeed."""
    subprocess.run(command, env=env, cwd=folder, check=True, capture_output=True)
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, env=env, cwd=folder, stdout=subprocess.DEVNULL)
        timings.append(time.perf_counter() - started)
    return timings


def percentile(values, percent):
    ordered = sorted(values)
    return ordered[max(0, math.ceil(len(ordered) * percent / 100) - 1)]


if __name__ == "__main__":
    sys.exit(main())
