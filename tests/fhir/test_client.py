"""The one FHIR reader against a hostile server on 127.0.0.1: redirects are never followed, the
deadline holds over the whole exchange, and nothing a server sends escapes as an exception."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from salvage.fhir import client, queries
from salvage.fhir.references import same_origin
from tests.fhir.hostile_server import hostile_server, http_answer, raw_answer

TOKEN = "hostile-test-token-123"


def reader(base: str, budget: float = 2.0, **options: Any) -> client.FhirReader:
    return client.FhirReader(base, client.TokenHolder(TOKEN), budget_seconds=budget, **options)


def bundle(*resources: dict[str, Any], next_url: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r} for r in resources],
    }
    if next_url is not None:
        out["link"] = [{"relation": "next", "url": next_url}]
    return out


PATIENT = {"resourceType": "Patient", "id": "p1"}


def test_a_redirect_is_a_read_failure_and_the_token_never_reaches_the_other_origin() -> None:
    with hostile_server() as good, hostile_server() as other:
        other.route("/", http_answer(bundle(PATIENT)))
        good.route("/fhir/Patient", http_answer("", "302 Found", {"Location": f"{other.base}/x"}))
        result = reader(good.base).read("Patient?_id=p1", "Patient")
    assert result.resources == []
    assert [p.kind for p in result.problems] == [client.FAILED]
    assert "redirect" in result.problems[0].text
    assert other.requests == []


def test_the_deadline_bounds_a_server_that_trickles_its_body() -> None:
    body = b'{"resourceType": "Bundle", "entry": []}' + b" " * 200
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
    with hostile_server() as server:
        server.route("/fhir/Observation", raw_answer(head + body, every=0.1))
        started = time.monotonic()
        result = reader(server.base, budget=1.0).read("Observation?patient=p1", "Observation")
        elapsed = time.monotonic() - started
    assert elapsed < 2.2  # the 1 s budget plus scheduling slack on a loaded machine
    assert result.timed_out and result.resources == []


def test_the_deadline_bounds_a_server_that_trickles_its_headers() -> None:
    head = b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"a" * 100 + b"\r\n\r\n{}"
    with hostile_server() as server:
        server.route("/fhir/", raw_answer(head, every=0.05))
        started = time.monotonic()
        result = reader(server.base, budget=0.8).read("Condition?patient=p1", "Condition")
    assert time.monotonic() - started < 2.0
    assert result.timed_out


def test_the_deadline_covers_every_page() -> None:
    with hostile_server() as server:

        def slow_page(target: str, sock: Any) -> None:
            time.sleep(0.3)
            http_answer(bundle(PATIENT, next_url=f"{server.base}/Patient?page=n"))(target, sock)

        server.route("/fhir/Patient", slow_page)
        started = time.monotonic()
        result = reader(server.base, budget=1.0).read("Patient?_id=p1", "Patient")
    assert time.monotonic() - started < 2.2
    assert result.timed_out and 1 <= len(result.resources) <= 4


CHUNKED = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize(
    "answer",
    [
        http_answer([1, 2, 3]),
        http_answer('"x"'),
        http_answer("null"),
        http_answer("{not json"),
        http_answer({"resourceType": "Bundle", "link": 5}),
        http_answer({"resourceType": "Bundle", "link": [{"relation": "next", "url": 5}]}),
        http_answer({"resourceType": "Bundle", "entry": 7}),
        http_answer({"resourceType": {}}),
        http_answer("[" * 5000 + "]" * 5000),
        raw_answer((CHUNKED + "zz\r\nabc\r\n0\r\n\r\n").encode()),
        raw_answer((CHUNKED + "10\r\nabc").encode()),
        raw_answer(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"resourceType"'),
        raw_answer(b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 70_000 + b"\r\n\r\n{}"),
        raw_answer(b"not http at all\r\n\r\n"),
        raw_answer(b""),
        http_answer("", "500 Internal Server Error"),
        http_answer("", "401 Unauthorized"),
    ],
)
def test_whatever_the_server_sends_is_a_read_failure_never_an_exception(answer) -> None:
    with hostile_server() as server:
        server.route("/fhir/", answer)
        result = reader(server.base).read("MedicationRequest?patient=p1", "MedicationRequest")
    assert result.resources == [] and not result.complete
    assert all(TOKEN not in p.text and "p1" not in p.text for p in result.problems)


def test_responses_larger_than_the_cap_are_refused() -> None:
    big = bundle(*[{"resourceType": "Condition", "id": f"c{i}"} for i in range(2000)])
    with hostile_server() as server:
        server.route("/fhir/", http_answer(big))
        server.route(
            "/fhir/Procedure",
            raw_answer(
                (CHUNKED + "".join(f"{4096:x}\r\n{' ' * 4096}\r\n" for _ in range(40))).encode()
            ),
        )
        capped = reader(server.base, max_response_bytes=50_000)
        assert "larger" in capped.read("Condition?patient=p1", "Condition").problems[0].text
        assert "larger" in capped.read("Procedure?patient=p1", "Procedure").problems[0].text


@pytest.mark.parametrize(
    "next_path",
    ["/fhir-evil/Patient?page=2", "/fhir/../../x", "/fhir/%2e%2e/x", "/other/Patient"],
)
def test_next_links_outside_the_base_path_are_not_followed(next_path) -> None:
    with hostile_server() as server:
        host = f"http://127.0.0.1:{server.port}"
        server.route("/fhir/Patient", http_answer(bundle(PATIENT, next_url=host + next_path)))
        result = reader(server.base).read("Patient?_id=p1", "Patient")
    assert result.resources == [PATIENT]
    assert [p.kind for p in result.problems] == [client.INCOMPLETE]
    assert [target for target, _ in server.requests] == ["/fhir/Patient?_id=p1"]


def test_pages_are_followed_on_the_same_origin_up_to_the_page_cap() -> None:
    with hostile_server() as server:
        server.route(
            "/fhir/Patient", http_answer(bundle(PATIENT, next_url=f"{server.base}/Patient?p=2"))
        )
        result = reader(server.base, max_pages=3).read("Patient?_id=p1", "Patient")
    assert len(result.resources) == 3 and len(server.requests) == 3
    assert "more than 3 pages" in result.problems[0].text


def test_429_is_retried_and_401_refreshes_once() -> None:
    with hostile_server() as server:
        answers = iter(
            [
                http_answer("", "429 Too Many Requests", {"Retry-After": "0"}),
                http_answer("", "401 Unauthorized"),
                http_answer(bundle(PATIENT)),
            ]
        )
        server.route("/fhir/", lambda target, sock: next(answers)(target, sock))
        holder = client.TokenHolder("old", lambda: "new")
        result = client.FhirReader(server.base, holder, budget_seconds=3, retries=2).read(
            "Patient?_id=p1", "Patient"
        )
    assert result.resources == [PATIENT] and result.complete
    assert [h["Authorization"] for _, h in server.requests] == [
        "Bearer old",
        "Bearer old",
        "Bearer new",
    ]


@pytest.mark.parametrize(
    ("url", "same"),
    [
        ("https://ehr.example/fhir/Patient?x=1", True),
        ("https://ehr.example:443/fhir/Patient", True),
        ("https://EHR.example/fhir", True),
        ("https://ehr.example/fhir-evil/Patient", False),
        ("https://ehr.example/fhir/../../x", False),
        ("https://ehr.example/fhir/%2E%2E/x", False),
        ("http://ehr.example/fhir/Patient", False),
        ("https://ehr.example:8443/fhir/Patient", False),
        ("https://ehr.example.evil/fhir/Patient", False),
        ("https://user@ehr.example/fhir/Patient", False),
        ("https://ehr.example:x/fhir", False),
        ("javascript:alert(1)", False),
    ],
)
def test_same_origin_compares_scheme_host_port_and_path_on_a_segment_boundary(url, same) -> None:
    assert same_origin(url, "https://ehr.example/fhir/") is same


def test_query_values_are_percent_encoded_so_a_proxy_collapsing_slashes_keeps_them() -> None:
    """The SMART launcher's proxy collapses '//' anywhere in the URL: an unencoded
    code=http://loinc.org|x reaches the server as http:/loinc.org|x and matches nothing."""
    import re

    with hostile_server() as backend, hostile_server() as proxy:

        def observations(target: str, sock: Any) -> None:
            codes = dict(parse_qsl(urlsplit(target).query)).get("code", "")
            found = (
                [{"resourceType": "Observation", "id": "o1"}]
                if "http://loinc.org|21000-5" in codes.split(",")
                else []
            )
            http_answer(bundle(*found))(target, sock)

        backend.route("/fhir/Observation", observations)

        def collapse(target: str, sock: Any) -> None:
            import urllib.request

            forwarded = re.sub("/{2,}", "/", target)  # what the launcher's proxy does
            with urllib.request.urlopen(f"http://127.0.0.1:{backend.port}{forwarded}") as reply:
                http_answer(reply.read())(target, sock)

        proxy.route("/fhir/", collapse)
        reads = queries.patient_reads(["21000-5"], "p1", ["observations"])
        result = reader(proxy.base).read(reads["observations"], "Observation")
    assert [r["id"] for r in result.resources] == ["o1"]
