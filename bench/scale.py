"""Scale benchmark: API latency on a database of 1,000,000 revisions vs. an empty one.

    python3 bench/scale.py                          # SQLite in a temp dir
    python3 bench/scale.py --pg postgresql://postgres@127.0.0.1:5432/postgres

For each of two databases, "empty" (one app) and "full" (10,000 apps, 50,000
envs, 1,000,000 revisions, bulk-inserted straight into the tables), it starts
a real `dmage serve`, then times pull, push, history and apps over HTTP with
one keep-alive client. The measured app is the same in both: 20 revisions in
one env, made through the API. Blobs in the bulk fill are random sealed data
of a realistic size. It prints a Markdown table; it asserts nothing. Needs the
dev dependencies (it borrows the test suite's server helpers).
"""

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from apiclient import create_account, create_env, push, seal_text  # noqa: E402
from conftest import (  # noqa: E402
    create_pg_database,
    drop_pg_database,
    free_port,
    start_server,
)

from dotmage import crypto  # noqa: E402

APP, ENV = "bench/target", "prod"
ENV_NAMES = ("dev", "staging", "prod", "test", "ci")
ENV_TEXT = "".join(f"SETTING_{i:02d}=value-{'x' * 24}-{i}\n" for i in range(16))


def main() -> None:
    options = _options()
    with tempfile.TemporaryDirectory(prefix="dmage-scale-") as work:
        # Both servers run at once and the samples alternate between them, so
        # whatever else the machine does slows both sides alike.
        empty = _prepare(Path(work) / "empty", options, fill=False)
        full = _prepare(Path(work) / "full", options, fill=True)
        try:
            results = _time_requests(empty, full, options.samples)
        finally:
            for target in (empty, full):
                target["server"].stop()
                if options.pg:
                    drop_pg_database(options.pg, target["url"])
    _print_table(options, results)


def _options():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", help="PostgreSQL admin URL (default: SQLite)")
    parser.add_argument("--apps", type=int, default=10_000)
    parser.add_argument("--envs-per-app", type=int, default=5)
    parser.add_argument("--revisions-per-env", type=int, default=20)
    parser.add_argument("--samples", type=int, default=200)
    return parser.parse_args()


def _prepare(work: Path, options, fill: bool) -> dict:
    """A running server on a database with the measured app (and the fill)."""
    work.mkdir()
    url = create_pg_database(options.pg) if options.pg else f"sqlite:///{work}/b.db"
    port = free_port()
    server = start_server(work, url, port=port)
    account = create_account(server.url)
    env_key = create_env(account, APP, ENV)
    api = account.api()
    for base in range(20):
        push(api, APP, ENV, base, seal_text(env_key, APP, ENV, ENV_TEXT))
    api.close()
    server.stop()

    if fill:
        started = time.perf_counter()
        _bulk_fill(url, options)
        spent = time.perf_counter() - started
        print(f"bulk fill: {_counts(url)} in {spent:.0f}s", file=sys.stderr)
    server = start_server(work, url, port=port)
    return {"url": url, "server": server, "api": account.api(), "env_key": env_key}


