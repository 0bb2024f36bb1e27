"""The database URL, start-up failures, and several servers on one database."""

import os
import subprocess
import sys
import threading
import urllib.parse
import uuid

import pytest
from apiclient import Api, create_account
from conftest import (
    BOOTSTRAP,
    PG_VARIABLE,
    base_environment,
    create_pg_database,
    drop_pg_database,
    free_port,
    start_server,
)

from dotmage import crypto

BLOCK_PSYCOPG = """
import sys

class NoPsycopg:
    # As if psycopg were not installed: every import of it fails.
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("psycopg", "psycopg2"):
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)

sys.meta_path.insert(0, NoPsycopg())
from dotmage.cli.main import main
sys.exit(main())
"""


def _serve_fails(db_url: str, code: str | None = None) -> subprocess.CompletedProcess:
    """Run `dmage serve` that must stop at start; returns the finished process."""
    environment = base_environment(DOTMAGE_DB_URL=db_url)
    environment.pop("DOTMAGE_INSECURE_FAST_KDF")  # its warning is a line too
    start = [sys.executable, "-c", code] if code else [sys.executable, "-m", "dotmage"]
    finished = subprocess.run(
        [*start, "serve", "--port", str(free_port())],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 1, finished
    assert finished.stdout == ""
    assert len(finished.stderr.strip().splitlines()) == 1, finished.stderr
    assert "Traceback" not in finished.stderr
    assert "DOTMAGE_DB_URL" in finished.stderr
    return finished


def _pg_admin() -> str:
    admin = os.environ.get(PG_VARIABLE)
    if not admin:
        pytest.skip(f"PostgreSQL tests need {PG_VARIABLE} (see README)")
    return admin


# -- the URL and start-up failures ---------------------------------------------


def test_sqlite_runs_in_wal_with_full_sync_and_a_busy_timeout(tmp_path):
    from dotmage.server.db import open_database

    db = open_database(f"sqlite:///{tmp_path / 'pragmas.db'}")
    db.connect()
    pragma = db.execute_sql
    assert pragma("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert pragma("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert pragma("PRAGMA busy_timeout").fetchone()[0] == 10000
    db.close()


@pytest.mark.parametrize(
    "url", ["sqlite://relative.db", "sqlite:///:memory:", "sqlite://", "mysql://x/y"]
)
def test_urls_that_would_lose_data_are_refused_in_one_line(url):
    finished = _serve_fails(url)
    assert "sqlite:////absolute/path.db" in finished.stderr or (
        "in-memory" in finished.stderr
    )


def test_without_psycopg_the_server_says_so_in_one_line():
    url = "postgresql://dotmage:Hunter2Secret@127.0.0.1:5432/dotmage"
    finished = _serve_fails(url, code=BLOCK_PSYCOPG)
    assert "needs the psycopg driver" in finished.stderr
    assert "dotmage[postgres]" in finished.stderr
    assert "Hunter2Secret" not in finished.stderr


def test_an_unreachable_postgres_is_one_line_without_the_password():
    password = "Sup3r@Secret/#?"
    quoted = urllib.parse.quote(password, safe="")
    url = f"postgresql://dotmage:{quoted}@127.0.0.1:{free_port()}/dotmage"
    finished = _serve_fails(url)
    assert "cannot open postgresql://127.0.0.1:" in finished.stderr
    assert "Sup3r" not in finished.stderr and quoted not in finished.stderr


def test_a_missing_postgres_database_is_one_line_without_the_password():
    admin = _pg_admin()
    parts = urllib.parse.urlsplit(admin)
    url = parts._replace(
        netloc=f"postgres:NotShown42@{parts.hostname}:{parts.port or 5432}",
        path=f"/dotmage_missing_{uuid.uuid4().hex[:8]}",
    ).geturl()
    finished = _serve_fails(url)
    assert "does not exist" in finished.stderr
    assert "NotShown42" not in finished.stderr


def test_postgres_user_and_password_may_hold_any_character(tmp_path):
    # The test server trusts loopback, so the table owner proves the user
    # name arrived intact, and the parsed parameters prove the password did.
    import psycopg
    from psycopg import sql

    from dotmage.server.db import open_database

    admin = _pg_admin()
    role, password = "dm user@x:1/é", "p@ss:w/rd%#?&= é'\"\\"
    database = f"dotmage_role_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(password)
            )
        )
        connection.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(database), sql.Identifier(role)
            )
        )
    parts = urllib.parse.urlsplit(admin)
    netloc = "{}:{}@{}:{}".format(
        urllib.parse.quote(role, safe=""),
        urllib.parse.quote(password, safe=""),
        parts.hostname,
        parts.port or 5432,
    )
    url = parts._replace(netloc=netloc, path=f"/{database}").geturl()
    try:
        db = open_database(url)
        assert db.connect_params["user"] == role
        assert db.connect_params["password"] == password
        server = start_server(tmp_path, url)
        try:
            create_account(server.url)
            assert password not in server.log() and netloc not in server.log()
        finally:
            server.stop()
        with psycopg.connect(admin.rsplit("/", 1)[0] + "/" + database) as check:
            owner = check.execute(
                "SELECT tableowner FROM pg_tables WHERE tablename = 'revision'"
            ).fetchone()
        assert owner == (role,)
    finally:
        drop_pg_database(admin, admin.rsplit("/", 1)[0] + "/" + database)
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_a_dropped_postgres_connection_is_reopened(tmp_path):
    import psycopg

    admin = _pg_admin()
    url = create_pg_database(admin)
    server = start_server(tmp_path, url)
    try:
        account = create_account(server.url)
        _in_parallel(16, lambda: account.api().call("GET", "/apps"))
        with psycopg.connect(admin, autocommit=True) as connection:
            killed = connection.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (url.rsplit("/", 1)[1],),
            ).fetchone()[0]
        assert killed >= 1

        statuses = _in_parallel(32, lambda: account.api().call("GET", "/apps")[0])
        assert statuses == [200] * 32
        assert "reconnecting" in server.log()
    finally:
        server.stop()
        drop_pg_database(admin, url)


