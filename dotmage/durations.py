"""Durations as users write them: 123s, 30m, 24h, 7d."""

import re

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
PATTERN = re.compile(r"^\s*(\d{1,9})\s*([smhdw])\s*$")


def parse_duration(text: str) -> int:
    """'7d' -> 604800 seconds; raises ValueError with a readable message."""
    match = PATTERN.match(text or "")
    if not match:
        raise ValueError(f"'{text}' is not a duration like 30s, 15m, 24h or 7d")
    seconds = int(match.group(1)) * UNITS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"'{text}' must be longer than zero")
    return seconds


def format_duration(seconds: int) -> str:
    """The largest whole unit: 604800 -> '7d', 90 -> '90s'."""
    for unit in ("w", "d", "h", "m"):
        if seconds % UNITS[unit] == 0 and seconds >= UNITS[unit]:
            if unit == "w":
                return f"{seconds // UNITS['d']}d"
            return f"{seconds // UNITS[unit]}{unit}"
    return f"{seconds}s"
