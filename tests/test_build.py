"""Build dmage.pyz with build_zipapp.py and run it as a user would."""

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from dotmage import __version__

ROOT = Path(__file__).resolve().parent.parent


def build(output, root=ROOT, **env):
    """Run the real build script; return the path it wrote."""
    subprocess.run(
        [sys.executable, str(root / "build_zipapp.py"), "--output", str(output)],
        env=dict(os.environ, **env),
        check=True,
        capture_output=True,
    )
    return output


@pytest.fixture(scope="module")
def pyz(tmp_path_factory):
    return build(tmp_path_factory.mktemp("dist") / "dmage.pyz")


class Names(list):
    """The zip's entry names, remembering which zip they came from."""

    pyz: Path


@pytest.fixture(scope="module")
def names(pyz):
    with zipfile.ZipFile(pyz) as archive:
        found = Names(archive.namelist())
    found.pyz = pyz
    return found


@pytest.fixture(scope="module")
def index(pyz):
    with zipfile.ZipFile(pyz) as archive:
        return json.loads(archive.read("lib/index.json"))


@pytest.fixture(scope="module")
def lib(index, names):
    """The zip names of this interpreter's dependencies, by their path once
    extracted into lib/<tag>/ (e.g. "Crypto/Cipher/_raw_aes...so")."""
    (target,) = index["targets"]
    files = {}
    for folder in target["dists"]:
        for name in names:
            if name.startswith(folder + "/") and name != folder + "/":
                files[name[len(folder) + 1 :]] = name
    return files


def run_pyz(pyz, cache, *args, python=sys.executable, cwd=None):
    env = dict(os.environ, DOTMAGE_CACHE_DIR=str(cache))
    return subprocess.run(
        [python, str(pyz), *args], env=env, cwd=cwd, capture_output=True, text=True
    )


def build_id(pyz):
    with zipfile.ZipFile(pyz) as archive:
        return archive.read("BUILD_ID").decode().strip()


def expected_tag():
    """This interpreter's target, spelled out independently of the bootstrap."""
    libc = os.confstr("CS_GNU_LIBC_VERSION") or ""
    musl = "" if libc.startswith("glibc") else "-musl"
    return f"cpython-3{sys.version_info[1]}-linux-{os.uname().machine}{musl}"


def version_line(pyz):
    return f"dmage {__version__} (build {build_id(pyz)}, {expected_tag()})"


# -- the zip's contents --------------------------------------------------------


def test_zip_holds_package_static_and_bootstrap(names):
    assert {"__main__.py", "BUILD_ID", "lib/index.json"} <= set(names)
    assert "app/dotmage/__init__.py" in names
    assert "app/dotmage/cli/" in names
    assert "app/static/" in names


def test_zip_holds_dependencies_with_their_metadata(lib):
    dist_infos = {path for path in lib if path.endswith(".dist-info/")}
    for project in ("bottle", "waitress", "peewee", "pycryptodome", "keyring"):
        assert any(path.startswith(project + "-") for path in dist_infos), project
    assert any(p.startswith("keyring-") and p.endswith("entry_points.txt") for p in lib)
    # jaraco is a namespace package: only a directory entry makes it importable.
    assert "jaraco/" in lib


def test_zip_holds_compiled_crypto_bindings(lib):
    compiled = [path for path in lib if path.endswith((".so", ".pyd"))]
    assert any(path.startswith("Crypto/Cipher/_raw_aes") for path in compiled)
    assert any(path.startswith("_argon2_cffi_bindings/") for path in compiled)


def test_zip_holds_no_bytecode_or_build_machine_scripts(names, lib):
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert not [path for path in lib if path.startswith("bin/")]
    records = [name for path, name in lib.items() if path.endswith("/RECORD")]
    assert records
    with zipfile.ZipFile(names.pyz) as archive:
        for name in records:
            assert b"\nbin/" not in b"\n" + archive.read(name), name


def test_index_names_this_interpreter_and_its_requirements(index):
    (target,) = index["targets"]
    assert target["tag"] == expected_tag()
    assert target["python"] == "{}.{}".format(*sys.version_info[:2])
    projects = {requirement.split("==")[0] for requirement in target["requirements"]}
    assert {"bottle", "peewee", "pycryptodome", "argon2-cffi-bindings"} <= projects


