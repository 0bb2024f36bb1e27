"""dmage's entry point: parse, dispatch to one handler, turn errors into codes."""

import importlib
import os
import sys
from dataclasses import dataclass

from dotmage.cli.parser import UsageError, build_parser
from dotmage.cli.ui import Output, Prompter, Spinner
from dotmage.errors import DmageError

USAGE_ERROR = 2
INTERRUPTED = 130
SLOW_SERVER = 0.4  # seconds before a spinner shows for a server's answer


@dataclass
class Context:
    """What every handler gets: where to print and how to ask."""

    out: Output
    prompter: Prompter


# Which module handles each command: a command imports only its own module,
# so `dmage exec` never pays for the account or server commands' imports.
# tests/test_cli_dispatch.py checks this table against the parser.
COMMAND_MODULES = {
    "serve": "cmd_server",
    **dict.fromkeys(
        ("auth", "lock", "logout", "clean", "passwd", "devices", "gen-token"),
        "cmd_account",
    ),
    **dict.fromkeys(("token", "gen-ci-token", "tokens", "audit"), "cmd_account"),
    **dict.fromkeys(("init", "push", "pull", "exec"), "cmd_secrets"),
    **dict.fromkeys(("diff", "set", "unset", "get"), "cmd_edit"),
    **dict.fromkeys(("apps", "env", "history", "rollback", "status"), "cmd_envs"),
    **dict.fromkeys(("version", "completion", "help"), "cmd_meta"),
}


def handler_for(command: str):
    module = importlib.import_module(f"dotmage.cli.{COMMAND_MODULES[command]}")
    return module.HANDLERS[command]


def main(argv=None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = parse(parser, argv)
    except UsageError as error:
        return _usage_failure(error, argv)
    if not args.command:
        parser.print_help(sys.stderr)
        return USAGE_ERROR

    out = Output(json_mode=args.json, quiet=args.quiet)
    context = Context(out, Prompter(out))
    _connect_client(out)
    if os.environ.get("DOTMAGE_INSECURE_FAST_KDF") == "1":
        out.warn("DOTMAGE_INSECURE_FAST_KDF=1: weak Argon2id settings, for tests only")
    try:
        return handler_for(args.command)(args, context) or 0
    except DmageError as error:
        return _fail(out, str(error), error.exit_code)
    except KeyboardInterrupt:
        return INTERRUPTED
    except Exception as error:  # the last line of defence: no tracebacks
        if os.environ.get("DOTMAGE_DEBUG") == "1":
            raise
        return _fail(out, f"unexpected error: {type(error).__name__}: {error}", 1)


def parse(parser, argv: list):
    """Parse dmage's arguments; after exec's --, everything is the command's."""
    args = _parse_exec(parser, argv) or parser.parse_args(argv)
    if args.command == "exec":
        args.argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
        if not args.argv:
            parser.error(f"give the command after --: dmage exec {args.name} -- CMD")
    return args


def _parse_exec(parser, argv: list):
    if "--" in argv and "exec" in argv[: argv.index("--")]:
        split = argv.index("--")
        args = parser.parse_args(argv[:split])
        if args.command == "exec":
            args.argv = [*args.argv, *argv[split + 1 :]]
            return args
    return None


def _usage_failure(error: UsageError, argv: list) -> int:
    """argparse's usage and message on stderr; under --json, one document too."""
    sys.stderr.write(error.usage)
    print(error, file=sys.stderr, flush=True)
    own = argv[: argv.index("--")] if "--" in argv else argv
    if "--json" in own:
        Output(json_mode=True, quiet=False).document(
            {"error": {"message": str(error), "exit_code": error.exit_code}}
        )
    return error.exit_code


def _connect_client(out: Output) -> None:
    # Imported here, not at the top: urllib's import (~20 ms) is wasted on
    # --version, help and completion.
    from dotmage.client import http, state

    http.waiting = lambda label: Spinner(out, label, delay=SLOW_SERVER)
    state.notify = out.warn


def _fail(out: Output, message: str, code: int) -> int:
    print(f"dmage: {message}", file=sys.stderr, flush=True)
    if out.json_mode:
        out.document({"error": {"message": message, "exit_code": code}})
    return code
