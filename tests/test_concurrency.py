"""Many clients pushing to one env through two server processes at once."""

import random
import threading
import time

import pytest
from apiclient import (
    Api,
    create_account,
    create_env,
    latest,
    open_text,
    pull,
    push,
    seal_text,
)
from conftest import start_server

APP, ENV = "team/api", "prod"
CLIENTS, PUSHES = 32, 20


@pytest.fixture
def two_servers(tmp_path, db_url):
    """Two `dmage serve` processes on one database."""
    first = start_server(tmp_path, db_url)
    second = start_server(tmp_path, db_url)
    yield first, second
    first.stop()
    second.stop()


def _client(account, url, env_key, index, acknowledged, failures):
    # Push PUSHES revisions, rebasing on the server's latest after each 409.
    api = account.api(url)
    base, done, deadline = 0, 0, time.monotonic() + 60
    while done < PUSHES and time.monotonic() < deadline:
        text = f"CLIENT={index}\nPUSH={done}\n"
        status, reply = push(api, APP, ENV, base, seal_text(env_key, APP, ENV, text))
        if status == 201:
            acknowledged.append((reply["number"], text))
            base, done = reply["number"], done + 1
        elif status == 409:
            # Like a person or CI job pulling before trying again: a short
            # random pause keeps 31 losers from re-racing in lockstep.
            base = reply["error"]["latest_revision"]
            time.sleep(random.uniform(0, 0.03))
        else:
            failures.append((status, reply))
            return
    api.close()


def _run_clients(account, urls, env_key):
    acknowledged, failures = [], []
    threads = [
        threading.Thread(
            target=_client,
            args=(account, urls[i % 2], env_key, i, acknowledged, failures),
        )
        for i in range(CLIENTS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return acknowledged, failures


def _history_numbers(api) -> list[int]:
    status, reply = api.call("GET", f"/apps/{APP}/-/envs/{ENV}/revisions?limit=1000")
    assert status == 200, reply
    return [revision["number"] for revision in reply["revisions"]]


def test_32_clients_push_20_revisions_each_through_two_servers(two_servers):
    first, second = two_servers
    account = create_account(first.url)
    env_key = create_env(account, APP, ENV)

    acknowledged, failures = _run_clients(account, [first.url, second.url], env_key)

    assert failures == []
    total = CLIENTS * PUSHES
    assert len(acknowledged) == total
    assert sorted(number for number, _ in acknowledged) == list(range(1, total + 1))
    api = account.api(second.url)
    assert latest(api, APP, ENV) == total
    assert sorted(_history_numbers(api)) == list(range(1, total + 1))
    for number, text in acknowledged:
        status, reply = pull(api, APP, ENV, number)
        assert status == 200, reply
        assert open_text(env_key, APP, ENV, reply["blob"]) == text


def _push_at_once(account, urls, env_key, base) -> list[int]:
    # Every client has its connection open and its blob sealed before the
    # barrier, so the pushes reach the servers as close together as possible.
    clients = [account.api(urls[i % 2]) for i in range(CLIENTS)]
    for api in clients:
        api.call("GET", "/health")
    blobs = [seal_text(env_key, APP, ENV, f"RACER={i}\n") for i in range(CLIENTS)]
    barrier, statuses = threading.Barrier(CLIENTS), [None] * CLIENTS

    def race(i):
        barrier.wait()
        statuses[i] = push(clients[i], APP, ENV, base, blobs[i])[0]

    threads = [threading.Thread(target=race, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for api in clients:
        api.close()
    return statuses


def test_many_pushes_on_one_base_exactly_one_wins_the_rest_get_409(two_servers):
    first, second = two_servers
    account = create_account(first.url)
    env_key = create_env(account, APP, ENV)
    api = Api(first.url, account.access_token)

    for base in range(5):
        statuses = _push_at_once(account, [first.url, second.url], env_key, base)
        assert sorted(statuses) == [201] + [409] * (CLIENTS - 1)
        assert latest(api, APP, ENV) == base + 1
    assert sorted(_history_numbers(api)) == [1, 2, 3, 4, 5]
