"""`dmage serve`."""

import os

from dotmage.errors import DmageError


def serve(args, context) -> int:
    from dotmage.server.serve import DEFAULT_HOST, DEFAULT_PORT, serve
    from dotmage.server.settings import ConfigError

    host = args.host or os.environ.get("DOTMAGE_HOST") or DEFAULT_HOST
    port = args.port or _port_from_environment() or DEFAULT_PORT
    try:
        serve(host, port)
    except ConfigError as error:
        raise DmageError(str(error)) from None
    except OSError as error:
        raise DmageError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    return 0


def _port_from_environment() -> int | None:
    text = os.environ.get("DOTMAGE_PORT")
    if not text:
        return None
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise DmageError(f"DOTMAGE_PORT: '{text}' is not a port number")
    return int(text)


HANDLERS = {"serve": serve}