def test_man_page_is_built_beside_the_zip_and_inside_it(pyz, names):
    page = (pyz.parent / "dmage.1").read_bytes()
    assert page.startswith(b".TH DMAGE")
    for section in (b"EXIT STATUS", b"ENVIRONMENT", rb"gen\-ci\-token"):
        assert section in page
    with zipfile.ZipFile(pyz) as archive:
        assert archive.read("app/dmage.1") == page


def test_build_id_is_stored_in_the_zip_and_the_bootstrap(pyz):
    with zipfile.ZipFile(pyz) as archive:
        bootstrap = archive.read("__main__.py").decode()
        index = json.loads(archive.read("lib/index.json"))
    assert re.fullmatch(r"[0-9a-f]{20}", build_id(pyz))
    assert f"BUILD_ID = {build_id(pyz)!r}\n" in bootstrap
    assert index["build_id"] == build_id(pyz)


# -- reproducibility -----------------------------------------------------------


def test_two_builds_give_identical_bytes(tmp_path):
    # Build from a snapshot of the sources: the working tree may change under
    # a long test run, and a snapshot without .git also pins the fallback time.
    snapshot = tmp_path / "src"
    snapshot.mkdir()
    for name in ("build_zipapp.py", "zipapp_main.py", "pyproject.toml"):
        shutil.copy2(ROOT / name, snapshot / name)
    for folder in ("dotmage", "static"):
        shutil.copytree(ROOT / folder, snapshot / folder)

    first = build(tmp_path / "one" / "dmage.pyz", root=snapshot)
    again = build(tmp_path / "two" / "dmage.pyz", root=snapshot)
    assert again.read_bytes() == first.read_bytes()
    assert (tmp_path / "two" / "dmage.1").read_bytes() == (
        tmp_path / "one" / "dmage.1"
    ).read_bytes()


def test_entries_take_their_time_from_source_date_epoch(tmp_path):
    dated = build(tmp_path / "dated.pyz", SOURCE_DATE_EPOCH="1700000000")
    with zipfile.ZipFile(dated) as archive:
        infos = archive.infolist()
    assert {info.date_time for info in infos} == {(2023, 11, 14, 22, 13, 20)}
    modes = {info.external_attr >> 16 for info in infos}
    assert modes == {0o100644, 0o040755}


# -- running it ----------------------------------------------------------------


def test_version_runs_from_another_cwd_with_a_fresh_cache(pyz, tmp_path):
    cache = tmp_path / "cache"
    result = run_pyz(pyz, cache, "--version", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == version_line(pyz)
    assert (cache / build_id(pyz) / "app" / "static").is_dir()
    assert (cache / build_id(pyz) / "lib" / expected_tag() / "bottle.py").is_file()


def test_warm_start_reuses_the_extracted_build(pyz, tmp_path):
    cache = tmp_path / "cache"
    run_pyz(pyz, cache, "--version")
    extracted = cache / build_id(pyz) / "app" / "dotmage" / "__init__.py"
    before = extracted.stat().st_mtime_ns
    result = run_pyz(pyz, cache, "--version")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert extracted.stat().st_mtime_ns == before


def test_eight_racing_first_runs_all_work_and_extract_once(pyz, tmp_path):
    cache = tmp_path / "cache"
    env = dict(os.environ, DOTMAGE_CACHE_DIR=str(cache))
    command = [sys.executable, str(pyz), "--version"]
    runs = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(8)
    ]
    outputs = [run.communicate()[0] for run in runs]
    assert [run.returncode for run in runs] == [0] * 8
    assert set(outputs) == {version_line(pyz) + "\n"}
    assert [p.name for p in cache.iterdir() if p.is_dir()] == [build_id(pyz)]


def test_a_missing_dependency_folder_is_extracted_beside_the_existing_app(
    pyz, tmp_path
):
    # What a second interpreter finds after the first one extracted the build.
    cache = tmp_path / "cache"
    run_pyz(pyz, cache, "--version")
    root = cache / build_id(pyz)
    app_marker = root / "app" / "dotmage" / "__init__.py"
    before = app_marker.stat().st_mtime_ns
    shutil.rmtree(root / "lib" / expected_tag())

    result = run_pyz(pyz, cache, "--version")
    assert result.returncode == 0, result.stderr
    assert (root / "lib" / expected_tag() / "bottle.py").is_file()
    assert app_marker.stat().st_mtime_ns == before


def test_help_man_prints_the_built_man_page_into_a_pipe(pyz, tmp_path):
    result = run_pyz(pyz, tmp_path / "cache", "help", "--man")
    assert result.returncode == 0, result.stderr
    assert result.stdout.encode() == (pyz.parent / "dmage.1").read_bytes()


