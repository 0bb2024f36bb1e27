"""Validation of app and env names, shared by the client and the server."""

import re

# Folders are segments joined by '/'; a segment starts with a letter or digit,
# so '..', '.', a leading '/', and the API's '/-/' separator can never appear.
SEGMENT = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
APP_NAME = re.compile(rf"^{SEGMENT}(/{SEGMENT}){{0,7}}$")
ENV_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
MAX_APP_NAME = 200


def app_name_problem(name: object) -> str | None:
    """None when valid, else a one-line reason."""
    if not isinstance(name, str) or not name:
        return "an app name is required"
    if len(name) > MAX_APP_NAME or not APP_NAME.match(name):
        return (
            f"invalid app name '{_shown(name)}': use letters, digits, '.', '_', "
            "'-', and '/' between folder names (each part starts with a letter "
            "or digit)"
        )
    return None


def env_name_problem(name: object) -> str | None:
    if not isinstance(name, str) or not name:
        return "an env name is required"
    if not ENV_NAME.match(name):
        return (
            f"invalid env name '{_shown(name)}': use up to 32 letters, digits, "
            "'.', '_' or '-', starting with a letter or digit"
        )
    return None


def _shown(name: str) -> str:
    printable = "".join(ch if ch.isprintable() else "?" for ch in name)
    return printable[:60] + ("..." if len(printable) > 60 else "")
