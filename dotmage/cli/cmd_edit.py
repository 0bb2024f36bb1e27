"""Commands that read or edit single secrets: diff, set, unset, get."""

from dotmage import dotenv, errors
from dotmage.cli.cmd_secrets import fetch, open_vault, read_env_file, target, values_of

MASK = "******"
KEY_RULE = "use letters, digits, _, . and -"


# -- diff ---------------------------------------------------------------------------


def diff(args, context) -> int:
    """Compare values by key; exit 0 whatever differs, like git diff."""
    app, env = target(args)
    local, _ = read_env_file(args.file, context.out)
    number, remote = _latest(open_vault(context), app, env)

    old_text = _text(remote, f"revision {number}")
    new_text = _text(local.data, args.file)
    document = {"app": app, "env": env, "revision": number, "file": args.file}
    document.update(_differences(old_text, new_text))
    old, new = dotenv.comparable(old_text), dotenv.comparable(new_text)
    if args.show_values:
        document["values"] = {
            key: {"remote": old.get(key), "local": new.get(key)}
            for key in document["added"] + document["removed"] + document["changed"]
        }

    context.out.document(document)
    _print_diff(context.out, document, old, new, args.show_values)
    return 0


def _differences(old_text: str, new_text: str) -> dict:
    result = dotenv.compare(old_text, new_text)
    formatting = []
    if result.only_formatting:
        formatting = dotenv.formatting_changes(old_text, new_text)
    return {
        "identical": old_text == new_text,
        "only_formatting": result.only_formatting,
        "formatting": formatting,
        "added": result.added,
        "removed": result.removed,
        "changed": result.changed,
    }


def _print_diff(out, document, old, new, show_values) -> None:
    def shown(value):
        # Quoted as in a .env file, so a line break cannot split the listing.
        return dotenv.quote(value) if show_values else MASK

    where = f"revision {document['revision']} of {document['app']} ({document['env']})"
    if document["identical"]:
        out.data(f"{document['file']} is identical to {where}.")
        return
    if document["only_formatting"]:
        changes = ", ".join(document["formatting"])
        out.data(f"Same values as {where}; only the formatting differs: {changes}.")
        return
    out.data(f"{document['file']} against {where}:")
    for key in document["added"]:
        out.data(f"  + {key}={shown(new[key])}")
    for key in document["removed"]:
        out.data(f"  - {key}={shown(old[key])}")
    for key in document["changed"]:
        out.data(f"  ~ {key}: {shown(old[key])} -> {shown(new[key])}")


# -- set, unset ---------------------------------------------------------------------


def set_(args, context) -> int:
    updates = _assignments(args.assignments)

    def change(text: str, values: dict) -> tuple[str, list]:
        # An unchanged value is left alone, so its line keeps its quoting.
        fresh = {key: v for key, v in updates.items() if values.get(key) != v}
        return dotenv.set_values(text, fresh), list(fresh)

    return _edit(args, context, change, "Set")


def unset(args, context) -> int:
    keys = [_checked_key(key) for key in args.keys]

    def change(text: str, values: dict) -> tuple[str, list]:
        present = [key for key in dict.fromkeys(keys) if key in values]
        for key in keys:
            if key not in values:
                context.out.warn(f"{args.name} has no key {key}; nothing to unset")
        return dotenv.unset_keys(text, present), present

    return _edit(args, context, change, "Unset")


def _edit(args, context, change, verb: str) -> int:
    """Change the latest text in place and push it on that base."""
    app, env = target(args)
    store = open_vault(context)
    number, data = _latest(store, app, env)
    text = _text(data, f"revision {number}")
    new_text, keys = change(text, dotenv.comparable(text))

    if not keys:
        context.out.say(f"Nothing to change: revision {number} stays the latest.")
        context.out.document({"app": app, "env": env, "revision": number, "keys": []})
        return 0
    pushed = _push_edit(store, app, env, new_text, number)
    names = ", ".join(keys)
    context.out.say(f"{verb} {names} in {app} ({env}): pushed revision {pushed}.")
    context.out.document({"app": app, "env": env, "revision": pushed, "keys": keys})
    return 0


def _push_edit(store, app: str, env: str, text: str, base: int) -> int:
    try:
        return store.push_edit(app, env, text.encode("utf-8"), base)
    except errors.Conflict:
        raise errors.Conflict(
            f"{app} ({env}) got a new revision while this edit was made; "
            "nothing was pushed: run the command again"
        ) from None


def _assignments(words: list) -> dict:
    updates = {}
    for position, word in enumerate(words, 1):
        key, sign, value = word.partition("=")
        # The word is not echoed: without its "=" it may be a bare secret.
        if not sign:
            raise errors.DmageError(f"argument {position} has no '=': write KEY=VALUE")
        key = _checked_key(key)
        if not _is_text(value):
            raise errors.DmageError(f"the value of {key} is not valid UTF-8 text")
        updates[key] = value
    return updates


# -- get ----------------------------------------------------------------------------


def get(args, context) -> int:
    key = _checked_key(args.key)
    revision, _ = fetch(args, context)
    values = values_of(revision.data, f"revision {revision.number}")
    if key not in values:
        raise errors.NotFound(
            f"{args.name} ({revision.env}) has no key {key} in revision "
            f"{revision.number}"
        )

    context.out.document(
        {
            "app": revision.app,
            "env": revision.env,
            "revision": revision.number,
            "key": key,
            "value": values[key],
        }
    )
    if not context.out.json_mode:
        context.out.raw((values[key] + "\n").encode("utf-8"))
    return 0


# -- shared steps -------------------------------------------------------------------


def _latest(store, app: str, env: str) -> tuple[int, bytes]:
    """The latest revision's number and bytes; an env without one is empty."""
    _, info = store.env_key(app, env)
    if info["latest_revision"] == 0:
        return 0, b""
    revision = store.pull(app, env)
    return revision.number, revision.data


def _text(data: bytes, where: str) -> str:
    """The text of UTF-8 bytes, byte order mark included, once it parses."""
    try:
        dotenv.parse(dotenv.decode(data))
    except dotenv.DotenvError as error:
        raise errors.DmageError(f"{where}: {error}") from None
    return data.decode("utf-8")


def _checked_key(key: str) -> str:
    if not dotenv.is_key(key):
        shown = key if len(key) <= 40 else key[:40] + "..."
        raise errors.DmageError(f"invalid key {shown!r}: {KEY_RULE}")
    return key


def _is_text(value: str) -> bool:
    # POSIX argv that is not UTF-8 arrives as lone surrogates.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


HANDLERS = {"diff": diff, "set": set_, "unset": unset, "get": get}
