"""`dmage serve`: settings, database, bootstrap secret, then Waitress."""

import logging
import sys

from dotmage import crypto
from dotmage.server.settings import ConfigError, load_settings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9470


def prepare(environ=None):
    """Check settings, open and migrate the database; returns (settings, app)."""
    settings = load_settings(environ)
    _configure_logging(settings.log_level)

    from dotmage.server.app import make_app
    from dotmage.server.db import migrate, open_database

    try:
        db = open_database(settings.db_url)
        db.connect(reuse_if_open=True)
        migrate(db)
    except ConfigError:
        raise
    except Exception as error:  # the driver's own errors vary by database
        raise ConfigError(
            f"DOTMAGE_DB_URL: cannot open the database: {error}"
        ) from None
    secret = ensure_bootstrap_secret(settings.bootstrap_secret)
    if secret:
        _announce(secret)
    db.close()
    return settings, make_app(settings)


def serve(host: str, port: int, environ=None, threads: int = 8) -> None:
    import waitress

    settings, app = prepare(environ)
    logging.getLogger("dotmage.server").info(
        "dotMage server on http://%s:%s (database %s)",
        host if ":" not in host else f"[{host}]",
        port,
        _safe_db_name(settings.db_url),
    )
    waitress.serve(
        app,
        host=host,
        port=port,
        threads=threads,
        ident="dotmage",
        max_request_body_size=settings.max_body + 4096,
        _quiet=True,
    )


def ensure_bootstrap_secret(configured: str | None) -> str | None:
    """Store the secret's hash; returns a newly made secret to show once."""
    from dotmage.server.db import Setting, database
    from dotmage.server.routes import new_bootstrap_secret

    with database.atomic():
        stored = Setting.get_or_none(Setting.key == "bootstrap_hash")
        if configured:
            digest = crypto.sha256_hex(configured.encode())
            Setting.insert(key="bootstrap_hash", value=digest).on_conflict(
                conflict_target=[Setting.key], update={Setting.value: digest}
            ).execute()
            return None
        if stored is not None:
            return None
        secret = new_bootstrap_secret()
        Setting.create(key="bootstrap_hash", value=crypto.sha256_hex(secret.encode()))
        return secret


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


def _safe_db_name(url: str) -> str:
    # Never log a database password.
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rpartition('@')[2]}"
