"""`dmage exec` exactly: exit codes, signals, terminals, stdin, the environment.

One server and one signed-in device serve the whole module; every test runs
the real CLI, which on POSIX replaces itself with the command.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from conftest import Device, start_server
from terminal import Terminal

SECRETS = "GREETING=from dotmage\nSHARED=stored\nexport PORT=8000\n"
APP = "web/api"
HEAVY = ("bottle", "waitress", "peewee", "argon2", "keyring")

# A child that traps SIGTERM and SIGINT, cleans up for two seconds, and
# writes down every signal it got, before and during that cleanup.
TRAPPING_CHILD = """
import json, os, signal, sys, time
received = []
def on_signal(number, frame):
    received.append(number)
signal.signal(signal.SIGTERM, on_signal)
signal.signal(signal.SIGINT, on_signal)
print("ready", os.getpid(), flush=True)
while not received:
    time.sleep(0.01)
deadline = time.monotonic() + 2
while time.monotonic() < deadline:
    time.sleep(0.05)
with open(sys.argv[1], "w") as report:
    json.dump({"pid": os.getpid(), "signals": received, "cleanup": "done"}, report)
"""


@pytest.fixture(scope="module")
def laptop(tmp_path_factory):
    """A signed-in device with APP pushed and its key cached.

    SQLite only: what is tested here happens after the one pull, on this
    machine; the storage tests cover PostgreSQL.
    """
    root = tmp_path_factory.mktemp("exec")
    server = start_server(root, f"sqlite:///{root / 'server.db'}")
    device = Device(root / "laptop-home", root / "laptop-work", server)
    device.auth()
    device.write(".env", SECRETS)
    device.run("init", APP, check=0)
    device.write("child.py", TRAPPING_CHILD)
    yield device
    server.stop()


def exec_argv(*command) -> list:
    return [sys.executable, "-m", "dotmage", "exec", APP, "--", *command]


def quiet_environment(device: Device, **extra) -> dict:
    # The key is cached, so no KDF runs and its test-only warning is not due.
    environment = {**device.environment, **extra}
    environment.pop("DOTMAGE_INSECURE_FAST_KDF")
    return environment


# -- exit codes ----------------------------------------------------------------


def test_the_exit_code_is_the_childs_and_nothing_is_printed(laptop):
    result = laptop.run(
        "exec",
        APP,
        "--",
        "sh",
        "-c",
        "exit 42",
        env={"DOTMAGE_INSECURE_FAST_KDF": None},
    )
    assert (result.code, result.stdout, result.stderr) == (42, "", "")


@pytest.mark.parametrize(("name", "status"), [("TERM", 143), ("INT", 130)])
def test_a_child_killed_by_a_signal_dies_of_it_and_a_shell_shows_128_plus(
    laptop, name, status
):
    suicide = exec_argv("sh", "-c", f"kill -{name} $$")
    direct = subprocess.run(
        suicide, cwd=laptop.cwd, env=quiet_environment(laptop), capture_output=True
    )
    assert direct.returncode == -getattr(signal, f"SIG{name}")
    assert (direct.stdout, direct.stderr) == (b"", b"")

    wrapper = '"$@" 2>/dev/null; echo "status=$?"'
    shell = subprocess.run(
        ["sh", "-c", wrapper, "sh", *suicide],
        cwd=laptop.cwd,
        env=quiet_environment(laptop),
        capture_output=True,
    )
    assert shell.stdout.decode() == f"status={status}\n"


def test_an_unknown_command_is_127_with_one_line(laptop):
    result = laptop.run("exec", APP, "--", "no-such-command-dmage-test", check=127)
    lines = [line for line in result.stderr.splitlines() if "INSECURE" not in line]
    assert lines == ["dmage: command not found: no-such-command-dmage-test"]


def test_a_file_that_is_not_executable_is_126(laptop):
    script = laptop.write("not-executable.sh", "#!/bin/sh\necho hi\n")
    os.chmod(script, 0o644)
    result = laptop.run("exec", APP, "--", "./not-executable.sh", check=126)
    assert "permission denied: ./not-executable.sh" in result.stderr


def test_exec_without_a_command_is_a_usage_error_that_says_how(laptop):
    result = laptop.run("exec", APP, check=2)
    assert f"dmage exec {APP} -- CMD" in result.stderr


# -- the environment -----------------------------------------------------------


def test_stored_values_override_the_environment_by_default(laptop):
    printer = 'printf "%s|%s|%s" "$GREETING" "$SHARED" "$PORT"'
    result = laptop.run(
        "exec", APP, "--", "sh", "-c", printer, env={"SHARED": "from shell"}, check=0
    )
    assert result.stdout == "from dotmage|stored|8000"


def test_no_override_keeps_what_the_environment_already_has(laptop):
    printer = 'printf "%s|%s" "$GREETING" "$SHARED"'
    result = laptop.run(
        "exec",
        APP,
        "--no-override",
        "--",
        "sh",
        "-c",
        printer,
        env={"SHARED": "from shell"},
        check=0,
    )
    assert result.stdout == "from dotmage|from shell"


def test_arguments_after_the_double_dash_are_the_commands_own(laptop):
    result = laptop.run(
        "exec",
        APP,
        "--",
        "sh",
        "-c",
        'printf "%s " "$@"',
        "sh",
        "--json",
        "-q",
        check=0,
    )
    assert result.stdout == "--json -q "


def test_piped_stdin_arrives_unchanged(laptop):
    payload = bytes(range(256)) * 64 + b"\r\nno newline at the end"
    result = laptop.run("exec", APP, "--", "cat", input=payload, check=0)
    assert result.stdout_bytes == payload


# -- signals -------------------------------------------------------------------


def _start_trapping_child(laptop, report, prefix=()):
    process = subprocess.Popen(
        [*prefix, *exec_argv(sys.executable, "child.py", str(report))],
        cwd=laptop.cwd,
        env=quiet_environment(laptop),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    ready = process.stdout.readline().decode().split()
    assert ready[:1] == ["ready"], process.stderr.read().decode()
    return process, int(ready[1])


def test_signals_reach_the_child_once_and_its_cleanup_finishes(laptop, tmp_path):
    started = {}
    for name in ("SIGTERM", "SIGINT"):
        report = tmp_path / f"{name}.json"
        process, child_pid = _start_trapping_child(laptop, report)
        assert child_pid == process.pid  # dmage became the child: same PID
        started[name] = (process, report)

    for name, (process, _) in started.items():
        os.kill(process.pid, getattr(signal, name))
    for name, (process, report) in started.items():
        assert process.wait(timeout=20) == 0
        assert json.loads(report.read_text()) == {
            "pid": process.pid,
            "signals": [int(getattr(signal, name))],
            "cleanup": "done",
        }


def _namespaced_pid(outer_pid: int) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        path = f"/proc/{outer_pid}/task/{outer_pid}/children"
        with open(path) as listing:
            children = listing.read().split()
        if children:
            return int(children[0])
        time.sleep(0.01)
    raise AssertionError("unshare started no child")


def _can_unshare_pid() -> bool:
    if not shutil.which("unshare") or not os.path.exists("/proc/self/task"):
        return False
    probe = subprocess.run(
        ["unshare", "--pid", "--fork", "true"], capture_output=True, timeout=10
    )
    return probe.returncode == 0


@pytest.mark.skipif(not _can_unshare_pid(), reason="needs unshare --pid (Linux)")
def test_as_pid_1_in_a_container_the_child_gets_sigterm_once(laptop, tmp_path):
    report = tmp_path / "pid1.json"
    process, child_pid = _start_trapping_child(
        laptop, report, prefix=("unshare", "--pid", "--fork")
    )
    assert child_pid == 1

    os.kill(_namespaced_pid(process.pid), signal.SIGTERM)
    assert process.wait(timeout=20) == 0
    assert json.loads(report.read_text()) == {
        "pid": 1,
        "signals": [int(signal.SIGTERM)],
        "cleanup": "done",
    }


# -- terminals -----------------------------------------------------------------


def test_at_a_terminal_the_child_owns_stdin_stdout_and_stderr(laptop):
    probe = (
        "import os, sys; print('ttys', sys.stdin.isatty(), sys.stdout.isatty(), "
        "sys.stderr.isatty(), os.getpid())"
    )
    terminal = Terminal(
        exec_argv(sys.executable, "-c", probe), laptop.cwd, quiet_environment(laptop)
    )
    assert terminal.wait() == 0
    assert f"ttys True True True {terminal.pid}".encode() in terminal.output


def test_an_interactive_python_opens_its_prompt(laptop):
    terminal = Terminal(
        exec_argv(sys.executable, "-q"),
        laptop.cwd,
        quiet_environment(laptop, PYTHON_BASIC_REPL="1"),
    )
    terminal.read_until(b">>> ")
    terminal.type(b"import os; print(os.environ['GREETING'].upper())\n")
    terminal.read_until(b"FROM DOTMAGE")
    terminal.type(b"raise SystemExit(5)\n")
    assert terminal.wait() == 5


def test_ctrl_c_at_a_terminal_reaches_the_child_once(laptop, tmp_path):
    report = tmp_path / "ctrl-c.json"
    terminal = Terminal(
        exec_argv(sys.executable, "child.py", str(report)),
        laptop.cwd,
        quiet_environment(laptop),
    )
    terminal.read_until(b"ready")
    terminal.type(b"\x03")
    assert terminal.wait() == 0
    assert json.loads(report.read_text())["signals"] == [int(signal.SIGINT)]


# -- speed ---------------------------------------------------------------------


def test_exec_with_a_cached_key_imports_no_server_kdf_or_keyring_module(laptop):
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", *exec_argv("true")[1:]],
        cwd=laptop.cwd,
        env=quiet_environment(laptop),
        capture_output=True,
        timeout=30,
    )
    assert completed.returncode == 0
    imported = {
        line.rsplit("|", 1)[-1].strip().split(".")[0]
        for line in completed.stderr.decode().splitlines()
        if line.startswith("import time:")
    }
    assert "dotmage" in imported and "urllib" in imported  # the parse works
    assert imported.isdisjoint(HEAVY), sorted(imported & set(HEAVY))
