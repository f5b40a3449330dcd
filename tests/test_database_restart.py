"""MariaDB or PostgreSQL stopped and started again under a load of hits: 2xx = rows.

Each test starts a server of its own (tests/private_servers.py), never the
shared one. While clients keep sending hits, the server is shut down, stays
down a moment, and comes back. A hit is answered 204 (stored) or 503 JSON with
Retry-After (not stored, the client may retry); nothing else. Afterwards the
rows are exactly the 204s, and hits are stored again without a restart of Crumby.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from tests.conftest import BACKENDS
from tests.private_servers import SERVERS, app_on_private_server
from tests.test_graceful_stop import stored_hits
from tests.test_worker_kill import wait_for

CLIENTS = 6
BEFORE_STOP = 60
AFTER_START = 60
DOWN_SECONDS = 3


@pytest.fixture(params=[name for name in BACKENDS if name in SERVERS])
def restartable(request: pytest.FixtureRequest) -> Iterator[tuple]:
    with app_on_private_server(
        request.param,
        "crumby_restart",
        "restart.example",
        SECRET_KEY="restart",
        HIT_RATE_LIMIT=None,
        HIT_WAIT_SECONDS=2,
    ) as (app, server):
        yield app, server


def sender(app, number: int, outcomes: Counter, bad: list, stop: threading.Event) -> None:
    client = app.test_client()
    sent = 0
    while not stop.is_set():
        sent += 1
        answer = client.post("/visit", data={"dl": f"https://restart.example/c{number}-{sent}"})
        outcomes[answer.status_code] += 1
        if answer.status_code == 503:
            if not (answer.is_json and answer.get_json().get("error")):
                bad.append(answer.get_data(as_text=True)[:300])
            if "Retry-After" not in answer.headers:
                bad.append("503 without Retry-After")
        elif answer.status_code != 204:
            bad.append(f"{answer.status_code}: {answer.get_data(as_text=True)[:300]}")


def test_a_database_restart_under_load_keeps_2xx_equal_to_rows(restartable):
    app, server = restartable
    outcomes: Counter = Counter()
    bad: list = []
    stop = threading.Event()
    threads = [
        threading.Thread(target=sender, args=(app, n, outcomes, bad, stop)) for n in range(CLIENTS)
    ]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: outcomes[204] >= BEFORE_STOP, 60, f"load: {outcomes}")
        server.stop()
        time.sleep(DOWN_SECONDS)
        failed_while_down = outcomes[503]
        server.start()
        stored_before = outcomes[204]
        wait_for(lambda: outcomes[204] >= stored_before + AFTER_START, 90, f"after: {outcomes}")
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert not bad, bad[:5]
    assert set(outcomes) <= {204, 503}, outcomes
    assert failed_while_down > 0, outcomes  # the load really met the outage
    assert stored_hits(server.url("crumby_restart"), "restart.example") == outcomes[204], outcomes
