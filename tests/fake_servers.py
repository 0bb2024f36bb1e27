"""Loopback servers that misbehave: silent, slow, speaking garbage, HTML, or TLS
with a certificate nobody trusts. Each runs in a thread of the test process."""

import json
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class RawServer:
    """A TCP listener that answers every connection with fixed bytes (or never)."""

    def __init__(self, reply: bytes | None):
        self.reply = reply
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.held = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            if self.reply is None:
                self.held.append(connection)  # read nothing, answer nothing
                continue
            connection.recv(65536)
            connection.sendall(self.reply)
            connection.close()

    def close(self) -> None:
        self.sock.close()
        for connection in self.held:
            connection.close()


class JsonHandler(BaseHTTPRequestHandler):
    """Answers every GET with the server's document, after its delay."""

    def do_GET(self):
        time.sleep(self.server.delay)
        body, kind = self.server.body, self.server.content_type
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class HttpServer:
    """A real HTTP (or HTTPS) server answering one fixed body to every GET."""

    def __init__(self, body, content_type="application/json", delay=0.0, tls=None):
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), JsonHandler)
        self.httpd.body, self.httpd.content_type = body, content_type
        self.httpd.delay = delay
        scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def self_signed_certificate(folder: Path) -> tuple[str, str]:
    """A certificate for 127.0.0.1 made by openssl; (cert file, key file)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return str(cert), str(key)
