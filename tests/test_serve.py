"""`salvage serve` picks its gunicorn worker class by measurement (issue 16): gthread workers keep
client connections alive; 0 threads still gives the old sync workers."""

from __future__ import annotations

from typing import Any

import pytest

import salvage.app
import salvage.serve as serve_module


@pytest.fixture
def started(monkeypatch) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []

    class FakeGunicorn:
        def __init__(self, options: dict[str, Any]) -> None:
            seen.append(options)

        def run(self) -> None:
            return None

    monkeypatch.setattr(serve_module, "_Gunicorn", FakeGunicorn)
    monkeypatch.setattr(salvage.app, "create_app", lambda *a, **k: None)
    monkeypatch.delenv("SALVAGE_THREADS", raising=False)
    return seen


def test_the_default_is_gthread_with_the_measured_thread_count(started) -> None:
    serve_module.serve("127.0.0.1", 0, workers=2)
    assert started[0]["worker_class"] == "gthread"
    assert started[0]["threads"] == serve_module.DEFAULT_THREADS > 1
    assert started[0]["keepalive"] > 0


def test_zero_threads_gives_sync_workers_and_the_environment_is_read(started, monkeypatch) -> None:
    serve_module.serve("127.0.0.1", 0, workers=2, threads=0)
    monkeypatch.setenv("SALVAGE_THREADS", "2")
    serve_module.serve("127.0.0.1", 0, workers=2)
    assert [(o["worker_class"], o["threads"]) for o in started] == [("sync", 1), ("gthread", 2)]


def test_a_worker_preloads_the_draft_models_before_freezing_its_start_up_heap(monkeypatch) -> None:
    import cds_hooks.drafts

    calls: list[str] = []
    monkeypatch.setattr(salvage.app, "create_app", lambda *a, **k: calls.append("app") or "app")
    monkeypatch.setattr(cds_hooks.drafts, "preload_models", lambda: calls.append("models"))
    monkeypatch.setattr(serve_module, "freeze_startup_heap", lambda: calls.append("freeze"))
    loaded = serve_module._Gunicorn.load(object.__new__(serve_module._Gunicorn))
    assert loaded == "app" and calls == ["app", "models", "freeze"]
