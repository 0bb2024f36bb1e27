"""Local client state: config, device credentials and sync state, all files.

Everything lives in one folder: DOTMAGE_HOME when set, else the platform's
user config directory. Files holding credentials are written 0600, atomically.
"""

import contextlib
import functools
import json
import os
import shutil
import tempfile
from pathlib import Path

CONFIG = "config.json"
CREDENTIALS = "credentials.json"
SYNC = "sync.json"
KEY_FILE = "account-key.json"
LOCK_FILE = ".lock"


def home() -> Path:
    configured = os.environ.get("DOTMAGE_HOME")
    if configured:
        return Path(configured).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("dotmage", appauthor=False))


def read_json(name: str) -> dict:
    path = home() / name
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        from dotmage.errors import DmageError

        raise DmageError(f"cannot read {path}: {error}") from None
    return data if isinstance(data, dict) else {}


def write_json(name: str, data: dict) -> Path:
    path = home() / name
    write_private(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())
    return path


def remove(name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        (home() / name).unlink()


def wipe() -> Path:
    """Delete the whole state folder; returns its path."""
    folder = home()
    shutil.rmtree(folder, ignore_errors=True)
    return folder


def write_private(path: Path, data: bytes) -> None:
    """Write a file atomically, mode 0600 from its first byte."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.chmod(temporary, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        _discard(temporary)
        raise


@contextlib.contextmanager
def locked():
    """Hold this device's state lock: one dmage process at a time inside."""
    folder = home()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(folder / LOCK_FILE, "a+b") as handle:
        try:
            import fcntl
        except ImportError:  # Windows: no flock; refreshes are rare there
            yield
            return
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _discard(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


# -- sync state: what this device last pushed or pulled, and the most it saw --


def _one_writer(change):
    """Sync state is read, changed and written back: two dmage processes at
    once (parallel pulls in a Makefile) must not drop each other's change."""

    @functools.wraps(change)
    def locked_change(*args, **kwargs):
        with locked():
            return change(*args, **kwargs)

    return locked_change


def _sync_key(server: str, app: str, env: str) -> str:
    return f"{server} {app} {env}"


def sync_entry(server: str, app: str, env: str) -> dict:
    return read_json(SYNC).get(_sync_key(server, app, env), {})


def all_sync_entries(server: str) -> list[tuple[str, str, dict]]:
    found = []
    for key, entry in read_json(SYNC).items():
        entry_server, _, rest = key.partition(" ")
        app, _, env = rest.rpartition(" ")
        if entry_server == server:
            found.append((app, env, entry))
    return sorted(found, key=lambda item: (item[0], item[1]))


@_one_writer
def record_sync(server: str, app: str, env: str, local: int, seen: int) -> None:
    data = read_json(SYNC)
    key = _sync_key(server, app, env)
    entry = data.get(key, {})
    entry["local"] = local
    entry["seen"] = max(seen, entry.get("seen", 0))
    data[key] = entry
    write_json(SYNC, data)


@_one_writer
def record_seen(server: str, app: str, env: str, seen: int) -> None:
    """Remember that the server once had this revision of an env."""
    data = read_json(SYNC)
    entry = data.get(_sync_key(server, app, env))
    if entry is not None and seen > entry.get("seen", 0):
        entry["seen"] = seen
        write_json(SYNC, data)


@_one_writer
def record_file(server: str, app: str, env: str, path: Path) -> None:
    """Remember the file this device last pushed or pulled for an env, and
    its hash, so that status can tell when it was edited since."""
    import hashlib

    data = read_json(SYNC)
    entry = data.get(_sync_key(server, app, env))
    if entry is None:
        return
    try:
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return
    entry.update(file=str(Path(path).resolve()), sha256=digest)
    write_json(SYNC, data)


def file_changed(entry: dict) -> bool | None:
    """Whether the recorded file differs from what was pushed or pulled;
    None when no file is recorded or it is gone."""
    import hashlib

    if not entry.get("file"):
        return None
    try:
        data = Path(entry["file"]).read_bytes()
    except OSError:
        return None
    return hashlib.sha256(data).hexdigest() != entry.get("sha256")


@_one_writer
def forget_sync(server: str, app: str, env: str | None = None) -> None:
    data = read_json(SYNC)
    prefix = _sync_key(server, app, env or "")
    for key in list(data):
        if key == prefix or (env is None and key.startswith(prefix)):
            del data[key]
    write_json(SYNC, data)
