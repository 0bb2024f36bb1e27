"""Commands about this device and the account: auth, lock, devices, tokens."""

from dotmage import errors
from dotmage.cli.cmd_secrets import moment, open_vault
from dotmage.client import auth as signing
from dotmage.client import vault
from dotmage.client.session import Session
from dotmage.durations import format_duration, parse_duration

LOGIN_CODE_TTL = 300


def _ttl(text: str, flag: str = "--ttl") -> int:
    try:
        return parse_duration(text)
    except ValueError as error:
        raise errors.DmageError(f"{flag}: {error}") from None


def auth(args, context) -> int:
    ttl = _ttl(args.ttl)
    server = args.server or Session().config.get("server")
    if not server:
        raise errors.DmageError(
            "first time on this device: give the server, as in "
            "dmage auth --server http://127.0.0.1:9470"
        )
    if args.enroll:
        result = signing.enroll(server, args.enroll, ttl)
    else:
        result = signing.sign_in(server, context.prompter, ttl)

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
    device_id = Session().config.get("device_id") or "ID"
    result = signing.logout()
    if result["revoked_on_server"]:
        context.out.say("Logged out: this device is revoked and its local data gone.")
    else:
        context.out.warn(
            f"local data removed, but the server was not told ({result['reason']}): "
            f"revoke this device from another one with dmage devices revoke "
            f"{device_id}"
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
        result = current.call("DELETE", f"/devices/{args.device_id}")
        context.out.say(f"Revoked device {result['revoked']}.")
        context.out.document(result)
        return 0
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


def gen_token(args, context) -> int:
    ttl = _ttl(args.ttl)
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
    ttl = _ttl(args.ttl)
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
        result = current.call("DELETE", f"/tokens/{args.token_id}")
        context.out.say(f"Revoked token {result['revoked']}.")
        context.out.document(result)
        return 0
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
