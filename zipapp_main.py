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

    # Warm start: two stats, no reading of the zip.
    units = (APP_DIR, LIB_DIR + "/" + tag)
    if not all(os.path.isdir(os.path.join(root, unit)) for unit in units):
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
    """Name the interpreter and platform the compiled dependencies must match.

    "<cache tag>-<sys.platform>-<machine>", plus "-musl" on a musl Linux,
    e.g. cpython-312-linux-x86_64, cpython-313-darwin-arm64,
    cpython-310-win32-amd64, cpython-311-linux-aarch64-musl.
    """
    if hasattr(os, "uname"):
        machine = os.uname().machine.lower()
    else:
        import platform

        machine = platform.machine().lower()
    # A 32-bit interpreter on a 64-bit OS cannot load 64-bit extensions.
    if sys.maxsize <= 2**32 and machine in ("x86_64", "amd64"):
        machine = "x86"
    cache_tag = sys.implementation.cache_tag or sys.implementation.name
    # Free-threaded builds (3.13t) need their own compiled wheels.
    if "t" in getattr(sys, "abiflags", ""):
        cache_tag += "t"
    parts = [cache_tag, sys.platform, machine]
    if sys.platform.startswith("linux") and not is_glibc():
        parts.append("musl")
    return "-".join(parts)


def is_glibc():
    """glibc answers this confstr name; musl does not know it."""
    try:
        found = os.confstr("CS_GNU_LIBC_VERSION")
    except (AttributeError, ValueError, OSError):
        return False
    return bool(found) and found.startswith("glibc")


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
        plan = extraction_plan(archive, tag)
        if plan is None:
            return None
        try:
            return extract_once(archive, plan, root)
        except OSError as exc:
            return extract_to_temp(archive, plan, os.path.dirname(root), exc)


def extraction_plan(archive, tag):
    """[(unit, [(zip name, relative path)])] for app/ and lib/<tag>/.

    The zip stores each distinct installed distribution once, under
    lib/dists/<name>-<version>-<digest>/; the index names the ones each
    target needs, and they are merged into lib/<tag>/ on extraction.
    Returns None after explaining that this interpreter has no target.
    """
    import json

    index = json.loads(archive.read(INDEX_NAME).decode("utf-8"))
    targets = dict((target["tag"], target) for target in index["targets"])
    if tag not in targets:
        sys.stderr.write(no_target_message(sorted(targets), tag))
        return None
    folders = set(targets[tag]["dists"])
    app, lib = [], []
    for name in archive.namelist():
        if name.startswith(APP_DIR + "/"):
            app.append((name, name[len(APP_DIR) + 1 :]))
            continue
        folder = "/".join(name.split("/")[:3])
        if folder in folders and len(name) > len(folder) + 1:
            lib.append((name, name[len(folder) + 1 :]))
    return [(APP_DIR, app), (LIB_DIR + "/" + tag, lib)]


def no_target_message(tags, tag):
    shown = ", ".join(tags[:4])
    if len(tags) > 4:
        shown += " and " + str(len(tags) - 4) + " more"
    return (
        "dmage: this dmage.pyz has no dependencies for "
        + tag
        + " (it was built for "
        + shown
        + "). Use the universal dmage.pyz from the release page, or rebuild it "
        + "with this Python: python3 build_zipapp.py\n"
    )


def extract_once(archive, plan, root):
    """Extract each missing unit under a lock into a temporary sibling, then
    rename it into place, so a reader never sees half a folder."""
    import shutil
    import tempfile

    parent = os.path.dirname(root)
    os.makedirs(parent, exist_ok=True)
    with open(root + ".lock", "a+b") as lock_file:
        hold_lock(lock_file)
        remove_stale_temp_dirs(root)
        for unit, members in plan:
            # Whoever held the lock before us may have finished this unit;
            # another interpreter may have extracted app/ with its own lib.
            final = os.path.join(root, unit)
            if os.path.isdir(final):
                continue
            staging = tempfile.mkdtemp(
                prefix=os.path.basename(root) + ".tmp-", dir=parent
            )
            try:
                extract_members(archive, members, staging)
                os.makedirs(os.path.dirname(final), exist_ok=True)
                os.rename(staging, final)
            except OSError:
                shutil.rmtree(staging, ignore_errors=True)
                if not os.path.isdir(final):
                    raise
    return root


def extract_members(archive, members, destination):
    """Write zip entries to destination under their relative paths."""
    import shutil

    for name, relative in members:
        path = os.path.join(destination, *relative.rstrip("/").split("/"))
        if name.endswith("/"):
            os.makedirs(path, exist_ok=True)
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with archive.open(name) as source, open(path, "wb") as target:
            shutil.copyfileobj(source, target)


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


def extract_to_temp(archive, plan, cache, error):
    """Extract into a fresh private directory for this run only."""
    import atexit
    import shutil
    import tempfile

    # TODO: atexit does not run when the CLI replaces the process (dmage exec)
    # or is killed; each such run on an unwritable cache leaves one extracted
    # copy (about 15 MB) in the system temp dir.
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
    for unit, members in plan:
        extract_members(archive, members, os.path.join(root, *unit.split("/")))
    return root


if __name__ == "__main__":
    sys.exit(main())
