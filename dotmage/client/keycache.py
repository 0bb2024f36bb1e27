"""The account key cache: the OS keychain through keyring, else a 0600 file.

The store used is remembered in config.json, so that a command with the key
cached in a file never imports keyring (about 140 ms of backend imports).
"""

import contextlib
import json
import os
import threading
import time

from dotmage import crypto
from dotmage.client import state

SERVICE = "dotmage"
KEYRING = "keychain"
FILE = "file"
TIMEOUT_VARIABLE = "DOTMAGE_KEYCHAIN_TIMEOUT"
DEFAULT_TIMEOUT = 5.0


class KeychainFailed(Exception):
    """The keychain raised, or did not answer in time."""


def _timeout() -> float:
    try:
        return float(os.environ.get(TIMEOUT_VARIABLE, DEFAULT_TIMEOUT))
    except ValueError:
        return DEFAULT_TIMEOUT


def _keychain(operation: str, *args):
    """One keyring call, abandoned after a few seconds.

    A keychain waiting for a desktop unlock dialog nobody will see must not
    hang a command (or lose the device token that auth just received).
    """
    outcome = {}

    def run():
        try:
            import keyring

            outcome["value"] = getattr(keyring, operation)(*args)
        except Exception as error:  # any backend failure means "no keychain"
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(_timeout())
    if thread.is_alive() or "error" in outcome:
        raise KeychainFailed(operation)
    return outcome.get("value")


def store_name() -> str:
    """'keychain' when a real keychain answers, else 'file'; never prompts."""
    if os.environ.get("DOTMAGE_KEYRING", "").lower() in ("0", "no", "off", "file"):
        return FILE
    try:
        from keyring.backends import fail

        backend = _keychain("get_keyring")
    except Exception:  # no keyring, a broken HOME or keyring config: use a file
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
            _keychain("set_password", SERVICE, entry, record)
            state.remove(state.KEY_FILE)  # no stale copy left in a file
        except KeychainFailed:
            store = FILE
    if store == FILE:
        path = state.home() / state.KEY_FILE
        try:
            state.write_private(path, record.encode())
        except OSError as error:
            raise state.unwritable(path.parent, error) from None
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
        with contextlib.suppress(KeychainFailed):
            _keychain("delete_password", SERVICE, entry)


def describe(store: str) -> str:
    if store == KEYRING:
        return "the system keychain"
    return f"{state.home() / state.KEY_FILE} (mode 0600; no keychain here)"


def _read(store: str | None, entry: str) -> str | None:
    if store == KEYRING:
        try:
            return _keychain("get_password", SERVICE, entry)
        except KeychainFailed:
            return None
    # A damaged cache file (not UTF-8, not JSON) is a cache miss, like an
    # expired one: the password unlocks the key again and replaces the file.
    try:
        return (state.home() / state.KEY_FILE).read_text(encoding="utf-8")
    except (OSError, ValueError):
        return None
