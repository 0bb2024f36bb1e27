"""Commands about apps and envs: apps, env, history, rollback, status."""

from dotmage import errors
from dotmage.cli.cmd_secrets import day, moment, open_vault, target
from dotmage.client import state, vault
from dotmage.client.session import Session
from dotmage.names import app_name_problem, env_name_problem


def apps(args, context) -> int:
    listing = open_vault(context).apps()
    context.out.document({"apps": listing})
    if not listing:
        context.out.say("No apps yet: create one with dmage init NAME.")
    for line in folder_lines(listing):
        context.out.data(line)
    return 0


def folder_lines(listing: list) -> list[str]:
    """Apps grouped by folder, root-level apps first, as the reference shows."""
    folders: dict[str, list] = {}
    for app in listing:
        folder, _, short = app["name"].rpartition("/")
        folders.setdefault(folder, []).append((short, app))
    lines = []
    for folder in sorted(folders):
        indent = "    " if folder else "  "
        if folder:
            lines.extend([""] if lines else [])
            lines.append(f"  {folder}/")
        for short, app in folders[folder]:
            count = app["envs"]
            lines.append(
                f"{indent}{short:<20} {count:<3} envs   {day(app['updated_at'])}"
            )
    return lines


def env(args, context) -> int:
    action = getattr(args, "action", None)
    if action is None:
        return _show_env(args, context)
    return {"use": _use_env, "list": _list_envs, "new": _new_env, "rm": _rm_env}[
        action
    ](args, context)


def _show_env(args, context) -> int:
    name, source = Session().active_env_source(args.env)
    context.out.document({"env": name, "source": source})
    context.out.data(f"Active env: {name} (from {source})")
    return 0


def _use_env(args, context) -> int:
    _check(env_name_problem(args.name))
    Session().save_config(active_env=args.name)
    context.out.say(f"Active env is now '{args.name}'.")
    context.out.document({"env": args.name})
    return 0


def _list_envs(args, context) -> int:
    _check(app_name_problem(args.app))
    envs = open_vault(context).envs(args.app)
    context.out.document({"app": args.app, "envs": envs})
    for item in envs:
        context.out.data(
            f"  {item['name']:<16} rev {item['latest_revision']:<5} "
            f"{day(item['updated_at'])}"
        )
    return 0


def _new_env(args, context) -> int:
    _check(app_name_problem(args.app) or env_name_problem(args.name))
    store = open_vault(context)
    if args.copy_from:
        number = store.copy_env(args.app, args.copy_from, args.name)
        context.out.say(
            f"Created env '{args.name}' of {args.app} from '{args.copy_from}' "
            f"(revision {number}, under its own key)."
        )
    else:
        store.create_env(args.app, args.name)
        context.out.say(f"Created env '{args.name}' of {args.app}.")
    context.out.document({"app": args.app, "env": args.name})
    return 0


def _rm_env(args, context) -> int:
    _check(app_name_problem(args.app) or env_name_problem(args.name))
    question = f"Delete env '{args.name}' of {args.app} and all its revisions?"
    if not args.yes and not context.prompter.confirm(question):
        raise errors.DmageError(
            f"not deleted: confirm at a terminal, or pass --yes to delete '{args.name}'"
        )
    open_vault(context).delete_env(args.app, args.name)
    context.out.say(f"Deleted env '{args.name}' of {args.app}.")
    context.out.document({"app": args.app, "deleted": args.name})
    return 0


def history(args, context) -> int:
    app, env = target(args)
    page = open_vault(context).history(app, env, args.limit, args.before)
    context.out.document(page)
    context.out.data(f"  {'REV':>5}  {'TIME':<20}  {'DEVICE':<20}  KIND")
    for item in page["revisions"]:
        kind = item["kind"]
        if item.get("source_revision"):
            kind += f" of {item['source_revision']}"
        context.out.data(
            f"  {item['number']:>5}  {moment(item['created_at']):<20}  "
            f"{(item['device'] or '-')[:20]:<20}  {kind}"
        )
    if page.get("next_before"):
        context.out.say(
            f"  (older: dmage history {app} --before {page['next_before']})"
        )
    return 0


def rollback(args, context) -> int:
    app, env = target(args)
    result = open_vault(context).rollback(app, env, args.rev)
    context.out.say(
        f"Rolled {app} ({env}) back to revision {args.rev}: it is now revision "
        f"{result['number']}."
    )
    context.out.document(result)
    return 0


def status(args, context) -> int:
    current = Session()
    server = current.server
    if args.forget:
        state.forget_sync(server, args.forget)
        context.out.say(f"Forgot what this device saw of {args.forget}.")
        context.out.document({"server": server, "forgot": args.forget})
        return 0
    entries = state.all_sync_entries(server)
    if args.env:
        entries = [item for item in entries if item[1] == args.env]
    rows = []
    for app, env, entry in entries:
        if entry["files"]:
            rows.extend(_status_rows(current, server, app, env, entry))
    context.out.document({"server": server, "envs": rows})
    if not rows:
        context.out.say("Nothing pulled or pushed from this device yet.")
    for row in rows:
        _print_status(context.out, row)
    return 0


def _print_status(out, row: dict) -> None:
    server = row["server"] if row["server"] is not None else "-"
    out.data(
        f"  {row['app']:<24} {row['env']:<10} local {row['local']:<4} "
        f"server {server:<4} {row['state']:<12} {row['file']}"
    )
    if row["state"] == "server rolled back":
        out.warn(
            f"the server says {row['app']} ({row['env']}) is at revision "
            f"{row['server']}, but this device saw revision {row['seen']}: it lost "
            "data or was restored from a backup. If that was on purpose, run "
            f"dmage status --forget {row['app']}"
        )


def _status_rows(current: Session, server: str, app: str, env: str, entry) -> list:
    """One row per local file that holds a revision of this env."""
    try:
        latest = current.call("GET", vault.env_path(app, env))["latest_revision"]
    except errors.NotFound:
        latest = None
    seen = entry["seen"]
    if latest is not None and latest > seen:
        state.best_effort(state.record_seen, server, app, env, latest)
    rows = []
    for path, record in sorted(entry["files"].items()):
        edited = state.file_changed(record, path)
        local = record["revision"]
        rows.append(
            {
                "app": app,
                "env": env,
                "file": path,
                "local": local,
                "server": latest,
                "seen": max(seen, latest or 0),
                "edited": bool(edited),
                "state": _sync_state(local, seen, latest, edited),
            }
        )
    return rows


def _sync_state(local: int, seen: int, latest: int | None, edited) -> str:
    """'ahead' means the local file holds edits not pushed yet; edited is
    None when the file is gone."""
    if latest is None:
        return "gone from the server"
    if latest < seen:
        return "server rolled back"
    if edited is None:
        return "file missing"
    if local < latest:
        return "diverged" if edited else "outdated"
    return "ahead" if edited else "up to date"


def _check(problem) -> None:
    if problem:
        raise errors.DmageError(problem)


HANDLERS = {
    "apps": apps,
    "env": env,
    "history": history,
    "rollback": rollback,
    "status": status,
}
