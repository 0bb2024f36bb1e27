"""`dmage serve`: settings, database, bootstrap secret, then Waitress."""

import logging
import os
import sys
from urllib.parse import unquote, urlsplit

from dotmage import crypto
from dotmage.server.settings import ConfigError, load_settings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9470


def prepare(environ=None):
    """Check settings, open and migrate the database; returns (settings, app).

    The bootstrap secret is not made here: serve() makes it only once the
    port is bound, so a failed start never stores a secret nobody saw.
    """
    settings = load_settings(environ)
    _configure_logging(settings.log_level)
    # The database holds the KDF salt, the password verifier and the sealed
    # account key: other local users must not read it (or its WAL), nor any
    # other file the server makes.
    os.umask(0o077)

    from dotmage.server.app import make_app
    from dotmage.server.db import migrate, open_database

    db = open_database(settings.db_url)
    _guarded(settings, lambda: (db.connect(reuse_if_open=True), migrate(db)))
    db.close()
    return settings, LiveConnection(make_app(settings), db)


def _guarded(settings, step):
    try:
        return step()
    except ConfigError:
        raise
    except Exception as error:  # the driver's own errors vary by database
        raise ConfigError(_open_failure(error, settings.db_url)) from None


class LiveConnection:
    """WSGI middleware: each request starts on a live database connection.

    Each Waitress thread keeps its own connection (Peewee's thread-local
    state) for the life of the process; before a request runs, a PostgreSQL
    connection is checked with one round trip and reopened if the database
    dropped it, so a restarted PostgreSQL costs no failed request.
    docs/operations.md has the measurements behind this choice.
    """

    def __init__(self, app, db):
        self.app, self.db = app, db

    def __call__(self, environ, start_response):
        from dotmage.server.db import usable

        if not usable(self.db):
            logging.getLogger("dotmage.server").warning(
                "the database dropped a connection: reconnecting"
            )
        return self.app(environ, start_response)


def serve(host: str, port: int, environ=None, threads: int = 8) -> None:
    import waitress

    settings, app = prepare(environ)
    server = waitress.create_server(
        app,
        host=host,
        port=port,
        threads=threads,
        ident="dotmage",
        # Above DOTMAGE_MAX_BODY, so that the app answers an oversized body
        # with its own JSON 413 instead of Waitress's plain text. A body over
        # this still gets Waitress's text (the CLI names it as a 413 anyway).
        max_request_body_size=settings.max_body * 2 + 65536,
        # Waitress would drop X-Forwarded-* before the app sees them; the app
        # trusts them only from DOTMAGE_TRUSTED_PROXIES (server/http.py).
        clear_untrusted_proxy_headers=False,
    )
    secret = _guarded(
        settings, lambda: ensure_bootstrap_secret(settings.bootstrap_secret)
    )
    if secret:
        _announce(secret)
    logging.getLogger("dotmage.server").info(
        "dotMage server on http://%s:%s (database %s)",
        host if ":" not in host else f"[{host}]",
        port,
        _safe_db_name(settings.db_url),
    )
    server.run()


def ensure_bootstrap_secret(configured: str | None) -> str | None:
    """Store the secret's hash; returns a newly made secret to show once."""
    from dotmage.server.db import Setting, database
    from dotmage.server.routes import new_bootstrap_secret

    if configured:
        digest = crypto.sha256_hex(configured.encode())
        Setting.insert(key="bootstrap_hash", value=digest).on_conflict(
            conflict_target=[Setting.key], update={Setting.value: digest}
        ).execute()
        return None

    # Two servers starting at once on a fresh database: the first insert
    # wins, and only that server shows its secret.
    secret = new_bootstrap_secret()
    with database.atomic():
        made = (
            Setting.insert(
                key="bootstrap_hash", value=crypto.sha256_hex(secret.encode())
            )
            .on_conflict_ignore()
            .as_rowcount()
            .execute()
        )
    return secret if made == 1 else None


def _announce(secret: str) -> None:
    # The one time the secret is shown: only its hash is kept.
    print(
        "\n  Bootstrap secret (shown once, save it now):\n\n"
        f"  {secret}\n\n"
        "  You need it to create the account and to add every new device.\n",
        file=sys.stderr,
        flush=True,
    )


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("waitress").setLevel(logging.WARNING)
    # Peewee logs every query with its parameters at DEBUG: ciphertext, the
    # password verifier, token hashes. Never, whatever DOTMAGE_LOG_LEVEL says.
    logging.getLogger("peewee").setLevel(logging.INFO)


def _open_failure(error: Exception, url: str) -> str:
    # One line, and never the password, whatever the driver put in its text.
    text = " ".join(str(error).split()) or type(error).__name__
    password = urlsplit(url).password
    for secret in {password, unquote(password or "")} - {None, ""}:
        text = text.replace(secret, "***")
    return f"DOTMAGE_DB_URL: cannot open {_safe_db_name(url)}: {text[:300]}"


def _safe_db_name(url: str) -> str:
    # Never log a database password.
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rpartition('@')[2]}"
