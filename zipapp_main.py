"""Bootstrap for dmage.pyz: extract the payload once per build, then run the CLI."""

# This whole file must parse on Python 2.7 and 3.6+ so that an old interpreter
# reaches the version check below instead of a SyntaxError: no f-strings, no
# annotations, no keyword-only arguments, no print(file=...).
import os
import sys

# ruff assumes 3.10+ from pyproject; this check exists for older interpreters.
if sys.version_info < (3, 10):  # noqa: UP036
    sys.stderr.write(
        "dmage needs Python 3.10 or newer; this is Python "
        + sys.version.split()[0]
        + ".\n"
    )
    sys.exit(1)

# build_zipapp.py replaces this line with the content hash of the payload.
BUILD_ID = None

APP_DIR = "app"
LIB_DIR = "lib"
INDEX_NAME = "lib/index.json"


def main():
    if BUILD_ID is None:
        sys.stderr.write("dmage: run this through build_zipapp.py, not directly.\n")
        return 1
    pyz = os.path.abspath(os.path.dirname(__file__))
    tag = target_tag()
    root = os.path.join(cache_dir(), BUILD_ID)

    # Warm start: one stat, no reading of the zip.
    if not os.path.isdir(os.path.join(root, LIB_DIR, tag)):
        root = extract_or_fallback(pyz, root, tag)
        if root is None:
            return 1

    # The zip itself leaves sys.path: nothing is imported from it directly.
    rest = [entry for entry in sys.path if os.path.abspath(entry) != pyz]
    sys.path[:] = [os.path.join(root, APP_DIR), os.path.join(root, LIB_DIR, tag)] + rest
    os.environ["DOTMAGE_PYZ"] = pyz
    from dotmage.cli.main import main as cli_main

    return cli_main()


def target_tag():
    """Name the interpreter and platform the compiled dependencies must match."""
    if hasattr(os, "uname"):
        machine = os.uname().machine
    else:
        import platform

        machine = platform.machine()
    cache_tag = sys.implementation.cache_tag or sys.implementation.name
    return "-".join([cache_tag, sys.platform, machine.lower()])


def cache_dir():
    """Per-user cache directory, found without platformdirs (not extracted yet)."""
    configured = os.environ.get("DOTMAGE_CACHE_DIR")
    if configured:
        return os.path.abspath(configured)
    home = os.path.expanduser("~")
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.join(home, "AppData", "Local")
        return os.path.join(base, "dotmage", "cache")
    if sys.platform == "darwin":
        return os.path.join(home, "Library", "Caches", "dotmage")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(home, ".cache")
    return os.path.join(base, "dotmage")


def extract_or_fallback(pyz, root, tag):
    """Extract into the cache; if it is not writable, into a private temp dir."""
    import zipfile

    with zipfile.ZipFile(pyz) as archive:
        members = payload_members(archive, tag)
        if members is None:
            return None
        try:
            return extract_once(archive, members, root)
        except OSError as exc:
            return extract_to_temp(archive, members, os.path.dirname(root), exc)


def payload_members(archive, tag):
    """Zip entries this interpreter needs, or None after explaining a mismatch."""
    import json

    index = json.loads(archive.read(INDEX_NAME).decode("utf-8"))
    targets = dict((target["tag"], target["path"]) for target in index["targets"])
    if tag not in targets:
        sys.stderr.write(
            "dmage: this dmage.pyz was built for "
            + ", ".join(sorted(targets))
            + "; this interpreter is "
            + tag
            + ". Rebuild it with this Python: python3 build_zipapp.py\n"
        )
        return None
    prefixes = (APP_DIR + "/", targets[tag].rstrip("/") + "/")
    return [name for name in archive.namelist() if name.startswith(prefixes)]


def extract_once(archive, members, root):
    """Extract under a lock into a temporary sibling, then rename it into place."""
    import shutil
    import tempfile

    parent = os.path.dirname(root)
    os.makedirs(parent, exist_ok=True)
    with open(root + ".lock", "a+b") as lock_file:
        hold_lock(lock_file)

        # Whoever held the lock before us may have finished the job.
        # TODO: an --all-platforms build carries several lib/<tag> folders, and
        # root is renamed into place as one unit, so a second interpreter that
        # finds root without its own lib/<tag> would get nothing. Rename app/
        # and each lib/<tag>/ into root separately before shipping such builds.
        if os.path.isdir(root):
            return root
        remove_stale_temp_dirs(root)
        staging = tempfile.mkdtemp(prefix=os.path.basename(root) + ".tmp-", dir=parent)
        try:
            archive.extractall(staging, members)
            os.rename(staging, root)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            if not os.path.isdir(root):
                raise
    return root


def hold_lock(lock_file):
    """Block until this process holds the lock; closing the file releases it."""
    if sys.platform == "win32":
        import msvcrt

        while True:
            try:
                msvcrt.locking(lock_file.fileno(), msvcrt.LK_LOCK, 1)
                return
            except OSError:
                # LK_LOCK gives up after about ten seconds; keep waiting.
                continue
    import fcntl

    fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)


def remove_stale_temp_dirs(root):
    """Drop half-written extractions left by a run that was killed mid-way."""
    import shutil

    parent = os.path.dirname(root)
    prefix = os.path.basename(root) + ".tmp-"
    for name in os.listdir(parent):
        if name.startswith(prefix):
            shutil.rmtree(os.path.join(parent, name), ignore_errors=True)


def extract_to_temp(archive, members, cache, error):
    """Extract into a fresh private directory for this run only."""
    import atexit
    import shutil
    import tempfile

    # TODO: atexit does not run when the CLI replaces the process (dmage exec)
    # or is killed; each such run on an unwritable cache leaves one extracted
    # copy (about 30 MB) in the system temp dir.
    root = tempfile.mkdtemp(prefix="dmage-")
    atexit.register(shutil.rmtree, root, True)
    sys.stderr.write(
        "dmage: cache directory "
        + cache
        + " is not writable ("
        + (error.strerror or str(error))
        + "); extracted to a temporary directory for this run. "
        + "Set DOTMAGE_CACHE_DIR to a writable directory for fast starts.\n"
    )
    archive.extractall(root, members)
    return root


if __name__ == "__main__":
    sys.exit(main())
