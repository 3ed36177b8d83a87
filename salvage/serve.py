"""Production serving: gunicorn with several workers around create_app()."""

from __future__ import annotations

import logging
import os
from typing import Any

from gunicorn.app.base import BaseApplication

from salvage.tuning import freeze_startup_heap, tune_gc

# 0: sync workers; 1 or more: gthread workers with that many threads. gthread with 4 threads
# measured best (bench/bench_cds.py, interleaved, 2 workers on 2 shared cores: 150-196 requests/s
# against 51-67 for sync, and 6.0-6.5 ms of server CPU per request against 7.9-8.3): it keeps the
# client's connection alive, and a request waiting on the EHR's FHIR server (missing prefetch)
# no longer holds a whole worker.
DEFAULT_THREADS = 4


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from cds_hooks.drafts import preload_models
        from salvage.app import create_app

        app = create_app()
        preload_models()  # imported by the first request otherwise (about 0.1 s)
        freeze_startup_heap()
        return app


def serve(host: str, port: int, workers: int | None = None, threads: int | None = None) -> None:
    # One line per CDS response (method, path, status: never tokens or patient identifiers).
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # The service is CPU-bound (prefetch is usually complete): one worker per core measured best
    # (bench/bench_cds.py: 2 workers 387 req/s, 3: 337, 4: 291 on 2 cores).
    workers = workers or int(os.environ.get("SALVAGE_WORKERS") or max(2, os.cpu_count() or 1))
    if threads is None:
        threads = int(os.environ.get("SALVAGE_THREADS") or DEFAULT_THREADS)
    from salvage.app import create_app

    create_app()  # fails here, in one line naming the database or file, before any worker boots
    _Gunicorn(
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            # gthread workers keep client connections alive; sync workers close every
            # connection after one response, so each request pays a TCP connect.
            "worker_class": "gthread" if threads >= 1 else "sync",
            "threads": max(1, threads),
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "warning",
            "timeout": 30,
            "keepalive": 5,
            "post_fork": lambda server, worker: tune_gc(),
        }
    ).run()
