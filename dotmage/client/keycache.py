"""The account key cache: the OS keychain through keyring, else a 0600 file.

The store used is remembered in config.json, so that a command with the key
cached in a file never imports keyring (about 140 ms of backend imports).
"""

import json
import os
import time

from dotmage import crypto
from dotmage.client import state

SERVICE = "dotmage"
KEYRING = "keychain"
FILE = "file"


def store_name() -> str:
    """'keychain' when a real keychain answers, else 'file'; never prompts."""
    if os.environ.get("DOTMAGE_KEYRING", "").lower() in ("0", "no", "off", "file"):
        return FILE
    try:
        import keyring
        from keyring.backends import fail

        backend = keyring.get_keyring()
    except Exception:  # a broken HOME or keyring config must not stop us
        return FILE
    module = type(backend).__module__
    # keyrings.alt's file keyrings prompt for their own password: no good
    # without a terminal, and no better than our 0600 file with one.
    if isinstance(backend, fail.Keyring) or module.startswith("keyrings.alt"):
        return FILE
    if getattr(backend, "priority", 0) <= 0:
        return FILE
    return KEYRING


def save(account_key: bytes, ttl: int, entry: str) -> str:
    """Cache the key until now + ttl; returns the store it went to."""
    record = json.dumps(
        {"account_key": crypto.b64encode(account_key), "expires_at": time.time() + ttl}
    )
    store = store_name()
    if store == KEYRING:
        try:
            import keyring

            keyring.set_password(SERVICE, entry, record)
        except Exception:
            store = FILE
    if store == FILE:
        state.write_private(state.home() / state.KEY_FILE, record.encode())
    return store


def load(store: str | None, entry: str) -> bytes | None:
    """The cached account key, or None when missing or past its TTL."""
    record = _read(store, entry)
    if not record:
        return None
    try:
        data = json.loads(record)
        key = crypto.b64decode(data["account_key"])
        expired = float(data["expires_at"]) <= time.time()
    except (ValueError, KeyError, TypeError):
        return None
    if expired or len(key) != crypto.KEY_SIZE:
        forget(store, entry)
        return None
    return key


def forget(store: str | None, entry: str) -> None:
    state.remove(state.KEY_FILE)
    if store == KEYRING:
        try:
            import keyring

            keyring.delete_password(SERVICE, entry)
        except Exception:
            pass


def describe(store: str) -> str:
    if store == KEYRING:
        return "the system keychain"
    return f"{state.home() / state.KEY_FILE} (mode 0600; no keychain here)"


def _read(store: str | None, entry: str) -> str | None:
    if store == KEYRING:
        try:
            import keyring

            return keyring.get_password(SERVICE, entry)
        except Exception:
            return None
    try:
        return (state.home() / state.KEY_FILE).read_text(encoding="utf-8")
    except OSError:
        return None
