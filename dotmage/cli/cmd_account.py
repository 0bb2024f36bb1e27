"""Commands about this device and the account: auth, lock, devices, tokens."""

from dotmage import errors
from dotmage.cli.cmd_secrets import moment, open_vault
from dotmage.client import auth as signing
from dotmage.client import vault
from dotmage.client.session import Session
from dotmage.durations import format_duration

LOGIN_CODE_TTL = 300


def auth(args, context) -> int:
    ttl = args.ttl  # parsed and capped by the parser
    server = args.server or Session().config.get("server")
    if not server:
        raise errors.DmageError(
            "first time on this device: give the server, as in "
            "dmage auth --server http://127.0.0.1:9470"
        )
    if args.enroll:
        result = signing.enroll(server, args.enroll, ttl, args.name)
    else:
        result = signing.sign_in(server, context.prompter, ttl, args.name)

    first = "Account created. " if result["created_account"] else ""
    context.out.say(
        f"{first}Device registered. Key cached (expires in {format_duration(ttl)})."
    )
    context.out.say(f"  The key is kept in {result['key_store_description']}.")
    replaced = result["replaced_device_id"]
    if replaced:
        context.out.say(f"  It replaces this machine's earlier device {replaced}.")
    context.out.document(result)
    return 0


def lock(args, context) -> int:
    had_key = signing.lock()
    context.out.say(
        "Locked: the cached key is gone; the next command asks for the password."
        if had_key
        else "Already locked: no key was cached."
    )
    context.out.document({"locked": True, "had_key": had_key})
    return 0


def logout(args, context) -> int:
    device_id = Session().config.get("device_id")
    result = signing.logout()
    if result["revoked_on_server"]:
        context.out.say("Logged out: this device is revoked and its local data gone.")
    elif device_id:
        context.out.warn(
            f"local data removed, but the server was not told ({result['reason']}): "
            f"revoke this device from another one with dmage devices revoke "
            f"{device_id}"
        )
    else:
        context.out.warn(
            f"local data removed; no server was told ({result['reason']}). If this "
            "machine had a device, revoke it from another one (dmage devices "
            "lists them)"
        )
    context.out.document(result)
    return 0


def clean(args, context) -> int:
    result = signing.clean()
    context.out.say(
        f"Removed all dotMage data from this machine ({result['removed']})."
    )
    context.out.document(result)
    return 0


def passwd(args, context) -> int:
    signing.change_password(context.prompter)
    context.out.say(
        "Master password changed. Other devices keep working; new ones use the new "
        "password."
    )
    context.out.document({"changed": True})
    return 0


def devices(args, context) -> int:
    current = Session()
    if getattr(args, "action", None) == "revoke":
        if args.device_id == current.config.get("device_id"):
            raise errors.DmageError(
                "that is this device: run dmage logout to revoke it and remove "
                "its local data"
            )
        listing = current.call("GET", "/devices")["devices"]
        return _revoke(context, current, "device", args.device_id, listing)
    listing = current.call("GET", "/devices")["devices"]
    context.out.document({"devices": listing})
    context.out.data(f"  {'ID':<16}  {'NAME':<20}  {'CREATED':<20}  LAST SEEN")
    for device in listing:
        mark = " (this device)" if device["current"] else ""
        revoked = " revoked" if device["revoked_at"] else ""
        context.out.data(
            f"  {device['id']:<16}  {device['name'][:20]:<20}  "
            f"{moment(device['created_at']):<20}  "
            f"{moment(device['last_seen_at'])}{revoked}{mark}"
        )
    return 0


def _revoke(context, current: Session, noun: str, wanted: str, listing) -> int:
    """Revoke a device or token; one revoked already is said so, and left."""
    found = next((item for item in listing if item["id"] == wanted), None)
    if found is not None and (
        found.get("revoked_at") or found.get("state") == "revoked"
    ):
        context.out.say(f"{noun.capitalize()} {wanted} was already revoked.")
        context.out.document({"revoked": wanted, "already": True})
        return 0
    result = current.call("DELETE", f"/{noun}s/{wanted}")
    context.out.say(f"Revoked {noun} {result['revoked']}.")
    context.out.document({**result, "already": False})
    return 0


def gen_token(args, context) -> int:
    ttl = args.ttl
    created = signing.make_enrollment_token("enroll", ttl, args.name, context.prompter)
    context.out.document(created)
    context.out.say(
        f"  Enrollment token (one use, expires in {format_duration(ttl)}):\n"
    )
    context.out.product(created["token"])
    context.out.say("\n  On the new device: dmage auth --server URL --enroll TOKEN")
    return 0


def token(args, context) -> int:
    created = signing.make_enrollment_token(
        "login", LOGIN_CODE_TTL, "web admin login", context.prompter
    )
    context.out.document(created)
    context.out.say("  Web admin login token (one-time, 5 min):\n")
    context.out.product(created["token"])
    context.out.say("\n  Paste this token in the web admin login page.")
    return 0


def gen_ci_token(args, context) -> int:
    if not args.env:
        raise errors.DmageError(
            "gen-ci-token needs --env ENV: a CI token reads one env"
        )
    ttl = args.ttl
    created = vault.make_ci_token(
        open_vault(context), args.app, args.env, ttl, args.name
    )
    context.out.document(created)
    context.out.say(f"  CI token for {args.app}/{args.env}:\n")
    context.out.product(created["token"])
    context.out.say("\n  Store it as a CI secret (e.g. DOTMAGE_CI_TOKEN).")
    return 0


def tokens(args, context) -> int:
    current = Session()
    if getattr(args, "action", None) == "revoke":
        listing = current.call("GET", "/tokens")["tokens"]
        return _revoke(context, current, "token", args.token_id, listing)
    listing = current.call("GET", "/tokens")["tokens"]
    context.out.document({"tokens": listing})
    context.out.data(
        f"  {'ID':<16}  {'KIND':<6}  {'NAME':<18}  {'SCOPE':<20}  "
        f"{'EXPIRES':<20}  {'LAST USED':<20}  STATE"
    )
    for item in listing:
        scope = f"{item['app']}/{item['env']}" if item["app"] else "account"
        used = moment(item["last_used_at"]) if item["last_used_at"] else "never"
        context.out.data(
            f"  {item['id']:<16}  {item['kind']:<6}  {(item['name'] or '')[:18]:<18}  "
            f"{scope[:20]:<20}  {moment(item['expires_at']):<20}  {used:<20}  "
            f"{item['state']}"
        )
    return 0


def audit(args, context) -> int:
    entries = Session().call("GET", "/audit", app=args.app, limit=args.limit)["entries"]
    context.out.document({"entries": entries})
    for item in entries:
        where = f"{item['app']}/{item['env'] or '-'}" if item["app"] else "-"
        context.out.data(
            f"  {moment(item['at'])}  {item['actor']:<24}  {item['action']:<20}  "
            f"{where:<24}  {item['outcome']:<12}  {item['address']}"
        )
    return 0


HANDLERS = {
    "auth": auth,
    "lock": lock,
    "logout": logout,
    "clean": clean,
    "passwd": passwd,
    "devices": devices,
    "gen-token": gen_token,
    "token": token,
    "gen-ci-token": gen_ci_token,
    "tokens": tokens,
    "audit": audit,
}
