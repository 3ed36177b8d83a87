"""CDS Hooks benchmark: order-sign service time with full prefetch, and sustained throughput.

    python3 dev.py bench-cds

1. Service time in process (JWT check, JSON parse, engine, recommender, cards): a typical patient
   (about 200 resources) and a heavy one (about 2,000 resources, about 3 MB), p50/p95 over many
   calls, and the heavy request's time against only json.loads of its body.
2. Throughput: `salvage serve` (gunicorn) on this machine's cores, a load generator of 2 processes
   on the same cores with keep-alive connections, each request with its own signed JWT (fresh jti).
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

from joserfc import jwt
from joserfc.jwk import ECKey

ISS = "https://bench-ehr.example"
R_CHOP = [
    ("121191", "rituximab"),
    ("3002", "cyclophosphamide"),
    ("3639", "doxorubicin"),
    ("11202", "vincristine"),
    ("8640", "prednisone"),
]
LABS = [
    ("2160-0", "mg/dL", 1.0),
    ("29463-7", "kg", 70.0),
    ("2532-0", "U/L", 220.0),
    ("8302-2", "cm", 172.0),
]


def patient_prefetch(n_resources: int, padding: int = 0) -> dict:
    pid = "bench-patient"
    subject = {"reference": f"Patient/{pid}"}
    start = date(2023, 1, 2)
    admins, observations = [], []
    for cycle in range(6):
        for code, name in R_CHOP:
            admins.append(
                {
                    "resourceType": "MedicationAdministration",
                    "id": f"ma-{len(admins)}",
                    "status": "completed",
                    "subject": subject,
                    "effectiveDateTime": (start + timedelta(days=21 * cycle)).isoformat(),
                    "medicationCodeableConcept": {
                        "coding": [
                            {
                                "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                "code": code,
                                "display": name,
                            }
                        ]
                    },
                }
            )
    observations.append(
        {
            "resourceType": "Observation",
            "id": "status-1",
            "status": "final",
            "subject": subject,
            "effectiveDateTime": "2023-11-20",
            "code": {"coding": [{"system": "http://loinc.org", "code": "97509-4"}]},
            "valueCodeableConcept": {
                "coding": [{"system": "http://snomed.info/sct", "code": "271299001"}]
            },
        }
    )
    text = (
        {
            "status": "generated",
            "div": '<div xmlns="http://www.w3.org/1999/xhtml">' + "x" * padding + "</div>",
        }
        if padding
        else None
    )
    while len(admins) + len(observations) + 2 < n_resources:
        i = len(observations)
        code, unit, base = LABS[i % len(LABS)]
        obs = {
            "resourceType": "Observation",
            "id": f"lab-{i}",
            "status": "final",
            "subject": subject,
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "effectiveDateTime": (start + timedelta(days=i % 1200)).isoformat(),
            "valueQuantity": {"value": base, "unit": unit, "code": unit},
        }
        if text:
            obs["text"] = text
        observations.append(obs)

    def bundle(items: list) -> dict:
        return {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [{"resource": r} for r in items],
        }

    return {
        "patient": {
            "resourceType": "Patient",
            "id": pid,
            "birthDate": "1958-03-01",
            "gender": "male",
        },
        "conditions": bundle(
            [
                {
                    "resourceType": "Condition",
                    "id": "c1",
                    "subject": subject,
                    "code": {"coding": [{"system": "http://snomed.info/sct", "code": "109969005"}]},
                }
            ]
        ),
        "medicationRequests": bundle([]),
        "medicationStatements": bundle([]),
        "procedures": bundle([]),
        "medicationAdministrations": bundle(admins),
        "observations": bundle(observations),
        "diagnosticReports": bundle([]),
    }


def request_body(prefetch: dict) -> dict:
    drafts = [
        {
            "resourceType": "MedicationRequest",
            "id": f"d{i}",
            "status": "draft",
            "intent": "order",
            "subject": {"reference": "Patient/bench-patient"},
            "medicationCodeableConcept": {"text": name},
        }
        for i, (_, name) in enumerate(R_CHOP)
    ]
    return {
        "hook": "order-sign",
        "hookInstance": str(uuid.uuid4()),
        "context": {
            "userId": "Practitioner/p",
            "patientId": "bench-patient",
            "draftOrders": {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": d} for d in drafts],
            },
        },
        "prefetch": prefetch,
    }


def signer(key: ECKey, audience: str):
    def sign() -> str:
        now = int(time.time())
        return jwt.encode(
            {"alg": "ES384", "typ": "JWT", "kid": key.kid},
            {"iss": ISS, "aud": audience, "exp": now + 300, "iat": now, "jti": str(uuid.uuid4())},
            key,
            algorithms=["ES384"],
        )

    return sign


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def service_time(key: ECKey, workdir: Path) -> None:
    from salvage.app import create_app

    clients = workdir / "clients.json"
    clients.write_text(
        json.dumps(
            {
                "clients": [
                    {"iss": ISS, "jwks": {"keys": [key.as_dict(private=False)]}, "fhir_servers": []}
                ]
            }
        )
    )
    base = "http://bench.local"
    app = create_app(
        {
            "BASE_URL": base,
            "CDS_CLIENTS": str(clients),
            "DATABASE_URL": str(workdir / "bench.db"),
            "CDS_MAX_BODY_BYTES": 50_000_000,
        }
    )
    client = app.test_client()
    sign = signer(key, f"{base}/cds-services/salvage-order-sign")
    for label, size, padding, runs in (("typical", 200, 0, 300), ("heavy", 2000, 1150, 60)):
        raw = json.dumps(request_body(patient_prefetch(size, padding))).encode()
        tokens = [sign() for _ in range(runs + 5)]
        timings, cpu = [], []
        for i in range(runs + 5):
            started, cpu_started = time.perf_counter(), time.process_time()
            reply = client.post(
                "/cds-services/salvage-order-sign",
                data=raw,
                headers={
                    "Authorization": f"Bearer {tokens[i]}",
                    "Content-Type": "application/json",
                },
            )
            elapsed = (time.perf_counter() - started) * 1000
            elapsed_cpu = (time.process_time() - cpu_started) * 1000
            assert reply.status_code == 200 and reply.get_json()["cards"], reply.get_data()[:200]
            if i >= 5:  # warm-up
                timings.append(elapsed)
                cpu.append(elapsed_cpu)
        parse, parse_cpu = [], []
        for _ in range(20):
            started, cpu_started = time.perf_counter(), time.process_time()
            json.loads(raw)
            parse.append((time.perf_counter() - started) * 1000)
            parse_cpu.append((time.process_time() - cpu_started) * 1000)
        parse_ms, parse_cpu_ms = statistics.median(parse), statistics.median(parse_cpu)
        print(
            f"order-sign {label:8s} {size:5d} resources {len(raw) / 1e6:5.2f} MB: "
            f"p50 {statistics.median(timings):6.1f} ms  p95 {percentile(timings, 0.95):6.1f} ms  "
            f"json.loads {parse_ms:5.1f} ms  p95/parse {percentile(timings, 0.95) / parse_ms:4.1f}x"
        )
        print(
            f"  CPU time (less sensitive to other load): p50 {statistics.median(cpu):6.1f} ms  "
            f"p95 {percentile(cpu, 0.95):6.1f} ms  json.loads {parse_cpu_ms:5.1f} ms  "
            f"p95/parse {percentile(cpu, 0.95) / parse_cpu_ms:4.1f}x"
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _load(port: int, raw: bytes, tokens: list[str], deadline: float, queue) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    ok = errors = 0
    for token in tokens:
        if time.time() > deadline:
            break
        try:
            conn.request(
                "POST",
                "/cds-services/salvage-order-sign",
                body=raw,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            reply = conn.getresponse()
            reply.read()
            ok += reply.status == 200
            errors += reply.status != 200
        except (OSError, http.client.HTTPException):
            errors += 1
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    queue.put((ok, errors))


def throughput(key: ECKey, workdir: Path, seconds: float = 10.0) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    clients = workdir / "clients-tp.json"
    clients.write_text(
        json.dumps(
            {
                "clients": [
                    {"iss": ISS, "jwks": {"keys": [key.as_dict(private=False)]}, "fhir_servers": []}
                ]
            }
        )
    )
    env = {
        **os.environ,
        "SALVAGE_BASE_URL": base,
        "SALVAGE_CDS_CLIENTS": str(clients),
        "SALVAGE_DATABASE_URL": str(workdir / "tp.db"),
    }
    workers = int(os.environ.get("BENCH_WORKERS", max(2, os.cpu_count() or 1)))
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "salvage.cli",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        env=env,
        stderr=subprocess.DEVNULL,  # one log line per request (INFO): not part of the figures
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.2)
        raw = json.dumps(request_body(patient_prefetch(200))).encode()
        sign = signer(key, f"{base}/cds-services/salvage-order-sign")
        budget = int(seconds * 700)  # more tokens than can be used
        tokens = [sign() for _ in range(budget)]
        queue: multiprocessing.Queue = multiprocessing.Queue()
        deadline = time.time() + seconds + 1.0
        half = len(tokens) // 2
        procs = [
            multiprocessing.Process(target=_load, args=(port, raw, part, deadline, queue))
            for part in (tokens[:half], tokens[half:])
        ]
        started = time.time()
        for p in procs:
            p.start()
        results = [queue.get(timeout=seconds + 30) for _ in procs]
        elapsed = time.time() - started
        for p in procs:
            p.join()
        ok = sum(r[0] for r in results)
        errors = sum(r[1] for r in results)
        print(
            f"throughput (typical order-sign, gunicorn {workers} workers, 2 load processes on the "
            f"same {os.cpu_count()} cores): {ok / elapsed:6.0f} requests/s over {elapsed:.1f} s, "
            f"{errors} errors"
        )
    finally:
        server.terminate()
        server.wait(timeout=10)


def main() -> None:
    from salvage.tuning import tune_gc

    tune_gc()  # as `salvage serve` does in every worker
    key = ECKey.generate_key("P-384", {"alg": "ES384"})
    key.ensure_kid()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        service_time(key, workdir)
        throughput(key, workdir, seconds=float(os.environ.get("BENCH_SECONDS", "10")))


if __name__ == "__main__":
    main()
