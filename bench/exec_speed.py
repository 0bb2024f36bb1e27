"""Measure how much dmage.pyz adds to a bare interpreter start; prints, asserts nothing.

    python3 bench/exec_speed.py dist/dmage.pyz --runs 30
    python3 bench/exec_speed.py dist/dmage.pyz --home ~/.dotmage-bench --app web

The second form also times `dmage exec APP -- true`, which needs a running
server and a DOTMAGE_HOME whose device is already enrolled for that app.
"""

import argparse
import math
import os
import statistics
import subprocess
import sys
import time


def main(argv=None):
    args = parse_args(argv)
    python = args.python
    base_env = dict(os.environ)
    if args.cache_dir:
        base_env["DOTMAGE_CACHE_DIR"] = args.cache_dir
    cases = [
        ("python -c pass", [python, "-c", "pass"], base_env),
        ("dmage --version (warm)", [python, args.pyz, "--version"], base_env),
    ]
    if args.home and args.app:
        exec_env = dict(base_env, DOTMAGE_HOME=args.home)
        command = [python, args.pyz, "exec", args.app, "--", "true"]
        cases.append((f"dmage exec {args.app} -- true", command, exec_env))
    else:
        print(
            "skipping `dmage exec`: pass --home and --app to time it", file=sys.stderr
        )

    print(f"{python}, {args.runs} runs each, after one untimed warm-up run")
    print(f"{'command':32} {'median ms':>10} {'p90 ms':>10} {'x bare':>8}")
    baseline = None
    for label, command, env in cases:
        timings = time_runs(command, env, args.runs)
        if timings is None:
            continue
        median = statistics.median(timings)
        baseline = baseline or median
        p90 = percentile(timings, 90)
        ratio = median / baseline
        print(f"{label:32} {median * 1e3:10.1f} {p90 * 1e3:10.1f} {ratio:8.2f}")
    return 0


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pyz", nargs="?", default=os.path.join("dist", "dmage.pyz"))
    parser.add_argument("--runs", type=int, default=20, help="timed runs per command")
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="interpreter to run (default: this one; a pyenv shim adds its own cost)",
    )
    parser.add_argument("--cache-dir", help="DOTMAGE_CACHE_DIR for the runs")
    parser.add_argument("--home", help="DOTMAGE_HOME of an enrolled device")
    parser.add_argument("--app", help="app to run `dmage exec` against")
    return parser.parse_args(argv)


def time_runs(command, env, runs):
    """Wall-clock seconds per run, or None if the warm-up run fails."""
    warm_up = subprocess.run(command, env=env, capture_output=True, text=True)
    if warm_up.returncode != 0:
        print(
            f"skipping {' '.join(command)}: exit {warm_up.returncode}", file=sys.stderr
        )
        print(warm_up.stderr.strip(), file=sys.stderr)
        return None
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, env=env, stdout=subprocess.DEVNULL)
        timings.append(time.perf_counter() - started)
    return timings


def percentile(values, percent):
    ordered = sorted(values)
    return ordered[max(0, math.ceil(len(ordered) * percent / 100) - 1)]


if __name__ == "__main__":
    sys.exit(main())
