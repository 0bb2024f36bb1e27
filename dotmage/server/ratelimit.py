"""Failed-auth rate limiting per client address, kept in the database.

The counters live in the database, not in one process's memory, so several
server processes behind one proxy share them.
"""

from dotmage.server.db import RateCounter, now
from dotmage.server.http import ApiError


def _window(settings) -> tuple[str, int]:
    stamp = now()
    window = settings.rate_limit.window
    start = stamp - stamp % window
    return str(start), start + window


def check(address: str, settings) -> None:
    """Refuse with 429 when this address has used up its failed attempts."""
    start, ends = _window(settings)
    row = RateCounter.get_or_none(RateCounter.key == f"auth:{address}:{start}")
    if row is not None and row.count >= settings.rate_limit.count:
        retry = max(1, ends - now())
        raise ApiError(
            429,
            f"too many failed attempts; try again in {retry}s",
            headers={"Retry-After": str(retry)},
        )


def record_failure(address: str, settings) -> None:
    start, ends = _window(settings)
    (
        RateCounter.insert(key=f"auth:{address}:{start}", count=1, expires_at=ends)
        .on_conflict(
            conflict_target=[RateCounter.key],
            update={RateCounter.count: RateCounter.count + 1},
        )
        .execute()
    )
    RateCounter.delete().where(RateCounter.expires_at < now()).execute()
