"""Build dist/dmage.pyz: the dotmage package, static/ and its dependencies in one zip.

Layout inside the zip:

    __main__.py           the bootstrap (zipapp_main.py with BUILD_ID filled in)
    BUILD_ID              content hash of everything below; keys the user's cache
    app/dotmage/...       this package
    app/static/...        the web admin, next to the package as the server expects
    lib/index.json        which lib/<tag>/ folder serves which interpreter
    lib/<tag>/...         dependencies installed by pip, *.dist-info included

<tag> is "<cache tag>-<sys.platform>-<machine>", e.g. cpython-311-linux-x86_64.
Two builds of the same tree give the same bytes: entries are sorted, timestamps
come from SOURCE_DATE_EPOCH (else the last commit), and modes are fixed.
"""

import argparse
import hashlib
import json
import os
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


def main(argv=None):
    args = parse_args(argv)
    epoch = source_date_epoch()
    with tempfile.TemporaryDirectory(prefix="dmage-build-") as work:
        entries = collect_app()
        targets = resolve_targets()
        for target in targets:
            site = os.path.join(work, target["tag"])
            install_dependencies(requirements(), site)
            entries.update(collect_tree(site, target["path"], skip_top={"bin"}))
            target["requirements"] = installed_distributions(site)
        build_id = write_pyz(args.output, entries, targets_index(targets), epoch)
    size = os.path.getsize(args.output)
    print(f"wrote {args.output} ({size / 1e6:.1f} MB, {size} bytes, build {build_id})")
    return 0


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output",
        default=os.path.join(ROOT, "dist", "dmage.pyz"),
        help="where to write the zipapp (default: dist/dmage.pyz)",
    )
    return parser.parse_args(argv)


def resolve_targets():
    """Interpreters the zip will carry dependencies for: today, the running one."""
    # TODO: an --all-platforms build (Linux, macOS, Windows x CPython 3.10+)
    # needs one lib/<tag>/ per target, resolved with markers evaluated for that
    # target (uv pip install --python-platform/--python-version; pip download
    # --platform evaluates them for the build machine and picks the wrong
    # keyring helpers). Until then a dmage.pyz runs only on the interpreter
    # minor version, OS and CPU it was built with, and says so elsewhere.
    tag = zipapp_main.target_tag()
    return [{"tag": tag, "path": f"{zipapp_main.LIB_DIR}/{tag}"}]


def targets_index(targets):
    return {"format": 1, "app": zipapp_main.APP_DIR, "targets": targets}


def requirements():
    """Runtime dependencies as pyproject.toml declares them."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as handle:
        return tomllib.load(handle)["project"]["dependencies"]


def install_dependencies(specs, site):
    command = [sys.executable, "-m", "pip", "install", "--target", site]
    command += ["--only-binary=:all:", "--no-compile", "--quiet"]
    command += ["--disable-pip-version-check", "--no-warn-script-location"]
    env = dict(os.environ, PIP_ROOT_USER_ACTION="ignore")
    result = subprocess.run(command + list(specs), env=env)
    if result.returncode != 0:
        raise SystemExit(f"build_zipapp: pip install failed (exit {result.returncode})")


def installed_distributions(site):
    suffix = ".dist-info"
    names = [name[: -len(suffix)] for name in os.listdir(site) if name.endswith(suffix)]
    return sorted("==".join(name.rsplit("-", 1)) for name in names)


def collect_app():
    """The package and the web admin, both under app/."""
    entries = {}
    for folder in ("dotmage", "static"):
        source = os.path.join(ROOT, folder)
        entries.update(collect_tree(source, f"{zipapp_main.APP_DIR}/{folder}"))
    return entries


def collect_tree(source, prefix, skip_top=()):
    """Map zip names to file bytes (None for a directory) for one folder."""
    entries = {prefix + "/": None}
    for current, dirs, files in os.walk(source):
        relative = os.path.relpath(current, source).replace(os.sep, "/")
        base = prefix if relative == "." else f"{prefix}/{relative}"
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        if relative == ".":
            dirs[:] = [d for d in dirs if d not in skip_top]
        for name in dirs:
            entries[f"{base}/{name}/"] = None
        for name in files:
            if not name.endswith((".pyc", ".pyo")):
                with open(os.path.join(current, name), "rb") as handle:
                    entries[f"{base}/{name}"] = handle.read()
    return entries


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
    entries[f"{zipapp_main.LIB_DIR}/index.json"] = index_bytes(index)

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


if __name__ == "__main__":
    sys.exit(main())
