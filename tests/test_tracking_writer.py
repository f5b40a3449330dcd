"""Group commit: hits from many threads are stored in batches, none acknowledged and lost."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from crumby.extensions import db
from crumby.ingest import writer as writer_module
from crumby.ingest.writer import StoreError, stop_writer, writer_for
from crumby.models import Event, Visit
from crumby.sites import add_site

PAGE = "https://blog.example/"


@pytest.fixture(autouse=True)
def site(app):
    """Hits are stored only for registered sites (contract section 8): register the pages' host."""
    with app.app_context(), db.engine.begin() as conn:
        return add_site(conn, "blog.example")


def test_concurrent_hits_are_all_stored_in_shared_batches(app, monkeypatch):
    batches: list[int] = []
    original = writer_module.Writer._insert

    def counting_insert(self, batch):
        batches.append(len(batch))
        return original(self, batch)

    monkeypatch.setattr(writer_module.Writer, "_insert", counting_insert)

    def hit(n: int) -> int:
        client = app.test_client()
        if n % 5 == 0:
            return client.post("/event", json={"en": f"e{n}", "dl": PAGE}).status_code
        return client.post("/visit", json={"dl": f"{PAGE}{n}", "cid": f"c{n}"}).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(hit, range(200)))
    assert answers == [204] * 200
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Visit)) == 160
        assert db.session.scalar(select(func.count()).select_from(Event)) == 40
        stored = set(db.session.scalars(select(Visit.doc_uri)).all())
    assert stored == {f"{PAGE}{n}" for n in range(200) if n % 5}
    assert sum(batches) == 200
    assert max(batches) > 1  # requests in flight together shared a commit


def test_a_failing_row_fails_only_its_own_request(app, monkeypatch):
    """A batch that fails is retried row by row: good rows are stored, the bad one gets 503."""
    table = Visit.__table__
    writer = writer_for(app, _engine(app))
    release = threading.Event()
    original = writer_module.Writer._insert

    def insert(self, batch):
        release.wait(5)  # let all three rows queue up into one batch
        if any(item.row.get("doc_title") == "poison" for item in batch):
            raise RuntimeError("this row breaks the insert")
        return original(self, batch)

    monkeypatch.setattr(writer_module.Writer, "_insert", insert)
    rows = [_row(app, "fine 1"), _row(app, "poison"), _row(app, "fine 2")]
    results: dict[str, str] = {}

    def store(row):
        try:
            writer.store(table, row)
            results[row["doc_title"]] = "stored"
        except StoreError as exc:
            results[row["doc_title"]] = str(exc)

    threads = [threading.Thread(target=store, args=(row,)) for row in rows]
    for thread in threads:
        thread.start()
    release.set()
    for thread in threads:
        thread.join(10)
    assert results == {
        "fine 1": "stored",
        "fine 2": "stored",
        "poison": "database unavailable",
    }
    with app.app_context():
        titles = sorted(db.session.scalars(select(Visit.doc_title)).all())
    assert titles == ["fine 1", "fine 2"]


def test_a_database_outage_answers_503_json(app, client, monkeypatch):
    def broken(self, batch):
        raise RuntimeError("connection refused")

    monkeypatch.setattr(writer_module.Writer, "_insert", broken)
    response = client.post("/visit", json={"dl": PAGE})
    assert response.status_code == 503
    assert response.get_json() == {"error": "database unavailable"}


def test_an_idle_writer_stops_and_restarts_on_the_next_hit(app, client, monkeypatch):
    monkeypatch.setattr(writer_module, "IDLE_SECONDS", 0.05)
    assert client.post("/visit", json={"dl": PAGE}).status_code == 204
    writer = app.extensions["crumby.writer"]
    first = writer.thread
    first.join(5)
    assert not first.is_alive()
    assert client.post("/visit", json={"dl": PAGE}).status_code == 204
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Visit)) == 2


def test_a_retired_app_stops_its_writer_at_once_and_keeps_what_was_queued(app, client, monkeypatch):
    """Whoever retires an app (a test removing its server) need not wait the idle time."""
    writer = writer_for(app, _engine(app))
    committing, release = threading.Event(), threading.Event()
    original = writer_module.Writer._insert

    def slow_insert(self, batch):
        committing.set()
        release.wait(5)
        return original(self, batch)

    monkeypatch.setattr(writer_module.Writer, "_insert", slow_insert)
    sent = threading.Thread(target=lambda: writer.store(Visit.__table__, _row(app, "a")))
    sent.start()
    assert committing.wait(5)
    stopper = threading.Thread(target=stop_writer, args=(app,))
    stopper.start()  # asked while a batch is in hand: it is still stored
    release.set()
    stopper.join(5)
    sent.join(5)
    assert writer.thread is None and writer.connection is None
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Visit)) == 1
    assert client.post("/visit", json={"dl": PAGE}).status_code == 204  # a new thread


def _engine(app):
    with app.app_context():
        return db.engine


def _row(app, title: str) -> dict:
    from crumby.models import utcnow

    row = dict.fromkeys(c.name for c in Visit.__table__.columns if c.name != "id")
    row.update(doc_uri=PAGE, doc_title=title, datetime=utcnow(), is_bot=False)
    return row


