"""Build dist/dmage.pyz: the dotmage package, static/ and its dependencies in one zip.

Layout inside the zip:

    __main__.py           the bootstrap (zipapp_main.py with BUILD_ID filled in)
    BUILD_ID              content hash of everything below; keys the user's cache
    app/dotmage/...       this package
    app/static/...        the web admin, next to the package as the server expects
    app/dmage.1           the man page (also written to dist/dmage.1)
    app/BUILD_ID          the build id again, so `dmage --version` can name it
    lib/index.json        targets: which lib/dists/ folders serve which interpreter
    lib/dists/<name>-<version>-<digest>/...
                          one installed distribution, *.dist-info included,
                          stored once however many targets share it

A target is "<cache tag>-<sys.platform>-<machine>[-musl]", e.g.
cpython-311-linux-x86_64. Without flags the zip carries the running
interpreter's target only; --all-platforms carries Linux (x86_64, aarch64;
glibc and musl), macOS (x86_64, arm64) and Windows (amd64) for CPython
3.10-3.14, each resolved by uv with markers evaluated for that target.
Two builds of the same tree and the same resolved versions give the same
bytes: entries are sorted, timestamps come from SOURCE_DATE_EPOCH (else the
last commit), and modes are fixed.
"""

import argparse
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile

import zipapp_main

ROOT = os.path.dirname(os.path.abspath(__file__))
SHEBANG = b"#!/usr/bin/env python3\n"
BUILD_ID_PLACEHOLDER = "BUILD_ID = None\n"
# The oldest timestamp a zip can hold is 1980-01-01; a day later stays clear of
# time zone arithmetic in readers that convert it to local time.
ZIP_EPOCH_FLOOR = 315619200
FILE_MODE = 0o100644
DIR_MODE = 0o040755
DISTS_DIR = f"{zipapp_main.LIB_DIR}/dists"

PYTHON_VERSIONS = ("3.10", "3.11", "3.12", "3.13", "3.14")
# (platform part of the target tag, uv's --python-platform). manylinux_2_17
# reaches glibc 2.17 and later (CentOS 7 on); uv's musl platforms mean
# musllinux wheels (Alpine).
PLATFORMS = (
    ("linux-x86_64", "x86_64-manylinux_2_17"),
    ("linux-aarch64", "aarch64-manylinux_2_17"),
    ("linux-x86_64-musl", "x86_64-unknown-linux-musl"),
    ("linux-aarch64-musl", "aarch64-unknown-linux-musl"),
    ("darwin-x86_64", "x86_64-apple-darwin"),
    ("darwin-arm64", "aarch64-apple-darwin"),
    ("win32-amd64", "x86_64-pc-windows-msvc"),
)

MAN_PAGE_EXTRA = """\
[EXIT STATUS]
0 success; 1 general error or not found; 2 usage error; 3 not authenticated
(run dmage auth); 4 conflict (the env moved on since your base revision).

[ENVIRONMENT]
.TP
DOTMAGE_HOME
holds all client state (config, device tokens, key cache file, sync state).
.TP
DOTMAGE_MASTER_PASSWORD, DOTMAGE_BOOTSTRAP_SECRET
read instead of prompting when stdin is not a terminal.
.TP
DOTMAGE_CI_TOKEN
a CI token; pull and exec then need no dmage auth.
.TP
DOTMAGE_ENV
the active env for this command.
.TP
DOTMAGE_CACHE_DIR
where dmage.pyz extracts itself (default: the user cache directory).
.TP
DOTMAGE_DB_URL, DOTMAGE_HOST, DOTMAGE_PORT, DOTMAGE_STATIC_DIR
server settings for dmage serve; see the README for all of them.

[SEE ALSO]
dmage completion bash|zsh|powershell prints a shell completion script.
"""


