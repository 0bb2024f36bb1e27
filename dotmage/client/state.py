"""Local client state: config, device credentials and sync state, all files.

Everything lives in one folder: DOTMAGE_HOME when set, else the platform's
user config directory. Files holding credentials are written 0600, atomically.
"""

import contextlib
import functools
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from dotmage.errors import DmageError

CONFIG = "config.json"
CREDENTIALS = "credentials.json"
SYNC = "sync.json"
KEY_FILE = "account-key.json"
LOCK_FILE = ".lock"
NEXT_STEP = "remove it or run dmage clean"


def _silent(text: str) -> None:
    pass


# The CLI sets this to print a warning; client/ itself never prints.
notify = _silent


class DamagedFile(DmageError):
    """A state file that is not what dmage wrote: not UTF-8 JSON of the right
    shape. The message names the file and the way out."""

    def __init__(self, path: Path, problem: str):
        super().__init__(f"{path} is damaged ({problem}): {NEXT_STEP}")
        self.path = path


def home() -> Path:
    configured = os.environ.get("DOTMAGE_HOME")
    if configured:
        return Path(configured).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("dotmage", appauthor=False))


def read_json(name: str, fields: dict | None = None) -> dict:
    """A state file as a dict ({} when missing); fields maps the keys that
    must have a type, when present, to that type."""
    path = home() / name
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise DmageError(f"cannot read {path}: {error.strerror}") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError is one
        raise DamagedFile(path, "not UTF-8 JSON") from None
    if not isinstance(data, dict):
        raise DamagedFile(path, "not a JSON object")
    for key, kind in (fields or {}).items():
        if key in data and data[key] is not None and not _is(data[key], kind):
            raise DamagedFile(path, f"'{key}' is not {_KIND_NAMES[kind]}")
    return data


_KIND_NAMES = {str: "text", int: "a whole number", float: "a number"}


def _is(value, kind) -> bool:
    if isinstance(value, bool):
        return False
    if kind is float:
        return isinstance(value, int | float)
    return isinstance(value, kind)


def write_json(name: str, data: dict) -> Path:
    path = home() / name
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    try:
        write_private(path, text.encode())
    except OSError as error:
        raise unwritable(path.parent, error) from None
    return path


def unwritable(folder: Path, error: OSError) -> DmageError:
    reason = error.strerror or type(error).__name__
    return DmageError(
        f"dotMage's state folder {folder} cannot be written ({reason}): make it "
        "writable, or point DOTMAGE_HOME at another folder"
    )


def check_writable() -> None:
    """Before a change reaches the server, make sure what it leaves behind
    (the sync state) can be recorded: a push that lands and then fails to be
    remembered looks failed, and is lost to the next push's conflict check."""
    folder = home()
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, probe = tempfile.mkstemp(prefix=".probe.", dir=folder)
        os.close(fd)
        os.unlink(probe)
        for name in (SYNC, LOCK_FILE, CREDENTIALS):
            # An immutable file (chattr +i) cannot be replaced or locked.
            if (folder / name).exists() and not os.access(folder / name, os.W_OK):
                raise PermissionError(1, "Operation not permitted")
    except OSError as error:
        raise unwritable(folder, error) from None


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
    with _lock_file() as handle:
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


def _lock_file():
    folder = home()
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        return open(folder / LOCK_FILE, "a+b")
    except OSError as error:
        raise unwritable(folder, error) from None


