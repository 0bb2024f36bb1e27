"""The HTTP client against misbehaving loopback servers: redirects, trickles,
oversized answers and plain-text errors each end in one clear DmageError."""

import socket
import threading
import time

import pytest

from dotmage import errors
from dotmage.client.http import Http
from tests.fake_servers import RawServer


class Recorder:
    """A listener that keeps the raw request bytes it was sent."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.requests: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            self.requests.append(connection.recv(65536))
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
            connection.close()


class Trickler:
    """Sends its headers at once, then one body byte every half second."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        connection, _ = self.sock.accept()
        connection.recv(65536)
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        connection.sendall(head + b"Content-Length: 1000\r\n\r\n")
        try:
            for _ in range(100):
                connection.sendall(b" ")
                time.sleep(0.5)
        except OSError:
            pass


def test_a_redirect_is_refused_and_the_token_stays_home():
    elsewhere = Recorder()
    location = f"{elsewhere.url}/api/v1/apps"
    redirect = RawServer(
        f"HTTP/1.1 307 Temporary Redirect\r\nLocation: {location}\r\n"
        "Content-Length: 0\r\n\r\n".encode()
    )
    try:
        with pytest.raises(errors.ServerError, match="does not follow redirects"):
            Http(redirect.url, bearer="dat_secret.token").get("/apps")
    finally:
        redirect.close()
    assert elsewhere.requests == []


def test_a_trickling_server_is_cut_off_at_the_timeout(monkeypatch):
    monkeypatch.setenv("DOTMAGE_TIMEOUT", "2")
    started = time.monotonic()
    with pytest.raises(errors.ServerError, match="did not finish answering within 2s"):
        Http(Trickler().url).get("/health")
    assert time.monotonic() - started < 4


def test_an_oversized_answer_is_refused_before_reading_it():
    huge = RawServer(b"HTTP/1.1 200 OK\r\nContent-Length: 999999999999\r\n\r\n{")
    try:
        with pytest.raises(errors.ServerError, match="answer over 64 MiB"):
            Http(huge.url).get("/health")
    finally:
        huge.close()


def test_a_plain_text_413_says_the_request_was_too_large():
    refusing = RawServer(
        b"HTTP/1.1 413 Request Entity Too Large\r\nContent-Length: 9\r\n\r\nToo large"
    )
    try:
        with pytest.raises(errors.DmageError, match="too large .*DOTMAGE_MAX_BODY"):
            Http(refusing.url).post("/apps", {"name": "x"})
    finally:
        refusing.close()


def test_a_rate_limit_message_names_the_wait_once():
    limited = RawServer(
        b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 38\r\n"
        b"Content-Type: application/json\r\nContent-Length: 74\r\n\r\n"
        b'{"error": {"code": "rate_limited", "message": "too many failed attempts"}}'
    )
    try:
        with pytest.raises(errors.DmageError) as raised:
            Http(limited.url).post("/auth/prelogin", {})
    finally:
        limited.close()
    assert (
        str(raised.value) == "too many failed attempts (rate limited; try again in 38s)"
    )