def main(argv=None):
    args = parse_args(argv)
    epoch = source_date_epoch()
    targets = all_targets() if args.all_platforms else [running_target()]
    abi3_folders = {}
    with tempfile.TemporaryDirectory(prefix="dmage-build-") as work:
        entries = collect_app()
        man_page = build_man_page(work, epoch)
        entries[f"{zipapp_main.APP_DIR}/dmage.1"] = man_page
        for target in targets:
            site = os.path.join(work, "site", target["tag"])
            install_dependencies(target, site)
            dists = split_distributions(site)
            dists = reuse_abi3(dists, target["platform"], abi3_folders)
            for files in dists.values():
                entries.update(files)
            target["dists"] = sorted(dists)
            target["requirements"] = installed_distributions(site)
        build_id = write_pyz(args.output, entries, targets_index(targets), epoch)
    write_man_page(args.output, man_page)
    report(args.output, build_id, targets)
    return 0


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output",
        default=os.path.join(ROOT, "dist", "dmage.pyz"),
        help="where to write the zipapp (default: dist/dmage.pyz)",
    )
    parser.add_argument(
        "--all-platforms",
        action="store_true",
        help="carry dependencies for every supported OS, CPU and CPython "
        "3.10-3.14 (needs uv); default: this interpreter only",
    )
    return parser.parse_args(argv)


# -- targets -------------------------------------------------------------------


def running_target():
    """The interpreter running this script; pip installs its dependencies."""
    tag = zipapp_main.target_tag()
    python = "{}.{}".format(*sys.version_info[:2])
    return {"tag": tag, "python": python, "platform": tag.split("-", 2)[2]}


def all_targets():
    """Every OS, CPU and CPython the universal build carries."""
    targets = []
    for platform, uv_platform in PLATFORMS:
        for python in PYTHON_VERSIONS:
            tag = "cpython-{}-{}".format(python.replace(".", ""), platform)
            target = {"tag": tag, "python": python, "platform": platform}
            targets.append(dict(target, uv_platform=uv_platform))
    return targets


def targets_index(targets):
    return {"format": 2, "app": zipapp_main.APP_DIR, "targets": targets}


# -- dependencies --------------------------------------------------------------


def requirements():
    """Runtime dependencies as pyproject.toml declares them."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as handle:
        return tomllib.load(handle)["project"]["dependencies"]


def install_dependencies(target, site):
    if "uv_platform" in target:
        install_with_uv(target, site)
    else:
        install_with_pip(site)


def install_with_pip(site):
    command = [sys.executable, "-m", "pip", "install", "--target", site]
    command += ["--only-binary=:all:", "--no-compile", "--quiet"]
    command += ["--disable-pip-version-check", "--no-warn-script-location"]
    env = dict(os.environ, PIP_ROOT_USER_ACTION="ignore")
    result = subprocess.run(command + requirements(), env=env)
    if result.returncode != 0:
        raise SystemExit(f"build_zipapp: pip install failed (exit {result.returncode})")


def install_with_uv(target, site):
    # pip download --platform evaluates markers for the build machine (a
    # Windows target would get SecretStorage and miss pywin32-ctypes); uv
    # evaluates them for the target it is told about.
    print(f"  resolving {target['tag']}", flush=True)
    command = [find_uv(), "pip", "install", "--target", site, "--quiet"]
    command += ["--python", sys.executable]
    command += ["--python-platform", target["uv_platform"]]
    command += ["--python-version", target["python"]]
    command += ["--only-binary", ":all:", "--no-compile"]
    result = subprocess.run(command + requirements())
    if result.returncode != 0:
        raise SystemExit(
            f"build_zipapp: uv could not install for {target['tag']} "
            f"(exit {result.returncode})"
        )


def find_uv():
    found = shutil.which("uv")
    if found:
        return found
    try:
        import uv

        return uv.find_uv_bin()
    except (ImportError, FileNotFoundError):
        raise SystemExit(
            "build_zipapp: --all-platforms needs uv to resolve for other "
            "platforms: pip install uv"
        ) from None


def installed_distributions(site):
    """Canonical name==version of every distribution installed in site."""
    suffix = ".dist-info"
    found = []
    for folder in os.listdir(site):
        if folder.endswith(suffix):
            name, version = folder[: -len(suffix)].rsplit("-", 1)
            found.append(f"{canonical_name(name)}=={version}")
    return sorted(found)


def canonical_name(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def split_distributions(site):
    """Group site's files by the distribution whose RECORD lists them.

    Returns {zip folder: {zip name: bytes or None}}; the folder name ends
    in a digest of the contents, so identical installs for different
    targets land in the same folder and are stored once.
    """
    files = collect_tree(site, "", skip_top={"bin"})
    owners = record_owners(site)
    groups = {}
    for name, data in files.items():
        if data is None or not name:
            continue
        owner = owners.get(name, "unrecorded")
        if name.endswith(".dist-info/RECORD"):
            data = drop_unshipped_records(data)
        groups.setdefault(owner, {})[name] = data
    return dict(map(dist_folder, groups.items()))


def record_owners(site):
    """Map each path a *.dist-info/RECORD lists to that distribution's stem."""
    owners = {}
    for info in sorted(os.listdir(site)):
        record = os.path.join(site, info, "RECORD")
        if not info.endswith(".dist-info") or not os.path.isfile(record):
            continue
        name, version = info[: -len(".dist-info")].rsplit("-", 1)
        stem = f"{canonical_name(name)}-{version}"
        with open(record, encoding="utf-8") as handle:
            for line in handle:
                path = line.rsplit(",", 2)[0]
                if path:
                    owners[path] = stem
    return owners