def _time_requests(empty: dict, full: dict, samples: int) -> dict:
    env_path = f"/apps/{APP}/-/envs/{ENV}"
    blob = seal_text(empty["env_key"], APP, ENV, ENV_TEXT)
    bases = {id(empty): 20, id(full): 20}

    def next_push(target):
        status, _ = push(target["api"], APP, ENV, bases[id(target)], blob)
        assert status == 201
        bases[id(target)] += 1

    def get(path):
        return lambda target: target["api"].call("GET", path)

    requests = {
        "pull": (get(env_path + "/revisions/latest"), samples),
        "push": (next_push, samples),
        "history": (get(env_path + "/revisions?limit=100"), samples),
        "history, page 2": (
            get(env_path + "/revisions?limit=100&before=100"),
            samples,
        ),
        "apps": (get("/apps"), max(10, samples // 10)),
    }
    for target in (empty, full):
        get("/apps")(target)  # warm the connection and the page cache
        get(env_path + "/revisions/latest")(target)
    return {
        name: _timed_pair(request, (empty, full), count)
        for name, (request, count) in requests.items()
    }


def _timed_pair(request, targets, samples: int) -> list[tuple[float, float]]:
    """(median, p95) in milliseconds for each target, sampled alternately."""
    times = [[] for _ in targets]
    for _ in range(samples):
        for spent, target in zip(times, targets, strict=True):
            started = time.perf_counter()
            request(target)
            spent.append((time.perf_counter() - started) * 1000)
    return [_summary(spent) for spent in times]


def _summary(spent: list[float]) -> tuple[float, float]:
    spent = sorted(spent)
    return statistics.median(spent), spent[int(len(spent) * 0.95) - 1]


# -- the bulk fill -------------------------------------------------------------


def _bulk_fill(url: str, options) -> None:
    pool = [_random_blob() for _ in range(256)]
    stamp = int(time.time())
    apps = [
        (10_000 + i, f"team{i % 100:02d}/app{i:05d}", stamp, stamp)
        for i in range(options.apps)
    ]
    envs = [
        (
            100_000 + i * options.envs_per_app + j,
            10_000 + i,
            ENV_NAMES[j % len(ENV_NAMES)] + ("" if j < len(ENV_NAMES) else str(j)),
            random.choice(pool),
            options.revisions_per_env,
            stamp,
            stamp,
        )
        for i in range(options.apps)
        for j in range(options.envs_per_app)
    ]

    def revisions():
        for env in envs:
            for number in range(1, options.revisions_per_env + 1):
                yield (env[0], number, random.choice(pool), "push", "bench", stamp)

    if url.startswith("sqlite"):
        _fill_sqlite(url.removeprefix("sqlite:///"), apps, envs, revisions())
    else:
        _fill_postgres(url, apps, envs, revisions())


def _counts(url: str) -> str:
    """What the database really holds after the fill, as a check on it."""
    count = "SELECT (SELECT count(*) FROM app), (SELECT count(*) FROM env), "
    count += "(SELECT count(*) FROM revision)"
    if url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
            apps, envs, revisions = connection.execute(count).fetchone()
    else:
        import psycopg

        with psycopg.connect(url) as connection:
            apps, envs, revisions = connection.execute(count).fetchone()
    return f"{apps:,} apps, {envs:,} envs, {revisions:,} revisions"


def _random_blob() -> str:
    # A sealed value the size of a 16-key .env, under a key nobody keeps.
    return crypto.seal(crypto.new_key(), crypto.random_bytes(650), b"bench")


APP_COLUMNS = "(id, name, created_at, updated_at)"
ENV_COLUMNS = "(id, app_id, name, sealed_key, latest_revision, created_at, updated_at)"
REVISION_COLUMNS = "(env_id, number, blob, kind, device_name, created_at)"


def _fill_sqlite(path: str, apps, envs, revisions) -> None:
    import sqlite3

    connection = sqlite3.connect(path)
    connection.execute("PRAGMA synchronous = OFF")  # a fixture, not real data
    with connection:
        connection.executemany(f"INSERT INTO app {APP_COLUMNS} VALUES (?,?,?,?)", apps)
        connection.executemany(
            f"INSERT INTO env {ENV_COLUMNS} VALUES (?,?,?,?,?,?,?)", envs
        )
        connection.executemany(
            f"INSERT INTO revision {REVISION_COLUMNS} VALUES (?,?,?,?,?,?)", revisions
        )
    connection.execute("ANALYZE")
    connection.close()


def _fill_postgres(url: str, apps, envs, revisions) -> None:
    import psycopg

    with psycopg.connect(url) as connection:
        for table, columns, rows in (
            ("app", APP_COLUMNS, apps),
            ("env", ENV_COLUMNS, envs),
            ("revision", REVISION_COLUMNS, revisions),
        ):
            with connection.cursor().copy(f"COPY {table} {columns} FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        for table in ("app", "env", "revision"):
            connection.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")


def _print_table(options, results) -> None:
    size = (
        f"{options.apps:,} apps, {options.apps * options.envs_per_app:,} envs, "
        f"{options.apps * options.envs_per_app * options.revisions_per_env:,} "
        "revisions"
    )
    print(f"\n{'PostgreSQL' if options.pg else 'SQLite'}; full = {size}\n")
    print("| request | empty: median / p95 ms | full: median / p95 ms | ratio |")
    print("| --- | --- | --- | --- |")
    for name, ((e_med, e_p95), (f_med, f_p95)) in results.items():
        print(
            f"| {name} | {e_med:.1f} / {e_p95:.1f} | {f_med:.1f} / {f_p95:.1f} "
            f"| {f_med / e_med:.2f}x |"
        )


if __name__ == "__main__":
    main()