def test_leftovers_of_a_killed_extraction_are_removed(pyz, tmp_path):
    cache = tmp_path / "cache"
    leftover = cache / f"{build_id(pyz)}.tmp-killed"
    leftover.mkdir(parents=True)
    assert run_pyz(pyz, cache, "--version").returncode == 0
    assert not leftover.exists()


def test_cache_that_cannot_be_created_falls_back_with_a_notice(pyz, tmp_path):
    (tmp_path / "a-file").write_text("")
    result = run_pyz(pyz, tmp_path / "a-file" / "cache", "--version")
    assert result.returncode == 0
    assert result.stdout.strip() == version_line(pyz)
    assert_one_fallback_notice(result.stderr)


def test_read_only_cache_falls_back_with_a_notice(pyz, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    command = [sys.executable, str(pyz), "--version"]
    env = dict(os.environ, DOTMAGE_CACHE_DIR=str(cache))
    if os.geteuid() != 0:
        cache.chmod(0o555)
        result = subprocess.run(command, env=env, capture_output=True, text=True)
    else:
        result = run_as_root_with_read_only(cache, command, env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == version_line(pyz)
    assert_one_fallback_notice(result.stderr)
    assert list(cache.iterdir()) == []


def run_as_root_with_read_only(folder, command, env):
    """Root writes through file modes; a read-only bind mount stops it."""
    if not shutil.which("unshare"):
        pytest.skip("running as root and unshare is missing: no way to deny writes")
    script = 'mount --bind -o ro "$0" "$0" && exec "$@"'
    wrapped = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c"]
    wrapped += [script, str(folder), *command]
    result = subprocess.run(wrapped, env=env, capture_output=True, text=True)
    if "mount" in result.stderr and result.returncode != 0:
        pytest.skip(f"running as root and the bind mount failed: {result.stderr}")
    return result


def assert_one_fallback_notice(stderr):
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert "not writable" in lines[0]
    assert "temporary directory" in lines[0]
    assert "DOTMAGE_CACHE_DIR" in lines[0]


# -- other interpreters --------------------------------------------------------


def pyenv_interpreters():
    """(version, python) pairs installed with pyenv, found at test time."""
    root = None
    if shutil.which("pyenv"):
        found = subprocess.run(["pyenv", "root"], capture_output=True, text=True)
        root = found.stdout.strip() or None
    versions = Path(root or Path.home() / ".pyenv") / "versions"
    pairs = []
    for folder in sorted(versions.glob("*")) if versions.is_dir() else []:
        match = re.match(r"(\d+)\.(\d+)", folder.name)
        python = folder / "bin" / "python"
        if match and python.exists():
            pairs.append(((int(match[1]), int(match[2])), python))
    return pairs


OLD_PYTHONS = [python for version, python in pyenv_interpreters() if version < (3, 10)]
OTHER_PYTHONS = [
    python
    for version, python in pyenv_interpreters()
    if version >= (3, 10) and version != sys.version_info[:2]
]


@pytest.mark.parametrize(
    "python",
    [pytest.param(python, id=python.parent.parent.name) for python in OLD_PYTHONS]
    or [pytest.param(None, marks=pytest.mark.skip("no Python < 3.10 under pyenv"))],
)
def test_old_python_gets_one_clear_line(pyz, tmp_path, python):
    found = subprocess.run(
        [python, "-c", "import sys; sys.stdout.write(sys.version.split()[0])"],
        capture_output=True,
        text=True,
    )
    result = run_pyz(pyz, tmp_path / "cache", "--version", python=python)
    assert result.returncode == 1
    expected = f"dmage needs Python 3.10 or newer; this is Python {found.stdout}.\n"
    assert result.stderr == expected
    assert not (tmp_path / "cache").exists()


def test_interpreter_the_build_was_not_made_for_is_told_to_rebuild(pyz, tmp_path):
    if not OTHER_PYTHONS:
        pytest.skip("no other CPython 3.10+ minor version under pyenv")
    result = run_pyz(pyz, tmp_path / "cache", "--version", python=OTHER_PYTHONS[0])
    assert result.returncode == 1
    assert "has no dependencies for cpython-3" in result.stderr
    assert expected_tag() in result.stderr
    assert "build_zipapp.py" in result.stderr
    assert len(result.stderr.splitlines()) == 1
