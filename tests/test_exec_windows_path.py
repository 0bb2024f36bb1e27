"""exec's Windows path (run, wait, pass the exit code on), run here on POSIX.

Windows itself cannot run here; its code path is plain subprocess and signal
calls that POSIX runs too, so it is driven for real in a child interpreter.
"""

import os
import signal
import subprocess
import sys
import time

from tests.conftest import REPO

RUNNER = (
    "import os, sys\n"
    "from dotmage.cli.cmd_secrets import run_command\n"
    "os.name = 'nt'\n"  # take the Windows branch of run_command
    "sys.exit(run_command(sys.argv[1:], dict(os.environ)))\n"
)


def run_as_windows(*argv, **options) -> subprocess.Popen:
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", RUNNER, *argv], env=environment, **options
    )


def test_the_exit_code_is_the_commands():
    assert run_as_windows("sh", "-c", "exit 42").wait(30) == 42


def test_a_command_found_on_path_runs_and_a_missing_one_is_127(tmp_path):
    missing = run_as_windows("no-such-command-dmage", stderr=subprocess.PIPE)
    assert missing.wait(30) == 127
    assert b"command not found: no-such-command-dmage" in missing.stderr.read()


def test_ctrl_c_does_not_stop_dmage_before_the_command_ends():
    # On a Windows console Ctrl+C reaches dmage and the command alike; dmage
    # must outlive it and hand back the command's own exit code.
    waiting = run_as_windows("sh", "-c", "sleep 1; exit 5")
    time.sleep(0.5)
    waiting.send_signal(signal.SIGINT)
    assert waiting.wait(30) == 5