def drop_unshipped_records(data):
    # bin/ scripts are left out of the zip (their shebangs name the build
    # machine's interpreter); their RECORD lines would name missing files.
    lines = data.decode("utf-8").splitlines(keepends=True)
    return "".join(line for line in lines if not line.startswith("bin/")).encode()


def reuse_abi3(dists, platform, seen):
    """Swap abi3 distributions for the copy an older Python of the same
    platform already got.

    An abi3 extension built for CPython 3.8 loads in every later one, but
    uv picks the newest matching wheel per target (cryptography ships
    cp38-abi3 and cp311-abi3, about 5 MB each): keeping the first one
    stores each platform's copy once. Targets come in ascending Python
    order, so the copy kept was made for a Python no newer than this one.
    """
    kept = {}
    for folder, files in dists.items():
        stem = folder.rsplit("-", 1)[0]
        if not is_abi3(files):
            kept[folder] = files
            continue
        key = (platform, stem)
        earlier = seen.setdefault(key, (folder, files))
        kept[earlier[0]] = earlier[1]
    return kept


def is_abi3(files):
    """True when the wheel's WHEEL file tags it cpNN-abi3 only."""
    for name, data in files.items():
        if name.endswith(".dist-info/WHEEL") and data is not None:
            tags = [
                line.split(":", 1)[1].strip()
                for line in data.decode("utf-8").splitlines()
                if line.startswith("Tag:")
            ]
            return bool(tags) and all(tag.split("-")[1] == "abi3" for tag in tags)
    return False


def dist_folder(group):
    """(zip folder, entries with directory entries) for one distribution."""
    stem, files = group
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode("utf-8") + b"\0")
        digest.update(hashlib.sha256(files[name]).digest())
    folder = f"{DISTS_DIR}/{stem}-{digest.hexdigest()[:12]}"
    entries = {f"{folder}/": None}
    for name, data in files.items():
        parts = name.split("/")
        for depth in range(1, len(parts)):
            entries[f"{folder}/{'/'.join(parts[:depth])}/"] = None
        entries[f"{folder}/{name}"] = data
    return folder, entries


# -- the package, the man page -------------------------------------------------


def collect_app():
    """The package and the web admin, both under app/."""
    entries = {}
    for folder in ("dotmage", "static"):
        source = os.path.join(ROOT, folder)
        entries.update(collect_tree(source, f"{zipapp_main.APP_DIR}/{folder}"))
    return entries


def collect_tree(source, prefix, skip_top=()):
    """Map zip names to file bytes (None for a directory) for one folder."""
    entries = {prefix + "/": None} if prefix else {}
    for current, dirs, files in os.walk(source):
        relative = os.path.relpath(current, source).replace(os.sep, "/")
        base = "/".join(part for part in (prefix, relative) if part and part != ".")
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        if relative == ".":
            dirs[:] = [d for d in dirs if d not in skip_top]
        for name in dirs:
            entries[f"{base}/{name}/".lstrip("/")] = None
        for name in files:
            if not name.endswith((".pyc", ".pyo")):
                with open(os.path.join(current, name), "rb") as handle:
                    entries[f"{base}/{name}".lstrip("/")] = handle.read()
    return entries


def build_man_page(work, epoch):
    """dmage.1 from dotmage.cli.parser:build_parser, by argparse-manpage."""
    from dotmage import __version__

    extra = os.path.join(work, "man-extra.txt")
    output = os.path.join(work, "dmage.1")
    with open(extra, "w", encoding="utf-8") as handle:
        handle.write(MAN_PAGE_EXTRA)
    command = [sys.executable, "-c", "from argparse_manpage.cli import main; main()"]
    command += ["--module", "dotmage.cli.parser", "--function", "build_parser"]
    command += ["--prog", "dmage", "--project-name", "dotMage"]
    command += ["--version", __version__, "--manual-title", "dotMage manual"]
    command += ["--description", "end-to-end-encrypted .env files"]
    command += ["--include", extra, "--output", output]
    path = [ROOT, man_page_tool(work)]
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(epoch))
    env["PYTHONPATH"] = os.pathsep.join(p for p in path if p)
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"build_zipapp: argparse-manpage failed:\n{result.stderr}")
    with open(output, "rb") as handle:
        return handle.read()


