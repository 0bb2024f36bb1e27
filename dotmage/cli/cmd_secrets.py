"""Commands on secrets: init, push, pull, exec, diff, set, get, history, apps."""

import os
import sys
from datetime import datetime, timezone
from pathlib import Path

from dotmage import dotenv, errors
from dotmage.client import state, vault
from dotmage.client.session import Session
from dotmage.names import app_name_problem, env_name_problem

COMMAND_NOT_FOUND = 127
COMMAND_NOT_EXECUTABLE = 126
# dmage's own credentials: never handed to the command exec runs (unless the
# env's secrets define that name themselves).
CREDENTIAL_VARIABLES = (
    "DOTMAGE_MASTER_PASSWORD",
    "DOTMAGE_NEW_MASTER_PASSWORD",
    "DOTMAGE_BOOTSTRAP_SECRET",
    "DOTMAGE_CI_TOKEN",
)


# -- shared steps ----------------------------------------------------------------


def open_vault(context) -> vault.Vault:
    return vault.Vault(Session(), context.prompter.password_reader())


def target(args, current: Session | None = None) -> tuple[str, str]:
    """The (app, env) a command acts on, both validated."""
    problem = app_name_problem(args.name)
    if problem:
        raise errors.DmageError(problem)
    env = (current or Session()).active_env(getattr(args, "env", None))
    problem = env_name_problem(env)
    if problem:
        raise errors.DmageError(problem)
    return args.name, env


def read_env_file(path: str, out) -> tuple[vault.LocalFile, dict]:
    """The file as it will be stored, and its parsed values."""
    try:
        raw = data = Path(path).read_bytes()
    except FileNotFoundError:
        raise errors.DmageError(
            f"{path} not found: give the file with --file PATH"
        ) from None
    except OSError as error:
        raise errors.DmageError(f"cannot read {path}: {error.strerror}") from None
    try:
        text = dotenv.decode(data)
        values = dotenv.to_dict(dotenv.parse(text))
    except dotenv.DotenvError as error:
        raise errors.DmageError(f"{path}: {error}") from None
    if not _is_utf8(data):
        out.warn(f"{path} is UTF-16; it is stored and pulled back as UTF-8")
        data = text.encode("utf-8")
    return vault.LocalFile(path, Path(path), raw, data), values


def values_of(data: bytes, where: str) -> dict:
    try:
        return dotenv.parse_bytes(data)
    except dotenv.DotenvError as error:
        raise errors.DmageError(f"{where}: {error}") from None


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _keys(count: int) -> str:
    return f"{count} key" if count == 1 else f"{count} keys"


def day(stamp: int) -> str:
    return datetime.fromtimestamp(stamp, timezone.utc).strftime("%Y-%m-%d")


