"""Minting and checking credentials; only hashes of secrets are stored."""

import secrets
from dataclasses import dataclass

from dotmage import crypto
from dotmage.server.db import Device, Token, now

# Bearer strings are '<prefix><id>.<secret>': the id finds the row, the secret
# is compared in constant time with the stored SHA-256.
PREFIXES = {"access": "dat_", "refresh": "drt_", "ci": "dci_", "session": "dss_"}
ONE_TIME_KINDS = ("enroll", "login")
NOUNS = {
    "access": "access token",
    "refresh": "refresh token",
    "ci": "CI token",
    "session": "web session",
    "enroll": "enrollment token",
    "login": "web admin login code",
}
# The web admin's session: an HttpOnly cookie holding a "session" bearer.
SESSION_COOKIE = "dmage_session"


class TokenRejected(Exception):
    """The presented credential is unknown, expired, revoked or reused."""

    def __init__(self, reason: str = "invalid or expired token"):
        super().__init__(reason)
        self.reason = reason


@dataclass
class Principal:
    """Who is calling: a device, a web session, or a CI token."""

    kind: str
    token: Token
    device: Device | None = None

    @property
    def actor(self) -> str:
        if self.device is not None:
            return f"device:{self.device.id}"
        return f"{self.kind}:{self.token.id}"


def new_id() -> str:
    return secrets.token_hex(8)


def is_token_id(text: object) -> bool:
    """16 lowercase hex characters, as new_id() and the clients make them."""
    return (
        isinstance(text, str)
        and len(text) == 16
        and all(ch in "0123456789abcdef" for ch in text)
    )


def mint(kind: str, ttl: int, **fields) -> str:
    """Store a new credential and return its bearer string (shown once)."""
    token_id, secret = new_id(), secrets.token_urlsafe(32)
    Token.create(
        id=token_id,
        kind=kind,
        secret_hash=crypto.sha256_hex(secret.encode()),
        expires_at=now() + ttl,
        **fields,
    )
    return f"{PREFIXES[kind]}{token_id}.{secret}"


# A refresh whose answer was lost (a dropped connection, a server killed
# after its commit) leaves the device holding a spent refresh token. For this
# long after its first use it may be spent once more, if the pair it bought
# is still unused; otherwise a spent token is theft and revokes the device.
REFRESH_RETRY_GRACE = 60


def issue_device_tokens(device: Device, settings, parent: Token | None = None) -> dict:
    lineage = f"refresh:{parent.id}" if parent is not None else None
    return {
        "device_id": device.id,
        "access_token": mint(
            "access", settings.token_ttl, device=device, created_by=lineage
        ),
        "refresh_token": mint(
            "refresh", settings.refresh_ttl, device=device, created_by=lineage
        ),
        "expires_in": settings.token_ttl,
    }


def claim_retry(spent: Token) -> bool:
    """Allow one more use of a spent refresh token whose answer was lost.

    Only within REFRESH_RETRY_GRACE of its first use, and only if the refresh
    token it bought was never used: that one is marked used now, so a thief
    who retried first is caught when the real device presents it later.
    """
    if spent.used_at is None or now() - spent.used_at > REFRESH_RETRY_GRACE:
        return False
    # Once only: the retry stamps last_used_at, so replaying the spent token
    # again (each retry buys a fresh unused pair) is theft, not a lost answer.
    first_retry = (
        Token.update(last_used_at=now())
        .where((Token.id == spent.id) & Token.last_used_at.is_null())
        .execute()
    )
    if not first_retry:
        return False
    unused_children = (
        Token.update(used_at=now())
        .where(
            (Token.created_by == f"refresh:{spent.id}")
            & (Token.kind == "refresh")
            & Token.used_at.is_null()
            & Token.revoked_at.is_null()
        )
        .execute()
    )
    return unused_children > 0


def check(bearer: str, kinds: tuple) -> Token:
    """The live Token row a bearer string names, or TokenRejected."""
    token = _row_for(bearer, kinds)
    # Past the secret check, saying why is safe: the caller holds the token.
    if token.device_id and token.device.revoked_at is not None:
        raise TokenRejected("this device was revoked: run dmage auth")
    if token.revoked_at is not None:
        raise TokenRejected(f"this {NOUNS[token.kind]} was revoked")
    if token.expires_at <= now():
        raise TokenRejected(f"this {NOUNS[token.kind]} has expired")
    return token


def check_secret(token: Token, secret_or_proof: bytes) -> bool:
    return crypto.same(crypto.sha256_hex(secret_or_proof), token.secret_hash)


def retire_access_tokens(device: Device, keep: str) -> None:
    """After a refresh only the newest access token of the device works."""
    keep_id = keep[len(PREFIXES["access"]) :].partition(".")[0]
    (
        Token.update(revoked_at=now())
        .where(
            (Token.device == device.id)
            & (Token.kind == "access")
            & (Token.id != keep_id)
            & Token.revoked_at.is_null()
        )
        .execute()
    )


def revoke_device(device: Device) -> None:
    stamp = now()
    Device.update(revoked_at=stamp).where(Device.id == device.id).execute()
    (
        Token.update(revoked_at=stamp)
        .where((Token.device == device.id) & Token.revoked_at.is_null())
        .execute()
    )


def _row_for(bearer: str, kinds: tuple) -> Token:
    for kind in kinds:
        prefix = PREFIXES[kind]
        if isinstance(bearer, str) and bearer.startswith(prefix):
            token_id, _, secret = bearer[len(prefix) :].partition(".")
            if not is_token_id(token_id):
                break
            token = Token.get_or_none((Token.id == token_id) & (Token.kind == kind))
            if token is not None and check_secret(token, secret.encode()):
                return token
    raise TokenRejected()
