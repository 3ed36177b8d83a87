"""SMART app benchmark: `/api/summary` against the raw FHIR reads it makes.

    python3 dev.py bench          (after the engine and CDS benchmarks)
    PYTHONPATH=. python bench/bench_smart.py

Starts the real FHIR server the tests use (sekmet-fhir, sandbox/fhir_server.py) on loopback,
loads one synthetic patient (bench_cds.patient_prefetch: R-CHOP administrations and labs the rules
read; BENCH_RESOURCES, default 200), and opens it in the app as a public test server (no token,
the `/standalone` path), so the summary runs its real reads over HTTP. Then, interleaved for
BENCH_ROUNDS rounds (default 15):

- A: `GET /api/summary` in process (Flask test client): the FHIR reads, the engine, the JSON.
- B: the same GETs the summary made (recorded on its first call, every page and Medication
  search included), one after another on one kept-alive connection, each body parsed with orjson.

The ratio is the median of the per-round ratios A/B. The connections the summary's reader opened
are counted too (one per concurrent read at most: the reads and their pages reuse them).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cds import patient_prefetch


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_server(workdir: Path) -> Any:
    from sandbox.fhir_server import FhirServer

    server = FhirServer(_free_port(), workdir / "fhir", token="bench-token")  # noqa: S106
    settings = yaml.safe_load(server.settings_path.read_text())
    # "none" first: the app reads it as a public test server, without any Authorization header.
    settings["server_auth"]["types"] = ["none", "bearer"]
    server.settings_path.write_text(yaml.safe_dump(settings))
    server.start()
    return server


def _load_patient(server: Any, n_resources: int) -> str:
    prefetch = patient_prefetch(n_resources)
    resources = [prefetch["patient"]]
    for key, value in prefetch.items():
        if key != "patient":
            resources += [e["resource"] for e in value["entry"]]
    server.load_bundle(
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [{"resource": r} for r in resources],
        }
    )
    return str(prefetch["patient"]["id"])


def _app(workdir: Path, fhir_base: str) -> Any:
    from salvage import tuning
    from salvage.app import create_app

    smart = workdir / "smart.json"
    smart.write_text(
        json.dumps(
            {
                "servers": [
                    {
                        "iss": fhir_base,
                        "name": "bench FHIR server",
                        "client_id": "none",
                        "client_type": "public",
                        "open_server": True,
                    }
                ]
            }
        )
    )
    tuning.tune_gc()
    app = create_app(
        {
            "BASE_URL": "http://127.0.0.1:8700",
            "SMART_CLIENTS": str(smart),
            "DATABASE_URL": str(workdir / "bench.db"),
            "SECRET_KEY": "bench",
        }
    )
    if hasattr(tuning, "freeze_startup_heap"):  # as `salvage serve` does (absent before #16)
        tuning.freeze_startup_heap()
    return app


class _Recorder:
    """Records the URLs the product's FHIR reader GETs and the connections it opens."""

    def __init__(self) -> None:
        from salvage.fhir import client

        self.urls: list[str] = []
        self.opened: list[int] = []
        self._client = client
        self._get = client.FhirReader._get
        self._close = client.FhirReader.close

    def __enter__(self) -> _Recorder:
        recorder = self

        def get(reader: Any, connection: Any, url: str) -> Any:
            recorder.urls.append(url)
            return recorder._get(reader, connection, url)

        def close(reader: Any) -> None:
            recorder.opened.append(reader.connections_opened)
            recorder._close(reader)

        self._client.FhirReader._get = get  # type: ignore[method-assign]
        self._client.FhirReader.close = close  # type: ignore[method-assign]
        return self

    def __exit__(self, *_: object) -> None:
        self._client.FhirReader._get = self._get  # type: ignore[method-assign]
        self._client.FhirReader.close = self._close  # type: ignore[method-assign]


def _raw_reads(host: str, port: int, targets: list[str]) -> int:
    """The same GETs on one kept-alive connection, each body parsed; the resources read."""
    conn = http.client.HTTPConnection(host, port, timeout=30)
    count = 0
    try:
        for target in targets:
            conn.request("GET", target, headers={"Accept": "application/fhir+json"})
            reply = conn.getresponse()
            document = orjson.loads(reply.read())
            assert reply.status == 200, (reply.status, target)
            count += len(document.get("entry") or []) if document.get("resourceType") else 0
    finally:
        conn.close()
    return count


def main() -> None:
    n_resources = int(os.environ.get("BENCH_RESOURCES", "200"))
    rounds = int(os.environ.get("BENCH_ROUNDS", "15"))
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        server = _start_server(workdir)
        try:
            patient = _load_patient(server, n_resources)
            app = _app(workdir, server.base)
            client = app.test_client()
            reply = client.post("/standalone", data={"iss": server.base, "patient": patient})
            launch = parse_qs(urlsplit(reply.headers["Location"]).query)["ctx"][0]

            def summary() -> None:
                answer = client.get("/api/summary", query_string={"ctx": launch})
                assert answer.status_code == 200, answer.get_data()[:300]
                assert answer.get_json()["patients"][0]["lines"]

            with _Recorder() as recorder:
                summary()
            parts = urlsplit(server.base)
            host, port = parts.hostname or "127.0.0.1", int(parts.port or 80)
            targets = [
                urlsplit(u).path + (f"?{urlsplit(u).query}" if urlsplit(u).query else "")
                for u in recorder.urls
            ]
            read = _raw_reads(host, port, targets)  # warm-up
            ratios, summaries, raws = [], [], []
            for _ in range(rounds):
                started = time.perf_counter()
                summary()
                a = time.perf_counter() - started
                started = time.perf_counter()
                _raw_reads(host, port, targets)
                b = time.perf_counter() - started
                summaries.append(a * 1000)
                raws.append(b * 1000)
                ratios.append(a / b)
            print(
                f"/api/summary, {n_resources} resources on sekmet-fhir ({read} read in "
                f"{len(targets)} GETs; the summary's reader opened {recorder.opened[0]} "
                f"connection(s) for them), {rounds} interleaved rounds, load average "
                f"{os.getloadavg()[0]:.1f}:"
            )
            print(
                f"  summary p50 {statistics.median(summaries):6.1f} ms   raw reads on one kept "
                f"connection p50 {statistics.median(raws):6.1f} ms   summary / raw: median "
                f"{statistics.median(ratios):4.2f}x (range {min(ratios):4.2f}-{max(ratios):4.2f})"
            )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
