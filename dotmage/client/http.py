"""A small JSON-over-HTTP client on urllib, with errors that carry exit codes."""

import contextlib
import http.client
import json
import os
import socket
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request

from dotmage import errors

API_PREFIX = "/api/v1"
DEFAULT_TIMEOUT = 30.0
MAX_ANSWER = 64 * 1024 * 1024  # no dotMage answer comes near this
STATUS_ERRORS = {
    401: errors.NotAuthenticated,
    403: errors.Forbidden,
    404: errors.NotFound,
    409: errors.Conflict,
}


# The CLI sets this to show a spinner while a slow server answers; client/
# itself never draws anything.
waiting = contextlib.nullcontext


def timeout_seconds() -> float:
    try:
        return float(os.environ.get("DOTMAGE_TIMEOUT", DEFAULT_TIMEOUT))
    except ValueError:
        return DEFAULT_TIMEOUT


class Answer(dict):
    """A JSON object from the server: a field it lacks is one clear error
    wherever the client reads it, not a KeyError."""

    def __missing__(self, key):
        raise errors.ServerError(
            f"the server's answer lacks '{key}': is it a dotMage server of a "
            "matching version?"
        )


class Http:
    """Requests to one server; `bearer` is sent when given."""

    def __init__(self, server: str, bearer: str | None = None):
        self.server = normalize_server(server)
        self.bearer = bearer

    def get(self, path: str, **query):
        return self.request("GET", path, query=query)

    def post(self, path: str, body: dict):
        return self.request("POST", path, body=body)

    def put(self, path: str, body: dict):
        return self.request("PUT", path, body=body)

    def delete(self, path: str):
        return self.request("DELETE", path)

    def request(self, method: str, path: str, body=None, query=None) -> dict:
        request = self._build(method, path, body, query)
        with waiting(f"Waiting for {self.server}"):
            return self._send(request)

    def _send(self, request: urllib.request.Request) -> dict:
        """The whole exchange, bounded by DOTMAGE_TIMEOUT from start to end.

        urllib's timeout bounds each socket operation, so a server trickling a
        byte a second would hold the CLI forever; the exchange runs in a
        daemon thread instead, and the CLI stops waiting at the deadline.
        """
        outcome: dict = {}

        def exchange():
            try:
                outcome["answer"] = self._exchange(request)
            except BaseException as failure:  # handed to the waiting thread
                outcome["failure"] = failure

        worker = threading.Thread(target=exchange, daemon=True)
        worker.start()
        worker.join(timeout_seconds())
        if worker.is_alive():
            raise errors.ServerError(
                f"the server at {self.server} did not finish answering within "
                f"{timeout_seconds():g}s (DOTMAGE_TIMEOUT)"
            )
        if "failure" in outcome:
            raise outcome["failure"]
        return outcome["answer"]

    def _exchange(self, request: urllib.request.Request) -> dict:
        try:
            with OPENER.open(request, timeout=timeout_seconds()) as reply:
                return self._decode(reply.status, reply.headers, self._read(reply))
        except urllib.error.HTTPError as reply:
            raise self._error(reply.code, reply.headers, self._read(reply)) from None
        except (urllib.error.URLError, OSError) as failure:
            raise self._unreachable(failure) from None
        except http.client.HTTPException as failure:
            # Something answered on that port, but not in HTTP.
            raise errors.ServerError(
                f"the server at {self.server} did not answer in HTTP "
                f"({type(failure).__name__}): is this the right server URL?"
            ) from None

    def _build(self, method, path, body, query) -> urllib.request.Request:
        url = self.server + API_PREFIX + urllib.parse.quote(path, safe="/-._~")
        if query:
            pairs = {k: v for k, v in query.items() if v is not None}
            url += "?" + urllib.parse.urlencode(pairs) if pairs else ""
        headers = {"Accept": "application/json", "User-Agent": "dmage"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.bearer:
            headers["Authorization"] = f"Bearer {self.bearer}"
        return urllib.request.Request(url, data=data, headers=headers, method=method)

    def _read(self, reply) -> bytes:
        size = int(reply.headers.get("Content-Length") or 0)
        if size > MAX_ANSWER:
            raise errors.ServerError(self._too_large_answer())
        body = reply.read(MAX_ANSWER + 1)
        if len(body) > MAX_ANSWER:
            raise errors.ServerError(self._too_large_answer())
        return body

    def _too_large_answer(self) -> str:
        return (
            f"the server at {self.server} sent an answer over "
            f"{MAX_ANSWER // 2**20} MiB: is this the right server URL?"
        )

    def _decode(self, status, headers, raw: bytes) -> dict:
        try:
            document = json.loads(raw, object_hook=Answer)
        except (ValueError, UnicodeDecodeError):
            document = None
        if not isinstance(document, dict):
            kind = headers.get("Content-Type", "no content type")
            raise errors.ServerError(
                f"{self.server} answered HTTP {status} with {kind}, not dotMage "
                "JSON: is this the right server URL?"
            )
        return document

    def _error(self, status, headers, raw: bytes) -> errors.DmageError:
        if 300 <= status < 400:
            return errors.ServerError(
                f"{self.server} redirected to {headers.get('Location', '?')[:200]}; "
                "dmage does not follow redirects, which could carry your token "
                "elsewhere: use the final URL with dmage auth --server URL"
            )
        if status == 413:
            return errors.DmageError(
                f"the request was too large for the server at {self.server} "
                "(HTTP 413; the server's DOTMAGE_MAX_BODY sets the limit)"
            )
        try:
            detail = json.loads(raw)["error"]
            message = str(detail["message"])
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            return errors.ServerError(
                f"{self.server} answered HTTP {status} without a dotMage error: "
                "is this the right server URL?"
            )
        if status == 429 and "try again" not in message:
            wait = headers.get("Retry-After", "a while")
            message = f"{message} (rate limited; try again in {wait}s)"
        error = STATUS_ERRORS.get(status, errors.DmageError)(message)
        error.status = status
        error.detail = detail
        return error

    def _unreachable(self, failure: Exception) -> errors.ServerError:
        reason = getattr(failure, "reason", failure)
        if isinstance(reason, socket.timeout | TimeoutError):
            text = f"did not answer within {timeout_seconds():g}s"
        elif isinstance(reason, ssl.SSLCertVerificationError):
            text = (
                f"has a certificate this machine does not trust "
                f"({reason.verify_message}): for a self-signed one, point "
                "SSL_CERT_FILE at its CA file"
            )
        elif isinstance(reason, ssl.SSLError):
            detail = getattr(reason, "reason", None) or reason
            text = f"failed the TLS handshake ({detail}): does it speak https there?"
        elif isinstance(reason, ConnectionRefusedError):
            text = "refused the connection (is `dmage serve` running?)"
        elif isinstance(reason, socket.gaierror):
            text = "has a host name that does not resolve"
        else:
            text = f"could not be reached ({reason})"
        return errors.ServerError(f"the server at {self.server} {text}")


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect becomes an error: urllib would resend Authorization to it."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


OPENER = urllib.request.build_opener(_RefuseRedirects)


def normalize_server(url: str) -> str:
    url = (url or "").strip().rstrip("/")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise errors.DmageError(
            f"'{url}' is not a server URL like http://127.0.0.1:9470"
        )
    return url
