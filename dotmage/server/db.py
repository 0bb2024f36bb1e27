"""Peewee models, the database URL, and numbered schema migrations."""

import time
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import peewee as pw

from dotmage.server.settings import ConfigError

database = pw.DatabaseProxy()

# SQLite: WAL for concurrent readers, a busy timeout instead of instant
# "database is locked" errors, and synchronous=FULL so an acknowledged push
# survives a power cut, not only a process crash.
SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "busy_timeout": 10000,
    "synchronous": "full",
    "foreign_keys": 1,
}
# libpq connection options a PostgreSQL URL may carry in its query string.
PG_OPTIONS = {
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "connect_timeout",
    "application_name",
    "options",
    "target_session_attrs",
}


def now() -> int:
    return int(time.time())


class Model(pw.Model):
    class Meta:
        database = database


class Setting(Model):
    """Server-wide values: the bootstrap secret's hash."""

    key = pw.CharField(primary_key=True, max_length=64)
    value = pw.TextField()


class Account(Model):
    kdf = pw.TextField()  # JSON: Argon2id parameters and salt
    verifier = pw.CharField(max_length=64)  # SHA-256 of AUTH, hex
    sealed_account_key = pw.TextField()
    created_at = pw.BigIntegerField(default=now)


class Device(Model):
    id = pw.CharField(primary_key=True, max_length=32)
    name = pw.CharField(max_length=100)
    created_at = pw.BigIntegerField(default=now)
    last_seen_at = pw.BigIntegerField(default=now)
    revoked_at = pw.BigIntegerField(null=True)


class Token(Model):
    """Every credential: access, refresh, enroll, login, session, ci."""

    id = pw.CharField(primary_key=True, max_length=32)
    kind = pw.CharField(max_length=16, index=True)
    secret_hash = pw.CharField(max_length=64)
    device = pw.ForeignKeyField(Device, null=True, backref="tokens", index=True)
    created_by = pw.CharField(max_length=32, null=True)
    name = pw.CharField(max_length=100, null=True)
    app_name = pw.CharField(max_length=200, null=True)
    env_name = pw.CharField(max_length=32, null=True)
    sealed_account_key = pw.TextField(null=True)
    created_at = pw.BigIntegerField(default=now)
    expires_at = pw.BigIntegerField()
    used_at = pw.BigIntegerField(null=True)
    last_used_at = pw.BigIntegerField(null=True)
    revoked_at = pw.BigIntegerField(null=True)


class App(Model):
    name = pw.CharField(max_length=200, unique=True)
    created_at = pw.BigIntegerField(default=now)
    updated_at = pw.BigIntegerField(default=now)


class Env(Model):
    # No index of its own: the (app, name) index below serves lookups by app.
    app = pw.ForeignKeyField(App, backref="envs", on_delete="CASCADE", index=False)
    name = pw.CharField(max_length=32)
    sealed_key = pw.TextField()
    latest_revision = pw.IntegerField(default=0)
    created_at = pw.BigIntegerField(default=now)
    updated_at = pw.BigIntegerField(default=now)

    class Meta:
        indexes = ((("app", "name"), True),)


class Revision(Model):
    # No index of its own: the (env, number) index below serves lookups by env,
    # and one index fewer to update keeps pushes fast at a million revisions.
    env = pw.ForeignKeyField(Env, backref="revisions", on_delete="CASCADE", index=False)
    number = pw.IntegerField()
    blob = pw.TextField()
    kind = pw.CharField(max_length=16, default="push")
    source_revision = pw.IntegerField(null=True)
    device_id = pw.CharField(max_length=32, null=True)
    device_name = pw.CharField(max_length=100, null=True)
    created_at = pw.BigIntegerField(default=now)

    class Meta:
        # Unique (env, number) is the last guard for dense, unique numbering.
        indexes = ((("env", "number"), True),)


class Audit(Model):
    at = pw.BigIntegerField(default=now, index=True)
    actor = pw.CharField(max_length=64)
    action = pw.CharField(max_length=32)
    app_name = pw.CharField(max_length=200, null=True, index=True)
    env_name = pw.CharField(max_length=32, null=True)
    outcome = pw.CharField(max_length=32)
    address = pw.CharField(max_length=64, null=True)


class RateCounter(Model):
    key = pw.CharField(primary_key=True, max_length=120)
    count = pw.IntegerField(default=0)
    expires_at = pw.BigIntegerField()


class SchemaVersion(Model):
    version = pw.IntegerField(primary_key=True)
    applied_at = pw.BigIntegerField(default=now)


TABLES_V1 = [Setting, Account, Device, Token, App, Env, Revision, Audit, RateCounter]


def _migration_1(db: pw.Database) -> None:
    db.create_tables(TABLES_V1)


# Numbered migrations, applied in order, each in the same transaction as its
# SchemaVersion row. Migration 1 creates the tables from the models as they
# are now, so every later step must check the schema before changing it: on a
# fresh database, migration 1 already made the change.
def _migration_2(db: pw.Database) -> None:
    # Single-column foreign-key indexes that the unique (app, name) and
    # (env, number) indexes already cover (docs/benchmarks.md).
    for index in ("env_app_id", "revision_env_id"):
        db.execute_sql(f'DROP INDEX IF EXISTS "{index}"')


