"""Server settings from DOTMAGE_* variables, checked once at start."""

import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from dotmage.durations import parse_duration

LOG_LEVELS = ("debug", "info", "warning", "error")
MIN_BOOTSTRAP = 16
SIZE_PATTERN = re.compile(r"^[0-9]{1,10}$")
# Waitress holds a whole body in memory or a temp file: keep it sane.
MAX_BODY_LIMIT = 256 * 1024 * 1024
RATE_PATTERN = re.compile(r"^\s*(\d{1,6})\s*/\s*(s|sec|m|min|h|hour)\s*$")
RATE_WINDOWS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600}


class ConfigError(Exception):
    """A setting is malformed; the message names the variable."""


@dataclass(frozen=True)
class RateLimit:
    count: int
    window: int


@dataclass(frozen=True)
class Settings:
    db_url: str
    bootstrap_secret: str | None = None
    token_ttl: int = 86400
    refresh_ttl: int = 30 * 86400
    rate_limit: RateLimit = RateLimit(10, 60)
    log_level: str = "info"
    static_dir: Path | None = None
    trusted_proxies: tuple = field(default_factory=tuple)
    max_body: int = 1024 * 1024


def load_settings(environ=None) -> Settings:
    # An empty variable counts as unset: compose files often write `VAR: ""`.
    source = os.environ if environ is None else environ
    environ = {k: v for k, v in source.items() if k.startswith("DOTMAGE_") and v}
    return Settings(
        db_url=environ.get("DOTMAGE_DB_URL") or default_db_url(),
        bootstrap_secret=_bootstrap(environ.get("DOTMAGE_BOOTSTRAP_SECRET")),
        token_ttl=_duration(environ, "DOTMAGE_TOKEN_TTL", "24h"),
        refresh_ttl=_duration(environ, "DOTMAGE_REFRESH_TTL", "30d"),
        rate_limit=_rate_limit(environ.get("DOTMAGE_RATE_LIMIT", "10/min")),
        log_level=_log_level(environ.get("DOTMAGE_LOG_LEVEL", "info")),
        static_dir=_static_dir(environ.get("DOTMAGE_STATIC_DIR")),
        trusted_proxies=_proxies(environ.get("DOTMAGE_TRUSTED_PROXIES", "")),
        max_body=_size(environ, "DOTMAGE_MAX_BODY", 1024 * 1024),
    )


def default_db_url() -> str:
    """A SQLite file in the user data directory, for a local `dmage serve`."""
    import platformdirs

    data_dir = Path(platformdirs.user_data_dir("dotmage", appauthor=False))
    return "sqlite:///" + (data_dir / "server.db").as_posix()


def bundled_static_dir() -> Path:
    """static/ beside the package: the repository, or the .pyz extraction."""
    return Path(__file__).resolve().parent.parent.parent / "static"


def _bootstrap(text: str | None) -> str | None:
    # Anyone who guesses it may try master passwords: it must not be short.
    if not text:
        return None
    if len(text) < MIN_BOOTSTRAP or any(
        ch.isspace() or not ch.isprintable() for ch in text
    ):
        raise ConfigError(
            f"DOTMAGE_BOOTSTRAP_SECRET: must be at least {MIN_BOOTSTRAP} printable "
            "characters without spaces (leave it unset to have one made)"
        )
    return text


def _duration(environ, name: str, default: str) -> int:
    try:
        return parse_duration(environ.get(name, default))
    except ValueError as error:
        raise ConfigError(f"{name}: {error}") from None


def _rate_limit(text: str) -> RateLimit:
    match = RATE_PATTERN.match(text)
    if not match or int(match.group(1)) < 1:
        raise ConfigError(
            f"DOTMAGE_RATE_LIMIT: '{text}' is not a rate like 10/min, 5/s or 100/h"
        )
    return RateLimit(int(match.group(1)), RATE_WINDOWS[match.group(2)])


def _log_level(text: str) -> str:
    level = text.strip().lower()
    if level not in LOG_LEVELS:
        raise ConfigError(
            f"DOTMAGE_LOG_LEVEL: '{text}' is not one of {', '.join(LOG_LEVELS)}"
        )
    return level


def _static_dir(text: str | None) -> Path:
    if not text:
        return bundled_static_dir()
    path = Path(text)
    if not path.is_dir():
        raise ConfigError(f"DOTMAGE_STATIC_DIR: '{text}' is not a directory")
    return path


def _proxies(text: str) -> tuple:
    networks = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ConfigError(
                f"DOTMAGE_TRUSTED_PROXIES: '{part}' is not an address or network"
            ) from None
    return tuple(networks)


def _size(environ, name: str, default: int) -> int:
    text = environ.get(name)
    if text is None:
        return default
    if not SIZE_PATTERN.match(text) or not 1024 <= int(text) <= MAX_BODY_LIMIT:
        raise ConfigError(
            f"{name}: '{text}' must be a number of bytes from 1024 to {MAX_BODY_LIMIT}"
        )
    return int(text)
