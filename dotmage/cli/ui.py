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

    def confirm(self, question: str) -> bool:
        """A yes at a terminal; never yes without one."""
        if not interactive():
            return False
        answer = input(f"  {question} [y/N] ")
        return answer.strip().lower() in ("y", "yes")

    def wait(self, label: str, work, *args):
        """Run work(*args), with a spinner on a terminal and nothing otherwise."""
        if not (sys.stderr.isatty() and not self.out.quiet):
            return work(*args)
        done = threading.Event()
        spinner = threading.Thread(target=self._spin, args=(label, done), daemon=True)
        spinner.start()
        try:
            return work(*args)
        finally:
            done.set()
            spinner.join()

    def _spin(self, label: str, done: threading.Event) -> None:
        for frame in itertools.cycle("|/-\\"):
            self.out.stderr.write(f"\r  {label} {frame}")
            self.out.stderr.flush()
            if done.wait(0.1):
                break
        self.out.stderr.write("\r" + " " * (len(label) + 6) + "\r")
        self.out.stderr.flush()
