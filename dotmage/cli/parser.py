"""The argparse parser, declarative and free of heavy imports.

argparse-manpage builds the man page from build_parser(), so nothing here
may import bottle, peewee, argon2 or keyring.
"""

import argparse

from dotmage.cli.cmd_meta import VersionAction
from dotmage.durations import format_duration, parse_duration
from dotmage.errors import DmageError
from dotmage.names import app_name_problem, env_name_problem

PROG = "dmage"
MAX_TTL = 366 * 86400  # tokens and the key cache: a year and a day at most
MAX_DEVICE_NAME = 64


class UsageError(DmageError):
    """A command line argparse refused; main() reports it once (also as a
    JSON document under --json) and exits 2."""

    exit_code = 2

    def __init__(self, message: str, usage: str):
        super().__init__(message)
        self.usage = usage


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is raised for main() instead of exiting."""

    def error(self, message):
        raise UsageError(f"{self.prog}: error: {message}", self.format_usage())


# -- argument types: a bad value is a usage error (exit 2) with argparse's text --


def app_name(text: str) -> str:
    problem = app_name_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


def env_name(text: str) -> str:
    problem = env_name_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


def positive(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number of 1 or more")
    return number


def assignment(text: str) -> str:
    """KEY=VALUE; the word is never echoed, since without '=' it may be a secret."""
    if "=" not in text:
        raise argparse.ArgumentTypeError("an argument has no '=': write KEY=VALUE")
    return text


def duration(text: str) -> int:
    try:
        seconds = parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if seconds > MAX_TTL:
        raise argparse.ArgumentTypeError(
            f"'{text}' is longer than the most allowed, {format_duration(MAX_TTL)}"
        )
    return seconds


def device_name(text: str) -> str:
    name = text.strip()
    if not name or len(name) > MAX_DEVICE_NAME or not name.isprintable():
        raise argparse.ArgumentTypeError(
            f"a device name is 1 to {MAX_DEVICE_NAME} printable characters"
        )
    return name


def _global_flags(parser: argparse.ArgumentParser, suppress: bool) -> None:
    # On subcommands the defaults are SUPPRESS, so a flag given before the
    # command is not reset by the subcommand's own parser.
    default = argparse.SUPPRESS if suppress else None
    flag_default = argparse.SUPPRESS if suppress else False
    parser.add_argument(
        "--env",
        type=env_name,
        default=default,
        metavar="ENV",
        help="environment to use",
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=flag_default,
        help="print nothing but errors",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=flag_default,
        help="print one JSON document on stdout",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG,
        description="dotMage: end-to-end-encrypted .env files.",
        epilog="Exit codes: 0 ok, 1 error or not found, 2 usage, "
        "3 not authenticated (run dmage auth), 4 conflict.",
    )
    parser.add_argument("--version", action=VersionAction)
    _global_flags(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_server, _account, _secrets, _envs, _tokens, _meta):
        add(commands)
    return parser


def _command(commands, name: str, help_text: str) -> argparse.ArgumentParser:
    sub = commands.add_parser(name, help=help_text, description=help_text)
    _global_flags(sub, suppress=True)
    return sub


def _server(commands) -> None:
    serve = _command(commands, "serve", "run the dotMage server")
    serve.add_argument("--host", help="address to bind (DOTMAGE_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (DOTMAGE_PORT, 9470)")


def _account(commands) -> None:
    auth = _command(commands, "auth", "sign this device in (first one: create)")
    auth.add_argument("--server", metavar="URL", help="server URL (first time)")
    auth.add_argument("--enroll", metavar="TOKEN", help="enrollment token")
    auth.add_argument(
        "--ttl", type=duration, default="7d", help="key cache lifetime (7d)"
    )
    auth.add_argument(
        "--name",
        type=device_name,
        help="this device's name (DOTMAGE_DEVICE_NAME, else the host name; "
        "with --enroll, the token's name)",
    )

    _command(commands, "lock", "forget the cached key; keep the device token")
    _command(commands, "logout", "revoke this device and remove its local data")
    _command(commands, "clean", "wipe all dotMage data from this machine")
    _command(commands, "passwd", "change the master password")

    devices = _command(commands, "devices", "list devices, or revoke one")
    actions = devices.add_subparsers(dest="action", metavar="ACTION")
    revoke = actions.add_parser("revoke", help="revoke a device at once")
    _global_flags(revoke, suppress=True)
    revoke.add_argument("device_id", metavar="ID")


def _secrets(commands) -> None:
    init = _command(commands, "init", "create an app from a .env file")
    _name(init)
    init.add_argument("--file", default=".env", help="the .env file (.env)")

    push = _command(commands, "push", "push a .env file as a new revision")
    _name(push)
    push.add_argument("--file", default=".env", help="the .env file (.env)")
    push.add_argument(
        "--force",
        action="store_true",
        help="replace the latest revision even if this file is not based on it",
    )

    pull = _command(commands, "pull", "decrypt a revision into a .env file")
    _name(pull)
    pull.add_argument("--rev", type=positive, metavar="N", help="revision (latest)")
    where = pull.add_mutually_exclusive_group()
    where.add_argument("--output", metavar="PATH", help="file to write (.env)")
    where.add_argument("--stdout", action="store_true", help="print, write no file")
    pull.add_argument("--force", action="store_true", help="overwrite a changed file")
    pull.add_argument(
        "--format",
        choices=("dotenv", "json", "shell"),
        default="dotenv",
        help="dotenv: the file as pushed; json; shell: export lines",
    )

    exec_ = _command(commands, "exec", "run a command with the secrets in its env")
    _name(exec_)
    exec_.add_argument(
        "--no-override",
        action="store_true",
        help="keep variables already set in the environment",
    )
    # main() hands over everything after the first -- untouched, so the
    # command's own flags are never read as dmage's.
    exec_.add_argument(
        "argv", nargs="*", metavar="-- COMMAND", help="the command and its arguments"
    )

    diff = _command(commands, "diff", "compare a local .env with the latest revision")
    _name(diff)
    diff.add_argument("--file", default=".env", help="the .env file (.env)")
    diff.add_argument("--show-values", action="store_true", help="show the values")

    set_ = _command(commands, "set", "set secrets as a new revision")
    _name(set_)
    set_.add_argument("assignments", nargs="+", type=assignment, metavar="KEY=VALUE")

    unset = _command(commands, "unset", "remove secrets as a new revision")
    _name(unset)
    unset.add_argument("keys", nargs="+", metavar="KEY")

    get = _command(commands, "get", "print one secret's value")
    _name(get)
    get.add_argument("key", metavar="KEY")

    history = _command(commands, "history", "list an env's revisions")
    _name(history)
    history.add_argument("--limit", type=positive, default=20, help="how many (20)")
    history.add_argument("--before", type=positive, metavar="N", help="older than N")

    rollback = _command(commands, "rollback", "make an old revision the latest")
    _name(rollback)
    rollback.add_argument("--rev", type=positive, required=True, metavar="N")

    _command(commands, "apps", "list apps, grouped by folder")
    status = _command(commands, "status", "what this device has, against the server")
    status.add_argument(
        "--forget",
        type=app_name,
        metavar="APP",
        help="forget what this device saw of APP (after a server restore)",
    )


def _envs(commands) -> None:
    env = _command(commands, "env", "show the active env, or manage envs")
    actions = env.add_subparsers(dest="action", metavar="ACTION")
    use = actions.add_parser("use", help="set the active env")
    use.add_argument("name", type=env_name, metavar="ENV")
    listing = actions.add_parser("list", help="list an app's envs")
    listing.add_argument("app", type=app_name, metavar="APP")
    new = actions.add_parser("new", help="create an env")
    new.add_argument("app", type=app_name, metavar="APP")
    new.add_argument("name", type=env_name, metavar="NAME")
    new.add_argument(
        "--copy-from", type=env_name, metavar="ENV", help="copy its latest secrets"
    )
    remove = actions.add_parser("rm", help="delete an env and its history")
    remove.add_argument("app", type=app_name, metavar="APP")
    remove.add_argument("name", type=env_name, metavar="NAME")
    remove.add_argument("--yes", action="store_true", help="do not ask")
    for sub in (use, listing, new, remove):
        _global_flags(sub, suppress=True)


def _tokens(commands) -> None:
    gen = _command(commands, "gen-token", "make an enrollment token for a device")
    gen.add_argument("--name", help="token label")
    gen.add_argument("--ttl", type=duration, default="24h", help="lifetime (24h)")

    _command(commands, "token", "make a 5-minute web admin login code")

    ci = _command(commands, "gen-ci-token", "make a CI token for one app and env")
    ci.add_argument("--app", type=app_name, required=True, metavar="NAME")
    ci.add_argument("--ttl", type=duration, default="30d", help="lifetime (30d)")
    ci.add_argument("--name", help="token label")

    tokens = _command(commands, "tokens", "list tokens, or revoke one")
    actions = tokens.add_subparsers(dest="action", metavar="ACTION")
    revoke = actions.add_parser("revoke", help="revoke a token at once")
    _global_flags(revoke, suppress=True)
    revoke.add_argument("token_id", metavar="ID")

    audit = _command(commands, "audit", "show the server's audit log")
    audit.add_argument("--app", type=app_name, metavar="NAME")
    audit.add_argument("--limit", type=positive, default=50)


def _meta(commands) -> None:
    _command(commands, "version", "print the version, build id and target")
    completion = _command(commands, "completion", "print a shell completion script")
    completion.add_argument("shell", choices=("bash", "zsh", "powershell"))
    help_ = _command(commands, "help", "show a command's help, or the man page")
    help_.add_argument("topic", nargs="*", metavar="COMMAND", help="e.g. env new")
    help_.add_argument("--man", action="store_true", help="show the manual page")


def _name(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "name", type=app_name, metavar="NAME", help="app name (folders with /)"
    )
