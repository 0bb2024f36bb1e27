"""The universal dmage.pyz: every target's dependencies, run under every CPython.

The build resolves 35 targets with uv (about a minute with a warm uv cache,
two on a cold one), once per test session.
"""

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import BOOTSTRAP, PASSWORD, Server, free_port, wait_until_healthy
from test_build import OLD_PYTHONS, build_id, pyenv_interpreters

ROOT = Path(__file__).resolve().parent.parent
PLATFORMS = {
    "linux-x86_64": "x86_64-linux-gnu.so",
    "linux-aarch64": "aarch64-linux-gnu.so",
    "linux-x86_64-musl": "x86_64-linux-musl.so",
    "linux-aarch64-musl": "aarch64-linux-musl.so",
    "darwin-x86_64": "darwin.so",
    "darwin-arm64": "darwin.so",
    "win32-amd64": "win_amd64.pyd",
}
PYTHONS = ("3.10", "3.11", "3.12", "3.13", "3.14")
NEW_PYTHONS = [python for version, python in pyenv_interpreters() if version >= (3, 10)]


@pytest.fixture(scope="session")
def universal(tmp_path_factory):
    output = tmp_path_factory.mktemp("universal") / "dmage.pyz"
    command = [sys.executable, str(ROOT / "build_zipapp.py"), "--all-platforms"]
    done = subprocess.run(
        command + ["--output", str(output)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert re.search(
        r"wrote .* \(\d+\.\d MB, \d+ bytes, build \w+, 35 targets\)", done.stdout
    )
    return output


@pytest.fixture(scope="session")
def contents(universal):
    """(targets by tag, every zip name)."""
    with zipfile.ZipFile(universal) as archive:
        index = json.loads(archive.read("lib/index.json"))
        names = archive.namelist()
    return {target["tag"]: target for target in index["targets"]}, names


def projects(target):
    return {requirement.split("==")[0] for requirement in target["requirements"]}


def files_of(target, names, project):
    """Zip names of one project's installed files for one target."""
    (folder,) = [
        folder
        for folder in target["dists"]
        if re.fullmatch(rf"lib/dists/{project}-[^-]+-[0-9a-f]{{12}}", folder)
    ]
    return [name for name in names if name.startswith(folder + "/")]


def test_index_has_every_platform_for_every_python(contents):
    targets, _ = contents
    expected = {
        f"cpython-{python.replace('.', '')}-{platform}"
        for platform in PLATFORMS
        for python in PYTHONS
    }
    assert set(targets) == expected


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_every_target_has_its_compiled_wheels(contents, platform):
    targets, names = contents
    for python in PYTHONS:
        target = targets[f"cpython-{python.replace('.', '')}-{platform}"]
        assert {"pycryptodome", "argon2-cffi-bindings", "cffi"} <= projects(target)

        cffi = files_of(target, names, "cffi")
        suffix = PLATFORMS[platform]
        if platform.endswith("-musl") and python == "3.10":
            # CPython 3.10 on musl still names extensions *-linux-gnu.so;
            # the musllinux wheel is a different file all the same.
            suffix = suffix.replace("musl", "gnu")
            glibc = targets[target["tag"].removesuffix("-musl")]
            assert set(cffi).isdisjoint(files_of(glibc, names, "cffi"))
        abi = python.replace(".", "")
        backend = [n for n in cffi if "_cffi_backend" in n and n.endswith(suffix)]
        assert len(backend) == 1, (target["tag"], cffi)
        assert abi in backend[0].rsplit("/", 1)[1], backend

        extension = ".pyd" if platform.startswith("win32") else ".so"
        for project, folder in (
            ("pycryptodome", "Crypto/Cipher/_raw_aes"),
            ("argon2-cffi-bindings", "_argon2_cffi_bindings/_ffi"),
        ):
            found = files_of(target, names, project)
            assert any(folder in n and n.endswith(extension) for n in found), project


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_os_only_packages_go_to_their_os_only(contents, platform):
    targets, _ = contents
    for python in PYTHONS:
        found = projects(targets[f"cpython-{python.replace('.', '')}-{platform}"])
        linux = platform.startswith("linux")
        assert ("pywin32-ctypes" in found) == platform.startswith("win32")
        assert ("secretstorage" in found) == linux
        assert ("jeepney" in found) == linux


def test_identical_distributions_are_stored_once(contents):
    targets, names = contents
    folders = {folder for target in targets.values() for folder in target["dists"]}
    stored = {"/".join(name.split("/")[:3]) for name in names if "/dists/" in name}
    assert stored == folders
    # Pure packages are one folder for all 35 targets.
    bottles = {f for f in folders if f.startswith("lib/dists/bottle-")}
    assert len(bottles) == 1


def test_old_pythons_get_one_clear_line(universal, tmp_path):
    if not OLD_PYTHONS:
        pytest.skip("no Python < 3.10 under pyenv")
    for python in OLD_PYTHONS:
        result = run(python, universal, tmp_path / "cache", "--version")
        assert result.returncode == 1
        assert result.stderr.startswith("dmage needs Python 3.10 or newer;")
        assert len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "cache").exists()


def test_eight_racing_first_runs_extract_once(universal, tmp_path):
    cache = tmp_path / "cache"
    env = dict(os.environ, DOTMAGE_CACHE_DIR=str(cache))
    command = [sys.executable, str(universal), "--version"]
    runs = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(8)
    ]
    outputs = {run.communicate()[0] for run in runs}
    assert [run.returncode for run in runs] == [0] * 8
    assert len(outputs) == 1
    root = cache / build_id(universal)
    assert [p.name for p in cache.iterdir() if p.is_dir()] == [root.name]
    # Only this interpreter's dependencies were extracted.
    assert len(list((root / "lib").iterdir())) == 1


