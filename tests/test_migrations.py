"""Numbered schema migrations: in order, once, recorded, and never twice at once."""

import os
import subprocess
import sys
import threading

import pytest
from conftest import (
    PG_VARIABLE,
    base_environment,
    create_pg_database,
    drop_pg_database,
    free_port,
    start_server,
)

from dotmage.server import db as schema


@pytest.fixture
def database(db_url):
    """The models bound to a fresh database, in this process."""
    bound = schema.open_database(db_url)
    bound.connect()
    yield bound
    bound.close()


def _versions(bound) -> list[int]:
    rows = bound.execute_sql("SELECT version FROM schemaversion ORDER BY version")
    return [version for (version,) in rows.fetchall()]


def _add_note_column(bound):
    bound.execute_sql("ALTER TABLE app ADD COLUMN note TEXT")


def test_a_fresh_database_gets_every_migration_once(database):
    assert schema.migrate(database) == 0
    assert _versions(database) == [v for v, _ in schema.MIGRATIONS]
    assert schema.migrate(database) == schema.SCHEMA_VERSION
    assert _versions(database) == [v for v, _ in schema.MIGRATIONS]


def test_migration_2_drops_the_foreign_key_indexes_a_version_1_schema_had(database):
    # A database made by the first release: version 1, with the two indexes.
    schema.migrate(database, schema.MIGRATIONS[:1])
    database.execute_sql('CREATE INDEX "env_app_id" ON "env" ("app_id")')
    database.execute_sql('CREATE INDEX "revision_env_id" ON "revision" ("env_id")')

    assert schema.migrate(database) == 1
    names = {index.name for table in ("env", "revision") for index in _indexes(table)}
    assert "env_app_id" not in names and "revision_env_id" not in names
    assert {"env_app_id_name", "revision_env_id_number"} <= names


def _indexes(table: str):
    return schema.database.get_indexes(table)


def test_a_new_migration_runs_once_after_the_ones_before(database):
    schema.migrate(database)
    newer = [*schema.MIGRATIONS, (schema.SCHEMA_VERSION + 1, _add_note_column)]

    assert schema.migrate(database, newer) == schema.SCHEMA_VERSION
    assert schema.migrate(database, newer) == schema.SCHEMA_VERSION + 1
    assert "note" in [column.name for column in database.get_columns("app")]
    assert _versions(database)[-1] == schema.SCHEMA_VERSION + 1


def test_a_failing_migration_changes_nothing(database):
    schema.migrate(database)

    def half_done(bound):
        _add_note_column(bound)
        raise RuntimeError("step two failed")

    broken = [*schema.MIGRATIONS, (schema.SCHEMA_VERSION + 1, half_done)]
    with pytest.raises(RuntimeError):
        schema.migrate(database, broken)
    assert "note" not in [column.name for column in database.get_columns("app")]
    assert _versions(database)[-1] == schema.SCHEMA_VERSION


def test_a_server_refuses_a_schema_newer_than_itself(database, db_url):
    schema.migrate(database)
    schema.SchemaVersion.create(version=schema.SCHEMA_VERSION + 5)
    database.close()

    environment = base_environment(DOTMAGE_DB_URL=db_url)
    environment.pop("DOTMAGE_INSECURE_FAST_KDF")
    finished = subprocess.run(
        [sys.executable, "-m", "dotmage", "serve", "--port", str(free_port())],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 1
    assert finished.stderr.count("\n") == 1
    assert f"schema is version {schema.SCHEMA_VERSION + 5}, newer" in finished.stderr


def test_two_servers_starting_at_once_migrate_once(tmp_path, db_url):
    # No DOTMAGE_BOOTSTRAP_SECRET: both race to make one, and one must win.
    servers = [None, None]

    def start(i):
        servers[i] = start_server(tmp_path, db_url, bootstrap=None)

    threads = [threading.Thread(target=start, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert None not in servers  # both came up healthy
        for server in servers:
            assert server.request("GET", "/api/v1/health")[0] == 200
        shown = [
            server.log().count("Bootstrap secret (shown once") for server in servers
        ]
        assert sorted(shown) == [0, 1]
    finally:
        for server in servers:
            if server is not None:
                server.stop()

    bound = schema.open_database(db_url)
    try:
        assert _versions(bound) == [v for v, _ in schema.MIGRATIONS]
        assert schema.Setting.select().count() == 1
    finally:
        bound.close()


def test_while_one_server_migrates_postgres_holds_the_others_off():
    admin = os.environ.get(PG_VARIABLE)
    if not admin:
        pytest.skip(f"PostgreSQL tests need {PG_VARIABLE} (see README)")
    url = create_pg_database(admin)
    migrating, other = schema._database_for(url), schema._database_for(url)
    try:
        with migrating.atomic():
            schema._lock_for_migration(migrating)
            held = other.execute_sql(
                "SELECT pg_try_advisory_xact_lock(%s)", (schema.MIGRATION_LOCK,)
            ).fetchone()[0]
        assert held is False
    finally:
        migrating.close()
        other.close()
        drop_pg_database(admin, url)
