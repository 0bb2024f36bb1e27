"""install.sh against a stand-in `docker`, and install.ps1's required parts."""

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SECRET = "dmage_boot_Zx3-k_9QaTestOnlyNotReal"

# The stand-in records each call and answers like Docker with a server that
# becomes healthy on the second look and logged a bootstrap secret.
FAKE_DOCKER = f"""#!/bin/sh
echo "$*" >>"$DOCKER_CALLS"
case "$*" in
    "compose version") [ -z "$FAKE_NO_COMPOSE" ] || exit 1; echo "v2.30" ;;
    "compose ps -q server") echo c0ffee ;;
    "compose logs --no-color server")
        printf '\\n  Bootstrap secret (shown once, save it now):\\n\\n'
        [ -n "$FAKE_NO_SECRET" ] || printf '  {SECRET}\\n\\n'
        ;;
    inspect*)
        count=$(cat "$DOCKER_CALLS.health" 2>/dev/null || echo 0)
        echo $((count + 1)) >"$DOCKER_CALLS.health"
        [ "$count" = 0 ] && echo starting && exit 0
        echo "${{FAKE_HEALTH:-healthy}}"
        ;;
esac
"""


@pytest.fixture
def fake_bin(tmp_path):
    folder = tmp_path / "bin"
    folder.mkdir()
    docker = folder / "docker"
    docker.write_text(FAKE_DOCKER)
    docker.chmod(docker.stat().st_mode | stat.S_IEXEC)
    return folder


def run_install(tmp_path, bin_folder, **env):
    """Run install.sh in tmp_path with only bin_folder and the basics on PATH."""
    basics = tmp_path / "basics"
    basics.mkdir(exist_ok=True)
    for tool in ("bash", "sh", "cat", "grep", "head", "mkdir", "sleep", "printf"):
        found = shutil.which(tool)
        if found and not (basics / tool).exists():
            (basics / tool).symlink_to(found)
    environment = {
        "PATH": f"{bin_folder}:{basics}",
        "DOCKER_CALLS": str(tmp_path / "calls.log"),
        **env,
    }
    return subprocess.run(
        ["bash", str(ROOT / "install.sh")],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def calls(tmp_path):
    return (tmp_path / "calls.log").read_text().splitlines()


def test_install_writes_compose_starts_waits_and_shows_the_secret(tmp_path, fake_bin):
    result = run_install(tmp_path, fake_bin)
    assert result.returncode == 0, result.stderr

    compose = (tmp_path / "dotmage" / "docker-compose.yml").read_text()
    assert '"9470:8000"' in compose
    assert "dotmage-data:/data" in compose
    assert "restart: unless-stopped" in compose
    assert calls(tmp_path)[:3] == [
        "compose version",
        "compose pull",
        "compose up -d",
    ]
    assert "inspect --format {{.State.Health.Status}} c0ffee" in calls(tmp_path)
    assert f"Bootstrap secret: {SECRET}" in result.stdout
    assert "WARNING: save it now" in result.stdout


def test_second_run_keeps_the_compose_file(tmp_path, fake_bin):
    assert run_install(tmp_path, fake_bin).returncode == 0
    compose = tmp_path / "dotmage" / "docker-compose.yml"
    compose.write_text(compose.read_text() + "# edited by the operator\n")

    again = run_install(tmp_path, fake_bin)
    assert again.returncode == 0, again.stderr
    assert "Keeping the existing dotmage/docker-compose.yml." in again.stdout
    assert compose.read_text().endswith("# edited by the operator\n")
    assert not any("down" in call or "volume" in call for call in calls(tmp_path))


def test_a_log_without_a_secret_says_where_it_went(tmp_path, fake_bin):
    result = run_install(tmp_path, fake_bin, FAKE_NO_SECRET="1")
    assert result.returncode == 0, result.stderr
    assert "Bootstrap secret:" not in result.stdout
    assert "No bootstrap secret in this server's log" in result.stdout


def test_unhealthy_server_fails_with_a_pointer_to_the_logs(tmp_path, fake_bin):
    result = run_install(tmp_path, fake_bin, FAKE_HEALTH="unhealthy")
    assert result.returncode == 1
    assert "unhealthy" in result.stderr
    assert "logs server" in result.stderr


def test_missing_docker_is_explained(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_install(tmp_path, empty)
    assert result.returncode == 1
    assert result.stderr.startswith("install.sh: docker is not installed.")
    assert not (tmp_path / "dotmage").exists()


def test_missing_compose_is_explained(tmp_path, fake_bin):
    result = run_install(tmp_path, fake_bin, FAKE_NO_COMPOSE="1")
    assert result.returncode == 1
    assert result.stderr.startswith("install.sh: docker compose is missing.")


def test_install_sh_passes_shellcheck():
    if not shutil.which("shellcheck"):
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    done = subprocess.run(
        ["shellcheck", str(ROOT / "install.sh")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout


# -- install.ps1: no PowerShell here, so its parts are checked --------------------


@pytest.fixture(scope="module")
def ps1():
    return (ROOT / "install.ps1").read_text()


def test_install_ps1_downloads_to_localappdata_from_a_configurable_url(ps1):
    assert "Join-Path $env:LOCALAPPDATA 'dotmage'" in ps1
    assert "[string]$Url = $env:DOTMAGE_PYZ_URL" in ps1
    assert "Invoke-WebRequest -Uri $Url" in ps1
    assert re.search(r"\$ReleaseUrl = 'https://[^']+/dmage\.pyz'", ps1)


def test_install_ps1_writes_a_launcher_that_finds_python(ps1):
    assert "'dmage.cmd'" in ps1
    assert "@('py', '-3'), @('python')" in ps1
    assert "sys.version_info >= (3, 10)" in ps1
    assert '%~dp0dmage.pyz`" %*' in ps1


def test_install_ps1_sets_the_user_path_and_says_to_restart(ps1):
    assert "SetEnvironmentVariable('Path'" in ps1
    assert "'User')" in ps1
    assert "Restart your terminal" in ps1
    assert "dmage needs Python 3.10 or newer, and none was found" in ps1


def test_install_ps1_brackets_balance(ps1):
    code = re.sub(r"#.*", "", ps1)
    for opening, closing in ("{}", "()", "[]"):
        assert code.count(opening) == code.count(closing), opening


def test_no_script_names_a_machine_path():
    for name in ("install.sh", "install.ps1", "Dockerfile"):
        text = (ROOT / name).read_text()
        assert not re.search(r"/(work|root|tmp)/", text), name
        assert os.sep + "home" + os.sep not in text, name
