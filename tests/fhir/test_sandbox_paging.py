"""Issue 18, public FHIR servers' paging and failure quirks, reproduced by loopback stubs: HAPI
(8-11), Oracle (21, 23) and open servers (section 2)."""

from __future__ import annotations

from typing import Any

from salvage.fhir import client
from salvage.fhir.client import FhirReader, TokenHolder
from salvage.fhir.references import same_origin
from tests.fhir.hostile_server import hostile_server, http_answer


def _page(ids: range, next_url: str | None = None) -> dict[str, Any]:
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [
            {"resource": {"resourceType": "Observation", "id": f"o{i}", "status": "final"}}
            for i in ids
        ],
    }
    if next_url:
        bundle["link"] = [{"relation": "next", "url": next_url}]
    return bundle


def _reader(base: str, token: str = "t", **kw: Any) -> FhirReader:
    return FhirReader(base, TokenHolder(token), budget_seconds=5, **kw)


def test_q8_hapi_next_links_at_the_server_root_are_followed_to_the_end() -> None:
    with hostile_server() as server:
        root = f"{server.base}?_getpages=abc&_getpagesoffset="
        server.route("/fhir/Observation", http_answer(_page(range(20), f"{root}20&_count=20")))
        server.route(
            "/fhir?_getpages=abc&_getpagesoffset=20",
            http_answer(_page(range(20, 40), f"{root}40&_count=20&_bundletype=searchset")),
        )
        server.route("/fhir?_getpages=abc&_getpagesoffset=40", http_answer(_page(range(40, 45))))
        result = _reader(server.base).read("Observation?patient=p&_count=200", "Observation")
    assert result.complete and len(result.resources) == 45  # _count capped at 20: all followed


def test_q9_an_expired_paging_link_keeps_what_was_read_and_says_pages_are_missing() -> None:
    with hostile_server() as server:
        server.route(
            "/fhir/Observation",
            http_answer(_page(range(20), f"{server.base}?_getpages=gone&_getpagesoffset=20")),
        )
        server.route(
            "/fhir?_getpages=gone",
            http_answer(
                {
                    "resourceType": "OperationOutcome",
                    "issue": [
                        {
                            "severity": "error",
                            "code": "processing",
                            "diagnostics": "Search ID gone does not exist and may have expired",
                        }
                    ],
                },
                "410 Gone",
            ),
        )
        result = _reader(server.base).read("Observation?patient=p", "Observation")
    assert len(result.resources) == 20
    (problem,) = result.problems
    assert problem.kind == client.INCOMPLETE and "later pages are missing" in problem.text
    assert "410" in problem.text


def test_q10_an_http_next_link_from_an_https_base_is_upgraded_on_the_same_host() -> None:
    base = "https://hapi.example.org/baseR4"
    upgraded = client._upgraded("http://hapi.example.org/baseR4?_getpages=x", base)
    assert upgraded == "https://hapi.example.org/baseR4?_getpages=x"
    assert same_origin(upgraded, base)
    # another host, or another port, over http: not upgraded, so refused by the origin rule
    for link in ("http://evil.example/baseR4?x", "http://hapi.example.org:8080/baseR4?x"):
        assert not same_origin(client._upgraded(link, base), base)


def test_q10_an_http_next_link_elsewhere_is_refused_with_a_note_and_no_token() -> None:
    with hostile_server() as server, hostile_server() as elsewhere:
        server.route(
            "/fhir/Observation",
            http_answer(_page(range(3), f"http://127.0.0.1:{elsewhere.port}/fhir?_getpages=x")),
        )
        result = _reader(server.base, "secret").read("Observation?patient=p", "Observation")
    assert len(result.resources) == 3
    assert "later pages are missing" in result.problems[0].text
    assert elsewhere.requests == []


def test_q11_a_failing_public_server_leaves_counted_problems_not_exceptions() -> None:
    with hostile_server() as server:
        server.route(
            "/fhir/Observation",
            http_answer(
                {
                    "resourceType": "OperationOutcome",
                    "issue": [{"diagnostics": "HAPI-2223: Timer already cancelled"}],
                },
                "500 Internal Server Error",
            ),
        )
        server.route("/fhir/Condition", http_answer("<html>502 Bad Gateway</html>", "502 X"))
        server.route("/fhir/Procedure", http_answer("504", "504 Gateway Timeout"))
        server.route("/fhir/MedicationRequest", http_answer(b'{"resourceType": "Bund'))
        server.route("/fhir/Patient", http_answer({"resourceType": "Patient", "id": "p"}))
        reads = {
            t: (f"{t}?patient=p", t)
            for t in ("Observation", "Condition", "Procedure", "MedicationRequest")
        }
        reads["Patient"] = ("Patient/p", "Patient")
        results = _reader(server.base, retries=1).read_many(reads)
    assert results["Patient"].complete
    failed = {k for k, r in results.items() if r.problems}
    assert failed == {"Observation", "Condition", "Procedure", "MedicationRequest"}


def test_q23_a_deterministic_500_with_an_operation_outcome_is_retried_once_only() -> None:
    with hostile_server() as server:
        server.route(
            "/fhir/MedicationRequest",
            http_answer(
                {"resourceType": "OperationOutcome", "issue": [{"code": "required"}]},
                "500 Internal Server Error",
            ),
        )
        result = _reader(server.base, retries=5).read("MedicationRequest?patient=p", "X")
    assert len(server.requests) == 2  # the first try and one retry, not the whole budget
    assert "500" in result.problems[0].text


def test_q21_pages_smaller_than_requested_are_followed_to_the_end() -> None:
    """Oracle: all social-history results on page 1 whatever _count; later pages may hold fewer
    than requested. Paging follows next links, never page sizes."""
    with hostile_server() as server:
        nxt = f"{server.base}/Observation?page="
        server.route("/fhir/Observation?patient", http_answer(_page(range(73), f"{nxt}2")))
        server.route("/fhir/Observation?page=2", http_answer(_page(range(73, 75), f"{nxt}3")))
        server.route("/fhir/Observation?page=3", http_answer(_page(range(0))))
        result = _reader(server.base).read("Observation?patient=p&_count=50", "Observation")
    assert result.complete and len(result.resources) == 75


def test_open_servers_get_no_authorization_header_at_all() -> None:
    with hostile_server() as server:
        server.route("/fhir/Observation", http_answer(_page(range(2))))
        result = _reader(server.base, token="").read("Observation?patient=p", "Observation")
    assert result.complete
    assert all("Authorization" not in headers for _, headers in server.requests)


def test_q2_a_401_with_a_text_plain_body_is_refreshed_once_then_read() -> None:
    """The SMART launcher answers a bad token with 401 and a text/plain body, not an
    OperationOutcome."""
    tokens = iter(["fresh"])
    holder = TokenHolder("stale", lambda: next(tokens, None))
    with hostile_server() as server:

        def answer(target: str, sock: Any) -> None:
            auth = server.requests[-1][1].get("Authorization")
            if auth == "Bearer fresh":
                return http_answer(_page(range(2)))(target, sock)
            head = "HTTP/1.1 401 Unauthorized\r\nContent-Type: text/plain\r\n"
            body = b"Invalid token"
            sock.sendall(
                f"{head}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body
            )

        server.route("/fhir/Observation", answer)
        result = FhirReader(server.base, holder, budget_seconds=5).read(
            "Observation?patient=p", "Observation"
        )
    assert result.complete and len(result.resources) == 2 and holder.refreshed