def test_sqlite_writers_of_several_processes_take_turns_through_a_lock_file(app, client):
    assert client.post("/visit", json={"dl": PAGE}).status_code == 204
    writer = app.extensions["crumby.writer"]
    if writer.engine.dialect.name == "sqlite":
        assert writer.turns.path.endswith("-crumby-writer.lock")
        assert writer.turns.file is not None
    else:  # server databases serialise writers themselves
        assert writer.turns.path is None


def test_a_connection_the_server_dropped_costs_no_hit(app, client):
    assert client.post("/visit", json={"dl": PAGE + "1"}).status_code == 204
    writer = app.extensions["crumby.writer"]
    writer.connection.connection.dbapi_connection.close()  # as a server restart would
    assert client.post("/visit", json={"dl": PAGE + "2"}).status_code == 204
    with app.app_context():
        stored = db.session.scalars(select(Visit.doc_uri).order_by(Visit.id)).all()
    assert stored == [PAGE + "1", PAGE + "2"]


def test_a_locked_or_down_database_fails_a_batch_without_retrying_every_row(app, monkeypatch):
    from sqlalchemy.exc import OperationalError

    calls: list[int] = []

    def locked(self, batch):
        calls.append(len(batch))
        raise OperationalError("INSERT ...", {}, Exception("database is locked"))

    monkeypatch.setattr(writer_module.Writer, "_insert", locked)
    writer = writer_for(app, _engine(app))
    batch = [writer_module.Pending(Visit.__table__, _row(app, f"t{n}")) for n in range(3)]
    outcome = writer._commit(batch)
    assert calls == [3, 3]  # the batch, then once more on a fresh connection
    assert outcome == [(item, "database unavailable") for item in batch]


def test_a_refused_row_is_found_by_retrying_rows_alone(app, monkeypatch):
    calls: list[int] = []
    original = writer_module.Writer._insert

    def picky(self, batch):
        calls.append(len(batch))
        if any(item.row["doc_title"] == "bad" for item in batch):
            raise ValueError("refused")
        return original(self, batch)

    monkeypatch.setattr(writer_module.Writer, "_insert", picky)
    writer = writer_for(app, _engine(app))
    batch = [writer_module.Pending(Visit.__table__, _row(app, t)) for t in ("a", "bad", "c")]
    outcome = writer._commit(batch)
    assert calls == [3, 3, 1, 1, 1]
    assert [error for _item, error in outcome] == [None, "database unavailable", None]
    with app.app_context():
        assert sorted(db.session.scalars(select(Visit.doc_title)).all()) == ["a", "c"]


def _stored_pages(app) -> list[str]:
    with app.app_context():
        return db.session.scalars(select(Visit.doc_uri).order_by(Visit.id)).all()


def test_a_hit_answered_503_is_never_stored_afterwards(app, monkeypatch):
    """A request that gives up takes its row back, whether queued or already read by a batch."""
    app.config["HIT_WAIT_SECONDS"] = 2
    release = threading.Event()
    original = writer_module.Pipeline.run

    def slow_database(self, connection, rows):
        release.wait(10)  # the database hangs until the test lets it go
        return original(self, connection, rows)

    monkeypatch.setattr(writer_module.Pipeline, "run", slow_database)
    client = app.test_client()
    answers: dict[str, object] = {}

    def hit(name: str) -> None:
        answers[name] = client.post("/visit", json={"dl": PAGE + name, "cid": name})

    first = threading.Thread(target=hit, args=("first",))
    first.start()  # its batch is read by the writer, which then hangs
    threading.Event().wait(1.5)
    second = threading.Thread(target=hit, args=("second",))
    second.start()  # queued behind the hanging batch
    first.join(10)
    response = answers["first"]
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.get_json() == {"error": "timed out waiting for the database"}
    release.set()  # the database wakes up: the first batch must not be committed
    second.join(10)
    # it was still waiting, and is stored; the writer is serial, so the first batch is over
    assert answers["second"].status_code == 204
    assert _stored_pages(app) == [PAGE + "second"]


def test_a_hit_whose_row_is_being_committed_waits_for_the_truth(app, monkeypatch):
    """Past the wait, a row already committing is not taken back: the answer says it was stored."""
    from sqlalchemy import event

    app.config["HIT_WAIT_SECONDS"] = 0.5
    engine = _engine(app)
    client = app.test_client()
    # a first hit readies the writer (its thread, connection, the day's salt), so that the
    # next batch reaches its commit at once, well within the wait, even on a busy machine
    assert client.post("/visit", json={"dl": PAGE + "warm", "cid": "warm"}).status_code == 204

    def slow_commit(connection):
        threading.Event().wait(1.5)  # longer than the request's wait

    event.listen(engine, "commit", slow_commit)
    try:
        response = client.post("/visit", json={"dl": PAGE + "late", "cid": "late"})
    finally:
        event.remove(engine, "commit", slow_commit)
    assert response.status_code == 204
    assert _stored_pages(app) == [PAGE + "warm", PAGE + "late"]
