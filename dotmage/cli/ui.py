"""What the CLI says and asks: messages on stderr, data on stdout, prompts."""

import getpass
import itertools
import json
import os
import sys
import threading

from dotmage.errors import DmageError


class Output:
    """stdout carries data (or one JSON document); stderr carries messages."""

    def __init__(self, json_mode: bool, quiet: bool, stdout=None, stderr=None):
        self.json_mode = json_mode
        self.quiet = quiet
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr

    def say(self, text: str) -> None:
        """A message for a person; silent under --quiet and --json."""
        if not self.quiet and not self.json_mode:
            print(text, file=self.stderr, flush=True)

    def warn(self, text: str) -> None:
        if not self.quiet:
            print(f"warning: {text}", file=self.stderr, flush=True)

    def data(self, text: str) -> None:
        """Data for a person or a pipe; --json prints its document instead."""
        if not self.json_mode and not self.quiet:
            print(text, file=self.stdout, flush=True)

    def product(self, text: str) -> None:
        """What the command made and nobody can show again (a token).

        Printed even under --quiet, so that TOKEN=$(dmage gen-token -q) works;
        indented for a person at a terminal, bare for a pipe.
        """
        if self.json_mode:
            return
        shown = f"  {text}" if self.stdout.isatty() else text
        print(shown, file=self.stdout, flush=True)

    def raw(self, data: bytes) -> None:
        """Exact bytes on stdout (pull --stdout), even under --quiet."""
        self.stdout.flush()
        self.stdout.buffer.write(data)
        self.stdout.buffer.flush()

    def document(self, value) -> None:
        if self.json_mode:
            json.dump(value, self.stdout, indent=2, ensure_ascii=False)
            self.stdout.write("\n")
            self.stdout.flush()


def interactive() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()


class Prompter:
    """Asks at a terminal; without one reads the named environment variable."""

    def __init__(self, out: Output):
        self.out = out

    def secret(self, label: str, variable: str) -> str:
        if not interactive():
            value = os.environ.get(variable)
            if not value:
                raise DmageError(
                    f"no terminal to ask for the {label.lower()}: set {variable}"
                )
            return value
        value = getpass.getpass(f"  {label}: ", stream=sys.stderr)
        if not value:
            raise DmageError(f"the {label.lower()} cannot be empty")
        return value

    def new_secret(self, label: str, variable: str) -> str:
        value = self.secret(label, variable)
        if interactive():
            again = getpass.getpass(f"  {label} (again): ", stream=sys.stderr)
            if again != value:
                raise DmageError("the two passwords differ; nothing was changed")
        if len(value) < 8:
            raise DmageError("a master password needs at least 8 characters")
        return value

    def password_reader(self):
        return lambda label: self.secret(label, "DOTMAGE_MASTER_PASSWORD")

    def note(self, text: str) -> None:
        """A line that explains the prompts coming next, at a terminal only."""
        if interactive():
            self.out.say(text)

    def confirm(self, question: str) -> bool:
        """A yes at a terminal; never yes without one."""
        if not interactive():
            return False
        # The question goes to stderr: stdout may be a pipe or a JSON document.
        self.out.stderr.write(f"  {question} [y/N] ")
        self.out.stderr.flush()
        answer = sys.stdin.readline()
        return answer.strip().lower() in ("y", "yes")

    def wait(self, label: str, work, *args):
        """Run work(*args), with a spinner on a terminal and nothing otherwise."""
        with Spinner(self.out, label, delay=0):
            return work(*args)


class Spinner:
    """A spinner on stderr while a block runs, only when stderr is a terminal.

    With a delay, nothing is drawn unless the block outlasts it, so quick
    server answers do not flicker.
    """

    def __init__(self, out: Output, label: str, delay: float = 0.0):
        self.out, self.label, self.delay = out, label, delay
        self.done = threading.Event()
        self.thread = None

    def __enter__(self):
        if self.out.stderr.isatty() and not self.out.quiet:
            self.thread = threading.Thread(target=self._spin, daemon=True)
            self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.done.set()
        if self.thread is not None:
            self.thread.join()
        return False

    def _spin(self) -> None:
        if self.done.wait(self.delay):
            return
        for frame in itertools.cycle("|/-\\"):
            self.out.stderr.write(f"\r  {self.label} {frame}")
            self.out.stderr.flush()
            if self.done.wait(0.1):
                break
        self.out.stderr.write("\r" + " " * (len(self.label) + 6) + "\r")
        self.out.stderr.flush()