def _discard(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


# -- sync state: per env, the most this device saw, and per local file the
# revision it holds and the hash of its bytes then ------------------------------
#
# sync.json: {"SERVER APP ENV": {"seen": N, "files": {"/abs/path": {"revision":
# N, "sha256": HEX}}}}. A push of a file is based on that file's revision, so
# two working copies on one device can never overwrite each other silently.


def _one_writer(change):
    """Sync state is read, changed and written back: two dmage processes at
    once (parallel pulls in a Makefile) must not drop each other's change."""

    @functools.wraps(change)
    def locked_change(*args, **kwargs):
        with locked():
            return change(*args, **kwargs)

    return locked_change


def best_effort(change, *args) -> bool:
    """Record sync state for a command that changed nothing on the server: a
    folder that cannot be written costs a warning, not the command."""
    try:
        change(*args)
    except DmageError as error:
        notify(f"sync state not recorded: {error}")
        return False
    return True


def _sync_key(server: str, app: str, env: str) -> str:
    return f"{server} {app} {env}"


def _read_sync() -> dict:
    """sync.json, with a damaged one set aside: it is a record, not a blocker."""
    try:
        data = read_json(SYNC)
        entries = {key: _entry(value) for key, value in data.items()}
    except (DamagedFile, AttributeError, LookupError, TypeError, ValueError):
        _set_aside(home() / SYNC)
        return {}
    return entries


def _entry(value: dict) -> dict:
    """One env's record, checked; a record from before per-file bases keeps
    its one file."""
    files = value.get("files", {})
    if "file" in value:
        files = {value["file"]: {"revision": value["local"], "sha256": value["sha256"]}}
    for record in files.values():
        if not isinstance(record["revision"], int) or not isinstance(
            record["sha256"], str
        ):
            raise TypeError("bad file record")
    seen = value.get("seen", 0)
    if not isinstance(seen, int) or not isinstance(files, dict):
        raise TypeError("bad entry")
    return {"seen": seen, "files": files}


def _set_aside(path: Path) -> None:
    bad = path.with_name(path.name + ".bad")
    try:
        os.replace(path, bad)
    except OSError as error:
        notify(f"{path} is damaged and cannot be moved aside ({error.strerror})")
        return
    notify(
        f"{path} was damaged: moved it to {bad} and started a new one (status "
        "and push no longer know which files came from which revision: pull them "
        "again)"
    )


def sync_entry(server: str, app: str, env: str) -> dict:
    return _read_sync().get(_sync_key(server, app, env), {"seen": 0, "files": {}})


def all_sync_entries(server: str) -> list[tuple[str, str, dict]]:
    found = []
    for key, entry in _read_sync().items():
        entry_server, _, rest = key.partition(" ")
        app, _, env = rest.rpartition(" ")
        if entry_server == server:
            found.append((app, env, entry))
    return sorted(found, key=lambda item: (item[0], item[1]))


def file_key(path: Path) -> str:
    return str(Path(path).resolve())


def file_record(server: str, app: str, env: str, path: Path) -> dict | None:
    """The revision a local file holds, and its hash then; None if unknown."""
    return sync_entry(server, app, env)["files"].get(file_key(path))


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_changed(record: dict, path: str) -> bool | None:
    """Whether a recorded file was edited since; None when it is gone."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    return digest(data) != record.get("sha256")


@_one_writer
def record_seen(server: str, app: str, env: str, seen: int) -> None:
    """Remember that the server once had this revision of an env."""
    data = _read_sync()
    key = _sync_key(server, app, env)
    entry = data.setdefault(key, {"seen": 0, "files": {}})
    if seen > entry["seen"]:
        entry["seen"] = seen
        write_json(SYNC, data)


@_one_writer
def record_file(
    server: str, app: str, env: str, path: Path, revision: int, sha256: str
) -> None:
    """Remember that a local file holds this revision, with these bytes."""
    # TODO: only the revision and a hash are kept, so an old file copied over
    # a tracked one (cp old/.env .env) looks like a local edit of the newer
    # revision and pushes without a conflict. Keeping the hash of every
    # revision this path held would catch it.
    data = _read_sync()
    entry = data.setdefault(_sync_key(server, app, env), {"seen": 0, "files": {}})
    entry["files"][file_key(path)] = {"revision": revision, "sha256": sha256}
    entry["seen"] = max(entry["seen"], revision)
    write_json(SYNC, data)


@_one_writer
def forget_sync(server: str, app: str, env: str | None = None) -> None:
    data = _read_sync()
    prefix = _sync_key(server, app, env or "")
    for key in list(data):
        if key == prefix or (env is None and key.startswith(prefix)):
            del data[key]
    write_json(SYNC, data)
