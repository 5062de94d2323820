"""`qa serve` keeps its index current (issue 15): the corpus is watched, the page shows the
state, and questions are answered from the live index while a build runs."""

from __future__ import annotations

import threading

import pytest

from qa.build import build_index
from qa.config import Settings
from qa.frontends.live import LiveIndex, status_html
from qa.retriever import default_retriever

from conftest import FakeEmbedder, patch_embedder

NEW = "The ferry to the island leaves from pier nine at half past seven every evening.\n"


class GatedEmbedder(FakeEmbedder):
    """A FakeEmbedder whose document encoding waits for `gate` once armed: a build that is
    still running while the test looks around."""

    def __init__(self):
        super().__init__()
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.armed = False

    def encode_documents(self, texts, batch_size=32, show_progress=False):
        if self.armed:
            self.entered.set()
            assert self.gate.wait(30)
        return super().encode_documents(texts, batch_size, show_progress)


@pytest.fixture
def live_env(settings, monkeypatch):
    embedder = GatedEmbedder()
    patch_embedder(monkeypatch, embedder)
    build_index(settings, embedder=embedder)
    lives = []

    def make(**kw):
        live = LiveIndex(settings, embedder=embedder, interval=0.05, debounce=0.1, **kw).start()
        lives.append(live)
        return live

    yield settings, embedder, make
    embedder.gate.set()
    for live in lives:
        live.stop()


def test_a_paragraph_added_while_serving_is_found(live_env):
    settings, embedder, make = live_env
    live = make()
    assert live.status()["state"] == "up to date"
    before = live.status()["passages"]
    assert "ferry.txt" not in default_retriever(settings).sources()
    (settings.corpus_dir / "ferry.txt").write_text(NEW)
    assert live.wait_idle(1)
    status = live.status()
    assert status["state"] == "up to date" and status["files"] == 3 and status["passages"] == before + 1
    assert "1 added" in status["last_report"]
    answer = default_retriever(settings).ask("When does the ferry to the island leave?", 1)
    assert answer.passages[0].source == "ferry.txt" and answer.passages[0].text == NEW.strip()


def test_questions_are_answered_from_the_live_index_while_a_build_runs(live_env):
    settings, embedder, make = live_env
    default_retriever(settings)  # loaded, as in a running server
    embedder.armed = True
    live = make()
    (settings.corpus_dir / "ferry.txt").write_text(NEW)
    assert embedder.entered.wait(10)  # the build is under way, held inside the embedding
    status = live.status()
    assert status["state"] == "updating"
    assert "Updating the index" in status_html(status) and "previous index" in status_html(status)
    # answered now, from the previous generation, without waiting for the build
    answer = default_retriever(settings).ask("When are the roses watered?", 1)
    assert answer.passages[0].source == "garden.txt"
    embedder.gate.set()
    assert live.wait_idle(1)
    assert default_retriever(settings).ask("ferry island pier", 1).passages[0].source == "ferry.txt"


def test_no_watch_shows_changed_files_and_builds_on_request(live_env):
    settings, embedder, make = live_env
    live = make(watch=False)
    (settings.corpus_dir / "ferry.txt").write_text(NEW)
    for _ in range(100):
        if live.status()["state"] == "changed":
            break
        threading.Event().wait(0.05)
    status = live.status()
    assert status["state"] == "changed" and status["changes"]["added"] == ["ferry.txt"]
    assert live.builds == 0
    assert "Files changed since the last build: ferry.txt" in status_html(status)
    live.request()  # the page's "Re-index now"
    assert live.wait_idle(1)
    assert live.status()["state"] == "up to date" and live.status()["files"] == 3


def test_a_failed_build_is_shown_and_the_old_index_kept(live_env):
    settings, embedder, make = live_env
    live = make()
    for f in settings.corpus_dir.rglob("*.*"):
        f.unlink()
    assert live.wait_idle(1)
    status = live.status()
    assert status["state"] == "failed" and "No readable document" in status["error"]
    assert "The last update failed" in status_html(status)
    assert default_retriever(settings).ask("roses", 1).passages  # still answering


def test_status_line_counts_and_last_build():
    html = status_html({"state": "up to date", "done": 0, "total": 0, "changes": {}, "files": 1,
                        "passages": 1200, "built_at": "2026-12-02T03:04:05.678+00:00",
                        "skipped": [["scan.pdf", "no extractable text"]], "error": ""})
    assert "Index up to date" in html and "1 file, 1,200 passages" in html
    assert "1 file skipped" in html and "last build 2026-12-02 03:04:05 UTC" in html