@pytest.mark.parametrize(
    "python",
    [pytest.param(python, id=python.parent.parent.name) for python in NEW_PYTHONS]
    or [pytest.param(Path(sys.executable), id="running-python")],
)
def test_quick_start_runs_under_every_installed_python(universal, tmp_path, python):
    cache = tmp_path / "cache"
    server = start_pyz_server(python, universal, tmp_path, cache)
    try:
        work = tmp_path / "work"
        work.mkdir()
        (work / ".env").write_text("GREETING=hello from the pyz\n")
        env = client_environment(tmp_path, cache)

        def dmage(*args):
            done = run(python, universal, cache, *args, env=env, cwd=work)
            assert done.returncode == 0, (args, done.stderr)
            return done

        version = dmage("--version").stdout
        major_minor = python_version(python).replace(".", "")
        assert f"cpython-{major_minor}-linux" in version
        dmage("auth", "--server", server.url)
        dmage("init", "myapp")
        (work / ".env").unlink()
        dmage("pull", "myapp")
        assert (work / ".env").read_text() == "GREETING=hello from the pyz\n"
        shown = dmage("exec", "myapp", "--", "sh", "-c", 'printf %s "$GREETING"')
        assert shown.stdout == "hello from the pyz"
    finally:
        server.stop()


def run(python, pyz, cache, *args, env=None, cwd=None):
    env = dict(env or os.environ, DOTMAGE_CACHE_DIR=str(cache))
    return subprocess.run(
        [str(python), str(pyz), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def python_version(python) -> str:
    found = subprocess.run(
        [str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
    )
    return found.stdout.strip()


def client_environment(tmp_path, cache):
    keep = ("PATH", "LANG", "LC_ALL", "TMPDIR")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        HOME=str(tmp_path / "home"),
        DOTMAGE_HOME=str(tmp_path / "dotmage-home"),
        DOTMAGE_CACHE_DIR=str(cache),
        DOTMAGE_MASTER_PASSWORD=PASSWORD,
        DOTMAGE_BOOTSTRAP_SECRET=BOOTSTRAP,
        DOTMAGE_INSECURE_FAST_KDF="1",
        DOTMAGE_KEYRING="file",
    )
    return env


def start_pyz_server(python, pyz, tmp_path, cache) -> Server:
    """`dmage.pyz serve` under the given Python, on SQLite in tmp_path."""
    port = free_port()
    env = client_environment(tmp_path, cache)
    env.update(
        DOTMAGE_DB_URL=f"sqlite:///{tmp_path / 'server.db'}",
        DOTMAGE_RATE_LIMIT="1000/min",
    )
    log_path = tmp_path / "server.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [str(python), str(pyz), "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Server(f"http://127.0.0.1:{port}", "", process, log_path, env)
    wait_until_healthy(server, timeout=60)
    return server
