"""Stand-in keychains for the CLI under test, loaded through PYTHON_KEYRING_BACKEND.

No keychain daemon runs here, and keyring's in-memory backends forget
everything when the process ends; these keep entries in a JSON file named by
DMAGE_TEST_KEYCHAIN, or fail the way broken keychains do.
"""

import json
import os
import time

from keyring.backend import KeyringBackend
from keyring.errors import KeyringError, PasswordDeleteError


class FileKeychain(KeyringBackend):
    """A working keychain whose entries a test can read."""

    priority = 10

    def _load(self) -> dict:
        try:
            with open(os.environ["DMAGE_TEST_KEYCHAIN"]) as handle:
                return json.load(handle)
        except FileNotFoundError:
            return {}

    def _save(self, entries: dict) -> None:
        with open(os.environ["DMAGE_TEST_KEYCHAIN"], "w") as handle:
            json.dump(entries, handle)

    def get_password(self, service, username):
        return self._load().get(f"{service}/{username}")

    def set_password(self, service, username, password):
        entries = self._load()
        entries[f"{service}/{username}"] = password
        self._save(entries)

    def delete_password(self, service, username):
        entries = self._load()
        if entries.pop(f"{service}/{username}", None) is None:
            raise PasswordDeleteError("no such entry")
        self._save(entries)


class FailingKeychain(KeyringBackend):
    """A keychain that is there but refuses every call (locked, no D-Bus)."""

    priority = 10

    def get_password(self, service, username):
        raise KeyringError("the keychain is locked")

    def set_password(self, service, username, password):
        raise KeyringError("the keychain is locked")

    def delete_password(self, service, username):
        raise KeyringError("the keychain is locked")


class HangingKeychain(FailingKeychain):
    """A keychain waiting for an unlock dialog that nobody will ever see."""

    def set_password(self, service, username, password):
        time.sleep(600)

    def get_password(self, service, username):
        time.sleep(600)
