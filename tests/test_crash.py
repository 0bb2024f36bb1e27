"""SIGKILL the server while clients push: nothing acknowledged may be lost."""

import random
import signal
import sqlite3
import threading
import time

from apiclient import (
    create_account,
    create_env,
    latest,
    open_text,
    pull,
    push,
    seal_text,
)
from conftest import free_port, start_server

APP, ENV = "crashy", "prod"
PUSHERS, KILLS = 4, 6


class Pusher(threading.Thread):
    """Pushes until told to stop, remembering every push the server acknowledged."""

    def __init__(self, account, env_key, index, stop):
        super().__init__()
        self.account, self.env_key, self.index = account, env_key, index
        self.stop = stop
        self.acknowledged: dict[int, str] = {}
        self.unexpected: list = []

    def run(self):
        api, base, count = self.account.api(), None, 0
        while not self.stop.is_set():
            text = f"PUSHER={self.index}\nCOUNT={count}\n"
            blob = seal_text(self.env_key, APP, ENV, text)
            try:
                if base is None:
                    base = latest(api, APP, ENV)
                status, reply = push(api, APP, ENV, base, blob)
            except (ConnectionError, AssertionError):
                # The server is down or restarting: the push's fate is unknown,
                # so it is neither counted nor expected.
                base = None
                time.sleep(0.02)
                continue
            if status == 201:
                self.acknowledged[reply["number"]] = text
                base, count = reply["number"], count + 1
            elif status == 409:
                base = reply["error"]["latest_revision"]
            elif status != 503:
                self.unexpected.append((status, reply))


def _kill_and_restart(server, tmp_path, db_url, port):
    time.sleep(random.uniform(0.15, 0.6))
    server.process.send_signal(signal.SIGKILL)
    server.process.wait()
    return start_server(tmp_path, db_url, port=port)


def test_acknowledged_pushes_survive_sigkill_at_random_moments(tmp_path, db_url):
    port = free_port()
    server = start_server(tmp_path, db_url, port=port)
    account = create_account(server.url)
    env_key = create_env(account, APP, ENV)
    stop = threading.Event()
    pushers = [Pusher(account, env_key, i, stop) for i in range(PUSHERS)]
    for pusher in pushers:
        pusher.start()
    try:
        for _ in range(KILLS):
            server = _kill_and_restart(server, tmp_path, db_url, port)
        time.sleep(0.3)  # let the pushers land a few on the final server
    finally:
        stop.set()
        for pusher in pushers:
            pusher.join()

    try:
        acknowledged = {}
        for pusher in pushers:
            assert pusher.unexpected == []
            acknowledged.update(pusher.acknowledged)
        assert len(acknowledged) >= KILLS  # the test really pushed
        _assert_all_there(account, env_key, acknowledged)
    finally:
        server.stop()
    if db_url.startswith("sqlite"):
        _assert_sqlite_integrity(db_url.removeprefix("sqlite:///"))


def _assert_all_there(account, env_key, acknowledged):
    api = account.api()
    newest = latest(api, APP, ENV)
    assert max(acknowledged) <= newest
    status, reply = api.call("GET", f"/apps/{APP}/-/envs/{ENV}/revisions?limit=1000")
    assert status == 200
    numbers = sorted(r["number"] for r in reply["revisions"])
    assert numbers == list(range(1, newest + 1))  # dense, no duplicates
    for number, text in acknowledged.items():
        status, reply = pull(api, APP, ENV, number)
        assert status == 200, reply
        assert open_text(env_key, APP, ENV, reply["blob"]) == text


def _assert_sqlite_integrity(path):
    connection = sqlite3.connect(path)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        connection.close()
