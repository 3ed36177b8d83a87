"""The FHIR reader keeps its connections alive between reads and pages (one handshake per
concurrent read, not per read), and opens a new one when the server closed a kept one."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from salvage.fhir import client

PATIENT = {"resourceType": "Patient", "id": "p1"}


@contextmanager
def keep_alive_server(close_after_each: bool = False) -> Iterator[dict[str, Any]]:
    seen: dict[str, Any] = {"connections": set(), "requests": 0}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            seen["connections"].add(self.client_address)
            seen["requests"] += 1
            page = "page=2" not in self.path and "Observation" in self.path
            body: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
            body["entry"] = [{"resource": PATIENT}]
            if page:
                body["link"] = [{"relation": "next", "url": f"{seen['base']}/Observation?page=2"}]
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/fhir+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            if close_after_each:
                self.close_connection = True  # closed without saying so (idle timeout)

        def log_message(self, *_: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    seen["base"] = f"http://127.0.0.1:{server.server_address[1]}/fhir"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        server.shutdown()
        server.server_close()


def _reader(base: str) -> client.FhirReader:
    return client.FhirReader(base, client.TokenHolder("t"), budget_seconds=5)


def test_sequential_reads_and_pages_share_one_connection() -> None:
    with keep_alive_server() as seen, _reader(seen["base"]) as reader:
        for path in ("Patient/p1", "Condition?patient=p1", "Observation?patient=p1"):
            assert reader.read(path, "X").complete
        assert seen["requests"] == 4  # the Observation search has two pages
        assert len(seen["connections"]) == 1 and reader.connections_opened == 1


def test_concurrent_reads_open_at_most_one_connection_each_then_reuse_them() -> None:
    reads = {f"k{i}": (f"Condition?patient=p{i}", "Condition") for i in range(7)}
    with keep_alive_server() as seen, _reader(seen["base"]) as reader:
        first = reader.read_many(reads)
        opened = reader.connections_opened
        again = reader.read_many(reads)
        assert all(r.complete for r in [*first.values(), *again.values()])
        # At most one connection per concurrent read, kept across batches: 14 reads never need more
        # than 7. How many the first batch opens depends on thread timing (a thread may finish and
        # hand its connection on before another starts), so the second batch may open the rest.
        assert 1 <= opened <= 7 and opened <= reader.connections_opened <= 7


def test_a_kept_connection_the_server_closed_is_opened_again() -> None:
    with keep_alive_server(close_after_each=True) as seen, _reader(seen["base"]) as reader:
        for path in ("Patient/p1", "Condition?patient=p1", "Procedure?patient=p1"):
            result = reader.read(path, "X")
            assert result.complete and result.resources == [PATIENT], result.problems
        assert seen["requests"] == 3
        assert len(seen["connections"]) == 3  # each kept one was found closed and replaced


def test_a_batch_larger_than_the_concurrency_limit_still_opens_at_most_that_many() -> None:
    reads = {f"k{i}": (f"Condition?patient=p{i}", "Condition") for i in range(20)}
    with keep_alive_server() as seen, _reader(seen["base"]) as reader:
        results = reader.read_many(reads)
        assert list(results) == list(reads) and all(r.complete for r in results.values())
        assert seen["requests"] == 20
        assert 1 <= reader.connections_opened <= client.MAX_CONCURRENT_READS


def test_the_shared_read_threads_are_made_again_in_a_forked_process(monkeypatch) -> None:
    first = client._executor()
    assert client._executor() is first
    monkeypatch.setattr(client.os, "getpid", lambda: -1)  # as in a gunicorn worker after fork
    assert client._executor() is not first