def _in_parallel(count: int, work) -> list:
    results = [None] * count

    def run(i):
        results[i] = work()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


# -- several servers on one database -----------------------------------------


def test_two_servers_share_device_tokens_and_one_time_tokens(tmp_path, db_url):
    first, second = start_server(tmp_path, db_url), start_server(tmp_path, db_url)
    try:
        account = create_account(first.url)
        assert account.api(second.url).call("GET", "/apps")[0] == 200

        # An enrollment token made through one server is redeemed once,
        # whichever server sees it.
        token_id, proof, seal_key = _enrollment_token(account, first.url)
        redeem = {"token_id": token_id, "proof": crypto.b64encode(proof)}
        status, issued = Api(second.url).call("POST", "/auth/enroll", redeem)
        assert status == 201, issued
        opened = crypto.unseal(
            seal_key, issued["sealed_account_key"], crypto.aad_enroll(token_id)
        )
        assert opened == account.account_key
        assert Api(first.url).call("POST", "/auth/enroll", redeem)[0] == 401

        # A refresh token rotated on one server is spent on the other too:
        # once the pair it bought was used, presenting it again is theft.
        old = {"refresh_token": account.refresh_token}
        status, rotated = Api(second.url).call("POST", "/auth/refresh", old)
        assert status == 200
        assert Api(first.url, rotated["access_token"]).call("GET", "/apps")[0] == 200
        newer = {"refresh_token": rotated["refresh_token"]}
        status, latest = Api(first.url).call("POST", "/auth/refresh", newer)
        assert status == 200
        assert Api(first.url).call("POST", "/auth/refresh", old)[0] == 401
        revoked = Api(second.url, latest["access_token"]).call("GET", "/apps")
        assert revoked[0] == 401
    finally:
        first.stop()
        second.stop()


def _enrollment_token(account, url) -> tuple[str, bytes, bytes]:
    token_id, secret = uuid.uuid4().hex[:16], crypto.random_bytes(32)
    seal_key, proof = crypto.enrollment_keys(secret)
    status, reply = account.api(url).call(
        "POST",
        "/tokens",
        {
            "kind": "enroll",
            "id": token_id,
            "secret_hash": crypto.sha256_hex(proof),
            "ttl": 600,
            "sealed_account_key": crypto.seal(
                seal_key, account.account_key, crypto.aad_enroll(token_id)
            ),
        },
    )
    assert status == 201, reply
    return token_id, proof, seal_key


def test_failed_attempts_count_across_servers(tmp_path, db_url):
    limit = {"DOTMAGE_RATE_LIMIT": "3/min"}
    first = start_server(tmp_path, db_url, **limit)
    second = start_server(tmp_path, db_url, **limit)
    try:
        create_account(first.url)
        wrong = {"bootstrap_secret": "not-the-secret"}
        for url in (first.url, second.url, first.url):
            assert Api(url).call("POST", "/auth/prelogin", wrong)[0] == 401
        right = {"bootstrap_secret": BOOTSTRAP}
        status, reply = Api(second.url).call("POST", "/auth/prelogin", right)
        assert status == 429, reply
    finally:
        first.stop()
        second.stop()