MIGRATIONS = [(1, _migration_1), (2, _migration_2)]
SCHEMA_VERSION = MIGRATIONS[-1][0]
MIGRATION_LOCK = 74700001


def open_database(url: str) -> pw.Database:
    """Bind the models to the database a DOTMAGE_DB_URL names."""
    db = _database_for(url)
    database.initialize(db)
    return db


def migrate(db: pw.Database, migrations=None) -> int:
    """Bring the schema up to date; returns the version found first."""
    migrations = MIGRATIONS if migrations is None else migrations
    with db.atomic():
        _lock_for_migration(db)
        # Created under the lock: two servers racing on CREATE TABLE IF NOT
        # EXISTS can both fail on PostgreSQL's catalog unique index.
        db.create_tables([SchemaVersion], safe=True)
        found = SchemaVersion.select(pw.fn.MAX(SchemaVersion.version)).scalar() or 0
        _refuse_newer(found, migrations[-1][0])
        for version, step in migrations:
            if version > found:
                step(db)
                SchemaVersion.create(version=version)
    return found


def _lock_for_migration(db: pw.Database) -> None:
    # Two servers starting together must not both migrate: PostgreSQL holds a
    # transaction-scoped advisory lock, so the second one waits and then finds
    # the schema current; SQLite transactions here all begin IMMEDIATE (see
    # _sqlite), which takes the write lock up front.
    if isinstance(db, pw.PostgresqlDatabase):
        db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))


def _refuse_newer(found: int, known: int) -> None:
    # An older server on a newer schema could write rows the newer code
    # cannot read: refuse rather than guess.
    if found > known:
        raise ConfigError(
            f"DOTMAGE_DB_URL: the database schema is version {found}, newer "
            f"than this server knows ({known}): run a newer dotmage"
        )


def usable(db: pw.Database) -> bool:
    """Whether this thread's connection answers; a dead one is dropped."""
    if db.is_closed() or not isinstance(db, pw.PostgresqlDatabase):
        return True  # SQLite's file handle cannot be dropped by a server
    try:
        if db.is_connection_usable():
            db.execute_sql("SELECT 1")
            return True
    except pw.DatabaseError:
        pass
    # The server closed it (restart, pg_terminate_backend, idle timeout):
    # forget it, and the next query opens a new one.
    db.dispose()
    return False


def _database_for(url: str) -> pw.Database:
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        return _sqlite(url)
    if parts.scheme in ("postgres", "postgresql"):
        return _postgres(parts)
    raise ConfigError(
        f"DOTMAGE_DB_URL: unsupported scheme '{parts.scheme}': use "
        "sqlite:////absolute/path.db or postgresql://user:pass@host:5432/db"
    )


def _sqlite(url: str) -> pw.SqliteDatabase:
    if not url.startswith("sqlite:///") or url == "sqlite:///":
        # Peewee reads sqlite://name.db as an in-memory database: data loss.
        raise ConfigError(
            "DOTMAGE_DB_URL: write SQLite URLs as sqlite:////absolute/path.db "
            "(or sqlite:///relative/path.db)"
        )
    path = Path(unquote(url[len("sqlite:///") :]))
    if str(path) == ":memory:":
        raise ConfigError("DOTMAGE_DB_URL: an in-memory database would lose data")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(
            f"DOTMAGE_DB_URL: cannot create {path.parent}: {error}"
        ) from None
    # IMMEDIATE: a write transaction takes the lock at BEGIN, so two pushes
    # queue on the busy timeout instead of failing to upgrade a read lock.
    return pw.SqliteDatabase(
        str(path), pragmas=SQLITE_PRAGMAS, timeout=10, lock_type="IMMEDIATE"
    )


def _postgres(parts) -> pw.PostgresqlDatabase:
    try:
        import psycopg  # noqa: F401
    except ImportError as error:
        # psycopg itself raises ImportError when it finds no libpq.
        found = "" if error.name == "psycopg" else f" ({error})"
        raise ConfigError(
            f"DOTMAGE_DB_URL: PostgreSQL needs the psycopg driver{found}: "
            "pip install 'dotmage[postgres]' (and libpq), "
            "or 'psycopg[binary]', or use the Docker image"
        ) from None
    name = unquote(parts.path.lstrip("/"))
    if not name or "/" in name:
        raise ConfigError("DOTMAGE_DB_URL: name the database, as in .../dotmage")
    # Percent-decoded here, and handed to the driver as separate values, so a
    # password may hold any character once written as %XX in the URL.
    return pw.PostgresqlDatabase(
        name,
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        host=unquote(parts.hostname) if parts.hostname else None,
        port=_port(parts),
        prefer_psycopg3=True,
        **_connect_options(parts.query),
    )


def _port(parts) -> int:
    try:
        return parts.port or 5432
    except ValueError:
        raise ConfigError("DOTMAGE_DB_URL: the port is not a number") from None


def _connect_options(query: str) -> dict:
    # libpq options in the query string, e.g. ?sslmode=require&connect_timeout=5
    options = {}
    for key, values in parse_qs(query, keep_blank_values=True).items():
        if key not in PG_OPTIONS:
            raise ConfigError(
                f"DOTMAGE_DB_URL: unknown option '{key}' "
                f"(known: {', '.join(sorted(PG_OPTIONS))})"
            )
        options[key] = values[-1]
    options.setdefault("connect_timeout", "10")
    return options
