"""The Dockerfile read statically (no Docker engine here), against the compose
file install.sh writes and the README shows."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def instructions():
    """(INSTRUCTION, arguments) of the final stage, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text()
    text = re.sub(r"\\\n\s*", " ", text)
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    stages = [i for i, line in enumerate(lines) if line.upper().startswith("FROM ")]
    final = lines[stages[-1] :]
    return [tuple(line.split(None, 1)) for line in final]


def one(name):
    (found,) = [args for instruction, args in instructions() if instruction == name]
    return found


def every(name):
    return [args for instruction, args in instructions() if instruction == name]


def install_sh_compose():
    """The docker-compose.yml install.sh writes, with its defaults filled in."""
    text = (ROOT / "install.sh").read_text()
    body = re.search(r"<<YAML\n(.*?)\nYAML\n", text, re.DOTALL).group(1)
    return body.replace("$image", "dotmage/server:latest").replace("$port", "9470")


def readme_compose():
    """The first docker-compose.yml example in the README."""
    text = (ROOT / "README.md").read_text()
    return re.search(r"```yaml\n(services:.*?)```", text, re.DOTALL).group(1)


@pytest.fixture(params=["install.sh", "README"])
def compose(request):
    return install_sh_compose() if request.param == "install.sh" else readme_compose()


def test_the_server_runs_the_pyz_on_all_interfaces_port_8000():
    command = json.loads(one("CMD"))
    assert command[:3] == ["python", "/app/dmage.pyz", "serve"]
    assert command[command.index("--host") + 1] == "0.0.0.0"
    assert command[command.index("--port") + 1] == "8000"
    assert one("EXPOSE") == "8000"


def test_the_compose_file_maps_a_host_port_to_the_image_port(compose):
    (mapping,) = re.findall(r'- "(\d+):(\d+)"', compose)
    assert mapping == ("9470", one("EXPOSE"))
    assert "restart: unless-stopped" in compose


def test_data_lives_in_the_volume_the_compose_file_mounts(compose):
    assert json.loads(one("VOLUME")) == ["/data"]
    assert re.search(r"- dotmage-data:/data\n", compose)
    assert re.search(r"^volumes:\n  dotmage-data:", compose, re.MULTILINE)
    env = " ".join(every("ENV"))
    assert "DOTMAGE_DB_URL=sqlite:////data/dotmage.db" in env
    assert 'DOTMAGE_DB_URL: "sqlite:////data/dotmage.db"' in compose


def test_the_server_runs_as_a_non_root_user():
    user = one("USER")
    assert user not in ("root", "0")
    run = " ".join(every("RUN"))
    assert "useradd --system --uid 10001 --user-group --home-dir /data" in run
    assert f"chown {user}:{user} /data" in run
    # USER comes after everything that needs root.
    names = [instruction for instruction, _ in instructions()]
    assert names.index("USER") > max(i for i, n in enumerate(names) if n == "RUN")


def test_static_files_psycopg_and_the_extracted_cache_are_in_the_image():
    env = " ".join(every("ENV"))
    assert "DOTMAGE_STATIC_DIR=/app/static" in env
    assert "DOTMAGE_CACHE_DIR=/app/cache" in env
    assert "static /app/static" in every("COPY")
    run = " ".join(every("RUN"))
    assert '"psycopg[binary]' in run
    # Extracted at build time: the container never writes its cache.
    assert "python /app/dmage.pyz --version" in run


def test_healthcheck_asks_the_health_endpoint_with_python_alone():
    healthcheck = one("HEALTHCHECK")
    command = json.loads(healthcheck.split("CMD", 1)[1])
    assert command[:2] == ["python", "-c"]
    assert "http://127.0.0.1:8000/api/v1/health" in command[2]
    assert "--interval=" in healthcheck


def test_healthcheck_probe_passes_against_a_real_server_and_fails_without(server):
    probe = json.loads(one("HEALTHCHECK").split("CMD", 1)[1])[2]
    port = server.url.rsplit(":", 1)[1]
    live = probe.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    assert subprocess.run([sys.executable, "-c", live]).returncode == 0
    server.stop()
    dead = subprocess.run([sys.executable, "-c", live], capture_output=True)
    assert dead.returncode != 0
