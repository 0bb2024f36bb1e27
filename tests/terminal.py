"""A command on a fresh pseudo-terminal, for tests of what a person sees."""

import os
import pty
import select
import signal
import time


class Terminal:
    """A command on a fresh pseudo-terminal, as if typed in a shell."""

    def __init__(self, argv: list, cwd, environment: dict):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: its own session, the pty its terminal
            os.chdir(cwd)
            os.execve(argv[0], argv, environment)
        self.output = b""

    def read_until(self, marker: bytes, timeout: float = 20) -> bytes:
        deadline = time.monotonic() + timeout
        while marker not in self.output:
            left = deadline - time.monotonic()
            assert left > 0, f"no {marker!r} in {self.output!r}"
            if not select.select([self.fd], [], [], left)[0]:
                continue
            try:
                chunk = os.read(self.fd, 4096)
            except OSError:  # EIO: the other side is closed
                chunk = b""
            assert chunk, f"ended without {marker!r}: {self.output!r}"
            self.output += chunk
        return self.output

    def type(self, data: bytes) -> None:
        os.write(self.fd, data)

    def wait(self, timeout: float = 20) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self._drain()
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
            self._drain(0.05)
        os.kill(self.pid, signal.SIGKILL)
        raise AssertionError(f"still running: {self.output!r}")

    def _drain(self, timeout: float = 0) -> None:
        while select.select([self.fd], [], [], timeout)[0]:
            try:
                chunk = os.read(self.fd, 4096)
            except OSError:
                return
            if not chunk:
                return
            self.output += chunk