def moment(stamp: int) -> str:
    return datetime.fromtimestamp(stamp, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


# -- init, push, pull ------------------------------------------------------------


def init(args, context) -> int:
    app, env = target(args)
    local, values = read_env_file(args.file, context.out)
    number = open_vault(context).create_app(app, env, local)
    context.out.say(
        f"Created app '{app}'. Pushed revision {number} from {args.file} "
        f"({_keys(len(values))})."
    )
    context.out.document(
        {"app": app, "env": env, "revision": number, "keys": len(values)}
    )
    return 0


def push(args, context) -> int:
    app, env = target(args)
    local, values = read_env_file(args.file, context.out)
    number, pushed = open_vault(context).push_file(app, env, local, args.force)
    if pushed:
        context.out.say(
            f"Pushed revision {number} of {app} ({env}) from {args.file} "
            f"({_keys(len(values))})."
        )
    else:
        context.out.say(f"Nothing to push: {args.file} matches revision {number}.")
    context.out.document(
        {
            "app": app,
            "env": env,
            "revision": number,
            "keys": len(values),
            "pushed": pushed,
        }
    )
    return 0


def fetch(args, context, number=None) -> tuple[vault.Revision, vault.Vault | None]:
    """A decrypted revision, and the vault it came through (None when it came
    through DOTMAGE_CI_TOKEN, with no device state)."""
    token = vault.ci_token_from_environment()
    if token is not None and not state.read_json(state.CREDENTIALS):
        env = getattr(args, "env", None) or token.env
        return vault.ci_pull(token, args.name, env, number), None
    app, env = target(args)
    store = open_vault(context)
    return store.pull(app, env, number), store


def pull(args, context) -> int:
    exported = args.format != "dotenv"
    revision, store = fetch(args, context, args.rev)
    values = values_of(revision.data, f"revision {revision.number}")
    data = _formatted(revision.data, values, args.format)
    # JSON and shell exports are for pipes and eval; only --output writes them.
    if args.stdout or (exported and not args.output):
        _print_pulled(context.out, revision, values, data)
        return 0
    output = args.output or ".env"
    written = write_pulled(Path(output), data, args, context, revision.number)
    # The file now holds this revision (an older one with --rev): a push of it
    # is based on that. Exports are not .env files and get no record.
    if store is not None and not exported:
        store.remember_pull(revision, Path(output), data)
    arrow = "→" if _can_print("→") else "->"
    if written:
        context.out.say(f"Decrypted {_keys(len(values))} {arrow} {output}")
    else:
        context.out.say(f"{output} already matches revision {revision.number}.")
    context.out.document(
        {
            "app": revision.app,
            "env": revision.env,
            "revision": revision.number,
            "keys": len(values),
            "output": output,
            "written": written,
        }
    )
    return 0


def _print_pulled(out, revision: vault.Revision, values: dict, data: bytes) -> None:
    """The file on stdout; under --json, one document holding it and its values."""
    if not out.json_mode:
        out.raw(data)
        return
    out.document(
        {
            "app": revision.app,
            "env": revision.env,
            "revision": revision.number,
            "keys": len(values),
            "values": values,
            "text": revision.data.decode("utf-8"),
        }
    )


def _formatted(data: bytes, values: dict, form: str) -> bytes:
    if form == "json":
        return dotenv.to_json(values).encode("utf-8")
    if form == "shell":
        try:
            return dotenv.to_shell(values).encode("utf-8")
        except dotenv.DotenvError as error:
            raise errors.DmageError(f"cannot write shell format: {error}") from None
    return data


def write_pulled(path: Path, data: bytes, args, context, number: int) -> bool:
    """Write atomically with mode 0600; never replace a different file silently."""
    if path.is_dir():
        raise errors.DmageError(f"{path} is a directory")
    if not path.parent.is_dir():
        raise errors.DmageError(
            f"{path.parent} does not exist: create it first, or write elsewhere "
            "with --output PATH"
        )
    if path.exists():
        current = path.read_bytes()
        if current == data:
            return False
        if not args.force and not context.prompter.confirm(
            f"{path} differs from revision {number}. Replace it?"
        ):
            raise errors.DmageError(
                f"{path} differs from revision {number}: use --force to replace it "
                f"(dmage diff {args.name} shows how)"
            )
    try:
        state.write_private(path, data)
    except OSError as error:
        raise errors.DmageError(f"cannot write {path}: {error.strerror}") from None
    return True


def _can_print(text: str) -> bool:
    try:
        text.encode(sys.stderr.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


# -- exec --------------------------------------------------------------------------


def exec_(args, context) -> int:
    revision, _ = fetch(args, context)
    secrets = values_of(revision.data, f"revision {revision.number}")
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in CREDENTIAL_VARIABLES
    }
    for key, value in secrets.items():
        if args.no_override and key in environment:
            continue
        if "\0" in value:
            raise errors.DmageError(
                f"the value of {key} holds a NUL character, which no environment "
                "variable can carry"
            )
        environment[key] = value
    return run_command(args.argv, environment)


def run_command(argv: list, environment: dict) -> int:
    """POSIX: become the command. Windows: run it, pass Ctrl+C, return its code."""
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        if os.name == "posix":
            os.execvpe(argv[0], argv, environment)
        return _run_windows(argv, environment)
    except FileNotFoundError:
        print(f"dmage: command not found: {argv[0]}", file=sys.stderr)
        return COMMAND_NOT_FOUND
    except PermissionError:
        print(f"dmage: permission denied: {argv[0]}", file=sys.stderr)
        return COMMAND_NOT_EXECUTABLE


def _run_windows(argv: list, environment: dict) -> int:
    import shutil
    import signal
    import subprocess

    # CreateProcess finds only .exe files on PATH; `npm` is npm.cmd, so the
    # command is looked up with PATHEXT first, as a shell would.
    found = shutil.which(argv[0], path=environment.get("PATH"))
    if found is None:
        raise FileNotFoundError(argv[0])
    # Ctrl+C reaches every process on the console: the child gets its own,
    # and dmage waits for it instead of dying first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return subprocess.call([found, *argv[1:]], env=environment)


HANDLERS = {
    "init": init,
    "push": push,
    "pull": pull,
    "exec": exec_,
}