def man_page_tool(work):
    """Where argparse-manpage is importable from: '' if installed, else a
    folder pip installs it into for this build only."""
    if importlib.util.find_spec("argparse_manpage"):
        return ""
    folder = os.path.join(work, "tools")
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--target", folder]
    command += ["--disable-pip-version-check", "argparse-manpage"]
    if subprocess.run(command).returncode != 0:
        raise SystemExit("build_zipapp: could not install argparse-manpage")
    return folder


def write_man_page(output, man_page):
    path = os.path.join(os.path.dirname(os.path.abspath(output)), "dmage.1")
    with open(path + ".partial", "wb") as handle:
        handle.write(man_page)
    os.replace(path + ".partial", path)


# -- the zip -------------------------------------------------------------------


def content_hash(entries, index, bootstrap):
    digest = hashlib.sha256(bootstrap.encode("utf-8"))
    digest.update(json.dumps(index, sort_keys=True).encode("utf-8"))
    for name in sorted(entries):
        data = entries[name]
        digest.update(name.encode("utf-8") + b"\0")
        digest.update(b"dir" if data is None else hashlib.sha256(data).digest())
    return digest.hexdigest()[:20]


def write_pyz(output, entries, index, epoch):
    """Write the zip atomically; return its build id."""
    with open(os.path.join(ROOT, "zipapp_main.py"), encoding="utf-8") as handle:
        bootstrap = handle.read()
    if bootstrap.count(BUILD_ID_PLACEHOLDER) != 1:
        raise SystemExit(f"build_zipapp: zipapp_main.py lacks {BUILD_ID_PLACEHOLDER!r}")
    build_id = content_hash(entries, index, bootstrap)
    index = dict(index, build_id=build_id)
    entries = dict(entries)
    entries["__main__.py"] = bootstrap.replace(
        BUILD_ID_PLACEHOLDER, f"BUILD_ID = {build_id!r}\n"
    ).encode("utf-8")
    entries["BUILD_ID"] = build_id.encode("ascii") + b"\n"
    entries[f"{zipapp_main.APP_DIR}/BUILD_ID"] = entries["BUILD_ID"]
    entries[zipapp_main.INDEX_NAME] = index_bytes(index)

    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    partial = output + ".partial"
    with open(partial, "wb") as handle:
        handle.write(SHEBANG)
        write_zip(handle, entries, epoch)
    os.chmod(partial, 0o755)
    os.replace(partial, output)
    return build_id


def index_bytes(index):
    return (json.dumps(index, indent=2, sort_keys=True) + "\n").encode("utf-8")


def write_zip(handle, entries, epoch):
    date_time = time.gmtime(max(epoch, ZIP_EPOCH_FLOOR))[:6]
    with zipfile.ZipFile(handle, "w") as archive:
        for name in sorted(entries):
            data = entries[name]
            info = zipfile.ZipInfo(name, date_time)
            info.create_system = 3  # Unix, so the modes below mean the same everywhere
            if data is None:
                info.external_attr = (DIR_MODE << 16) | 0x10  # 0x10: MS-DOS directory
                archive.writestr(info, b"")
            else:
                info.external_attr = FILE_MODE << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, data)


def source_date_epoch():
    """SOURCE_DATE_EPOCH if set, else the last commit's time, else 1980."""
    if os.environ.get("SOURCE_DATE_EPOCH"):
        return int(os.environ["SOURCE_DATE_EPOCH"])
    try:
        out = subprocess.run(
            ["git", "log", "-1", "--format=%ct"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return int(out)
    except (OSError, subprocess.CalledProcessError, ValueError):
        return ZIP_EPOCH_FLOOR


def report(output, build_id, targets):
    size = os.path.getsize(output)
    count = f"{len(targets)} targets" if len(targets) > 1 else targets[0]["tag"]
    print(
        f"wrote {output} ({size / 1e6:.1f} MB, {size} bytes, build {build_id}, {count})"
    )


if __name__ == "__main__":
    sys.exit(main())
