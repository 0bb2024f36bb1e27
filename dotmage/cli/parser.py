"""The argparse parser, declarative and free of heavy imports.

argparse-manpage builds the man page from build_parser(), so nothing here
may import bottle, peewee, argon2 or keyring.
"""

import argparse

from dotmage.cli.cmd_meta import VersionAction

PROG = "dmage"


def _global_flags(parser: argparse.ArgumentParser, suppress: bool) -> None:
    # On subcommands the defaults are SUPPRESS, so a flag given before the
    # command is not reset by the subcommand's own parser.
    default = argparse.SUPPRESS if suppress else None
    flag_default = argparse.SUPPRESS if suppress else False
    parser.add_argument(
        "--env", default=default, metavar="ENV", help="environment to use"
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
    parser = argparse.ArgumentParser(
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
    auth.add_argument("--ttl", default="7d", help="key cache lifetime (7d)")

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

    pull = _command(commands, "pull", "decrypt a revision into a .env file")
    _name(pull)
    pull.add_argument("--rev", type=int, metavar="N", help="revision (latest)")
    pull.add_argument("--output", metavar="PATH", help="file to write (.env)")
    pull.add_argument("--stdout", action="store_true", help="print, write no file")
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
    set_.add_argument("assignments", nargs="+", metavar="KEY=VALUE")

    unset = _command(commands, "unset", "remove secrets as a new revision")
    _name(unset)
    unset.add_argument("keys", nargs="+", metavar="KEY")

    get = _command(commands, "get", "print one secret's value")
    _name(get)
    get.add_argument("key", metavar="KEY")

    history = _command(commands, "history", "list an env's revisions")
    _name(history)
    history.add_argument("--limit", type=int, default=20, help="how many (20)")
    history.add_argument("--before", type=int, metavar="N", help="older than N")

    rollback = _command(commands, "rollback", "make an old revision the latest")
    _name(rollback)
    rollback.add_argument("--rev", type=int, required=True, metavar="N")

    _command(commands, "apps", "list apps, grouped by folder")
    status = _command(commands, "status", "what this device has, against the server")
    status.add_argument(
        "--forget",
        metavar="APP",
        help="forget what this device saw of APP (after a server restore)",
    )


def _envs(commands) -> None:
    env = _command(commands, "env", "show the active env, or manage envs")
    actions = env.add_subparsers(dest="action", metavar="ACTION")
    use = actions.add_parser("use", help="set the active env")
    use.add_argument("name", metavar="ENV")
    listing = actions.add_parser("list", help="list an app's envs")
    listing.add_argument("app", metavar="APP")
    new = actions.add_parser("new", help="create an env")
    new.add_argument("app", metavar="APP")
    new.add_argument("name", metavar="NAME")
    new.add_argument("--copy-from", metavar="ENV", help="copy its latest secrets")
    remove = actions.add_parser("rm", help="delete an env and its history")
    remove.add_argument("app", metavar="APP")
    remove.add_argument("name", metavar="NAME")
    remove.add_argument("--yes", action="store_true", help="do not ask")
    for sub in (use, listing, new, remove):
        _global_flags(sub, suppress=True)


def _tokens(commands) -> None:
    gen = _command(commands, "gen-token", "make an enrollment token for a device")
    gen.add_argument("--name", help="token label")
    gen.add_argument("--ttl", default="24h", help="lifetime (24h)")

    _command(commands, "token", "make a 5-minute web admin login code")

    ci = _command(commands, "gen-ci-token", "make a CI token for one app and env")
    ci.add_argument("--app", required=True, metavar="NAME")
    ci.add_argument("--ttl", default="30d", help="lifetime (30d)")
    ci.add_argument("--name", help="token label")

    tokens = _command(commands, "tokens", "list tokens, or revoke one")
    actions = tokens.add_subparsers(dest="action", metavar="ACTION")
    revoke = actions.add_parser("revoke", help="revoke a token at once")
    _global_flags(revoke, suppress=True)
    revoke.add_argument("token_id", metavar="ID")

    audit = _command(commands, "audit", "show the server's audit log")
    audit.add_argument("--app", metavar="NAME")
    audit.add_argument("--limit", type=int, default=50)


def _meta(commands) -> None:
    _command(commands, "version", "print the version, build id and target")
    completion = _command(commands, "completion", "print a shell completion script")
    completion.add_argument("shell", choices=("bash", "zsh", "powershell"))
    help_ = _command(commands, "help", "show a command's help, or the man page")
    help_.add_argument("topic", nargs="*", metavar="COMMAND", help="e.g. env new")
    help_.add_argument("--man", action="store_true", help="show the manual page")


def _name(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("name", metavar="NAME", help="app name (folders with /)")
