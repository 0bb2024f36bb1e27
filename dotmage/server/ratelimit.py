"""Failed-auth rate limiting per client address, kept in the database.

The counters live in the database, not in one process's memory, so several
server processes behind one proxy share them. Each address gets a window that
starts at its first failure: with 10/min, the 11th failure within a minute of
the first is refused, wherever the minute boundary falls.
"""

import peewee as pw

from dotmage.server.db import RateCounter, now
from dotmage.server.http import ApiError


def _key(address: str) -> str:
    return f"auth:{address}"[:120]


def check(address: str, settings) -> None:
    """Refuse with 429 when this address has used up its failed attempts."""
    row = RateCounter.get_or_none(RateCounter.key == _key(address))
    stamp = now()
    if row is None or row.expires_at <= stamp:
        return
    if row.count >= settings.rate_limit.count:
        retry = max(1, row.expires_at - stamp)
        raise ApiError(
            429,
            f"too many failed attempts from this address; try again in {retry}s",
            headers={"Retry-After": str(retry)},
        )


def record_failure(address: str, settings) -> None:
    """Count one failed attempt; an expired window starts over at 1."""
    stamp = now()
    fresh = stamp + settings.rate_limit.window
    expired = RateCounter.expires_at <= stamp
    (
        RateCounter.insert(key=_key(address), count=1, expires_at=fresh)
        .on_conflict(
            conflict_target=[RateCounter.key],
            update={
                RateCounter.count: pw.Case(None, [(expired, 1)], RateCounter.count + 1),
                RateCounter.expires_at: pw.Case(
                    None, [(expired, fresh)], RateCounter.expires_at
                ),
            },
        )
        .execute()
    )
    RateCounter.delete().where(RateCounter.expires_at < stamp).execute()
