"""Commands that read or edit single secrets: diff, set, unset, get."""

from dotmage import dotenv, errors
from dotmage.cli.cmd_secrets import fetch, open_vault, read_env_file, target, values_of
from dotmage.client.session import Session

MASK = "••••••"


def diff(args, context) -> int:
    app, env = target(args)
    local, _ = read_env_file(args.file, context.out)
    remote = open_vault(context).pull(app, env)
    try:
        result = dotenv.compare(dotenv.decode(remote.data), dotenv.decode(local))
    except dotenv.DotenvError as error:
        raise errors.DmageError(str(error)) from None
    old, new = values_of(remote.data, "remote"), values_of(local, args.file)

    document = {
        "app": app,
        "env": env,
        "revision": remote.number,
        "added": result.added,
        "removed": result.removed,
        "changed": result.changed,
        "only_formatting": result.only_formatting,
        "identical": remote.data == local,
    }
    if args.show_values:
        document["values"] = {
            key: {"remote": old.get(key), "local": new.get(key)}
            for key in result.added + result.removed + result.changed
        }
    context.out.document(document)
    _print_diff(context.out, args, remote.number, result, old, new, document)
    return 0


def _print_diff(out, args, number, result, old, new, document) -> None:
    def shown(value):
        return value if args.show_values else MASK

    if document["identical"]:
        out.data(f"{args.file} is identical to revision {number}.")
        return
    if result.only_formatting:
        out.data(
            f"Same values as revision {number}; only formatting differs "
            "(comments, order, quoting or line endings)."
        )
        return
    out.data(f"{args.file} against revision {number}:")
    for key in result.added:
        out.data(f"  + {key}={shown(new[key])}")
    for key in result.removed:
        out.data(f"  - {key}={shown(old[key])}")
    for key in result.changed:
        out.data(f"  ~ {key}: {shown(old[key])} -> {shown(new[key])}")


def set_(args, context) -> int:
    updates = {}
    for assignment in args.assignments:
        key, sign, value = assignment.partition("=")
        if not sign or not key:
            raise errors.DmageError(f"'{key or assignment[:40]}': write KEY=VALUE")
        updates[key] = value
    return _edit(args, context, lambda text: dotenv.set_values(text, updates), updates)


def unset(args, context) -> int:
    return _edit(args, context, lambda text: dotenv.unset_keys(text, args.keys), {})


def _edit(args, context, change, updates) -> int:
    """Pull the latest text, change it in place, push it on that base."""
    app, env = target(args)
    store = open_vault(context)
    latest = store.pull(app, env)
    try:
        text = change(latest.data.decode("utf-8"))
    except dotenv.DotenvError as error:
        raise errors.DmageError(str(error)) from None
    if text.encode("utf-8") == latest.data:
        context.out.say(f"Nothing to change: revision {latest.number} stays latest.")
        context.out.document({"app": app, "env": env, "revision": latest.number})
        return 0
    number = store.push(app, env, text.encode("utf-8"), base=latest.number)
    context.out.say(f"Pushed revision {number} of {app} ({env}).")
    context.out.document({"app": app, "env": env, "revision": number})
    return 0


def get(args, context) -> int:
    revision = fetch(args, context)
    values = values_of(revision.data, f"revision {revision.number}")
    if args.key not in values:
        raise errors.NotFound(
            f"{args.name} ({revision.env}) has no key '{args.key}' in revision "
            f"{revision.number}"
        )
    context.out.document({"key": args.key, "value": values[args.key]})
    if not context.out.json_mode:
        context.out.raw((values[args.key] + "\n").encode("utf-8"))
    return 0


HANDLERS = {"diff": diff, "set": set_, "unset": unset, "get": get}
__all__ = ["HANDLERS", "Session"]
