"""Issue 14 on the CDS service: the EHR's token never leaves the fhirServer's origin, the budget
holds, nothing a client or a FHIR server sends gives a 500, and the answer says when the record
was read only in part."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import pytest

from salvage.app import create_app
from tests.cds_hooks.conftest import BASE, draft, fixture_prefetch, hook_body, signed, write_clients
from tests.fhir.hostile_server import HostileServer, hostile_server, http_answer, raw_answer

R_CHOP = ["rituximab", "cyclophosphamide", "doxorubicin", "vincristine", "prednisone"]
SIGN = "salvage-order-sign"
PATIENT = "dlbcl-early-relapse"
TOKEN = "ehr-access-token-QX7"


@pytest.fixture
def server():  # type: ignore[no-untyped-def]
    with hostile_server() as s:
        yield s


@pytest.fixture
def post(tmp_path: Path, server: HostileServer):  # type: ignore[no-untyped-def]
    clients = write_clients(tmp_path / "clients.json", fhir_servers=[server.base])
    app = create_app(
        {
            "TESTING": True,
            "BASE_URL": BASE,
            "CDS_CLIENTS": str(clients),
            "DATABASE_URL": str(tmp_path / "salvage.db"),
            "CDS_FETCH_BUDGET_SECONDS": 1.0,
        }
    )
    test_client = app.test_client()

    def _post(body: Any, service: str = SIGN) -> Any:
        path = f"/cds-services/{service}"
        return test_client.post(
            path,
            data=json.dumps(body),
            headers={"Authorization": f"Bearer {signed(path)}"},
            content_type="application/json",
        )

    _post.app = app  # type: ignore[attr-defined]
    return _post


def fetching(server: HostileServer, prefetch: dict[str, Any] | None = None, **extra: Any) -> Any:
    body = hook_body("order-sign", PATIENT, R_CHOP, prefetch, **extra)
    body["fhirServer"] = server.base
    body["fhirAuthorization"] = {
        "access_token": TOKEN,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.rs",
        "subject": "cds",
    }
    return body


def kinds(reply: Any) -> list[str]:
    return [c["source"]["topic"]["code"] for c in reply.get_json()["cards"]]


def test_a_redirect_to_another_origin_is_not_followed_with_the_token(post, server) -> None:
    with hostile_server() as attacker:
        attacker.route("/", http_answer({"resourceType": "Bundle"}))
        server.route("/fhir/", http_answer("", "302 Found", {"Location": f"{attacker.base}/x"}))
        reply = post(fetching(server))
    assert reply.status_code == 412
    assert attacker.requests == []


def test_a_trickling_server_cannot_hold_the_request_past_the_budget(post, server) -> None:
    body = json.dumps({"resourceType": "Bundle", "entry": []}).encode() + b" " * 100
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
    server.route("/fhir/", raw_answer(head + body, every=0.05))
    started = time.monotonic()
    reply = post(fetching(server))
    assert time.monotonic() - started < 3.0  # the 1 s budget, not the 10 s trickle
    assert reply.status_code == 200 and "data-incomplete" in kinds(reply)


@pytest.mark.parametrize(
    "answer",
    [
        http_answer([1, 2, 3]),
        http_answer("null"),
        http_answer({"resourceType": "Bundle", "link": 5}),
        http_answer({"resourceType": "Bundle", "entry": 7}),
        raw_answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
        raw_answer(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{}"),
        raw_answer(b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70_000 + b"\r\n\r\n{}"),
    ],
)
def test_bad_fhir_answers_are_a_412_never_a_500(post, server, answer) -> None:
    server.route("/fhir/", answer)
    assert post(fetching(server)).status_code == 412


def _paged(prefetch: dict[str, Any], key: str, server: HostileServer) -> dict[str, Any]:
    """Cut a prefetched search to its first entry; the rest is a next page on the server."""
    prefetch = copy.deepcopy(prefetch)
    entries = prefetch[key]["entry"]
    prefetch[key]["entry"] = entries[:1]
    prefetch[key]["link"] = [{"relation": "next", "url": f"{server.base}/{key}?page=2"}]
    server.route(f"/fhir/{key}", http_answer({"resourceType": "Bundle", "entry": entries[1:]}))
    return prefetch


def test_next_pages_of_a_paged_prefetch_are_read_within_the_budget(post, server) -> None:
    prefetch = _paged(fixture_prefetch(PATIENT), "medicationRequests", server)
    reply = post(fetching(server, prefetch))
    assert reply.status_code == 200
    assert kinds(reply) == ["repeats-failed-therapy"]
    ((target, headers),) = server.requests
    assert target == "/fhir/medicationRequests?page=2"
    assert headers["Authorization"] == f"Bearer {TOKEN}"


def test_a_paged_prefetch_without_a_fhir_server_says_the_record_is_incomplete(post, server) -> None:
    prefetch = _paged(fixture_prefetch(PATIENT), "medicationRequests", server)
    reply = post(hook_body("order-sign", PATIENT, R_CHOP, prefetch))
    assert reply.status_code == 200 and "data-incomplete" in kinds(reply)


def _draft_by_reference(reference: str) -> dict[str, Any]:
    order = draft("doxorubicin", rid="d1", patient=PATIENT)
    del order["medicationCodeableConcept"]
    order["medicationReference"] = {"reference": reference}
    return order


DOXORUBICIN = {  # named by text only, so only this Medication says what the draft is
    "resourceType": "Medication",
    "id": "med-dox",
    "code": {"text": "doxorubicin"},
}


def _with_drafts(body: dict[str, Any], *resources: dict[str, Any]) -> dict[str, Any]:
    body["context"]["draftOrders"]["entry"] = [{"resource": r} for r in resources]
    return body


def test_a_draft_naming_its_drug_through_a_medication_in_the_draft_bundle_is_recognised(
    post,
) -> None:
    body = hook_body("order-sign", PATIENT, [], fixture_prefetch(PATIENT))
    _with_drafts(body, _draft_by_reference("Medication/med-dox"), DOXORUBICIN)
    reply = post(body)
    assert reply.status_code == 200 and kinds(reply) == ["repeats-failed-therapy"], reply.json


def test_a_draft_naming_its_drug_through_a_medication_on_the_server_is_read(post, server) -> None:
    server.route(
        "/fhir/Medication",
        http_answer({"resourceType": "Bundle", "entry": [{"resource": DOXORUBICIN}]}),
    )
    body = _with_drafts(
        fetching(server, fixture_prefetch(PATIENT)), _draft_by_reference("Medication/med-dox")
    )
    reply = post(body)
    assert reply.status_code == 200 and kinds(reply) == ["repeats-failed-therapy"], reply.json
    assert [t for t, _ in server.requests] == ["/fhir/Medication?_id=med-dox&_count=50"]


def test_a_draft_without_an_id_is_never_deleted_as_none(post) -> None:
    body = hook_body("order-sign", PATIENT, R_CHOP, fixture_prefetch(PATIENT))
    for entry in body["context"]["draftOrders"]["entry"]:
        del entry["resource"]["id"]
    reply = post(body)
    assert reply.status_code == 200 and "None" not in reply.get_data(as_text=True)


def test_a_patient_id_matching_no_prefetched_patient_is_a_412(post) -> None:
    body = hook_body("order-sign", "someone-else", R_CHOP, fixture_prefetch(PATIENT))
    reply = post(body)
    assert reply.status_code == 412 and "matches no prefetched Patient" in reply.json["error"]


@pytest.mark.parametrize("token", ["abc\r\nX-Injected: 1", "tok\nen", "tökén", "a b", "", 5])
def test_an_access_token_that_cannot_go_into_a_header_is_a_400(post, server, token) -> None:
    body = fetching(server)
    body["fhirAuthorization"]["access_token"] = token
    assert post(body).status_code == 400
    assert server.requests == []


@pytest.mark.parametrize("patient_id", ["a b", "Zoë", "p/../../x", "p?x=1", "x" * 65])
def test_a_patient_id_that_is_not_a_fhir_id_is_a_400(post, server, patient_id) -> None:
    body = fetching(server)
    body["context"]["patientId"] = patient_id
    assert post(body).status_code == 400
    assert server.requests == []


def test_too_many_drafts_or_prefetch_entries_are_a_413(post) -> None:
    body = hook_body("order-sign", PATIENT, ["rituximab"] * 101, fixture_prefetch(PATIENT))
    assert post(body).status_code == 413
    prefetch = fixture_prefetch(PATIENT)
    prefetch["conditions"]["entry"] = [{}] * 20_001
    assert post(hook_body("order-sign", PATIENT, R_CHOP, prefetch)).status_code == 413


def test_deeply_nested_drafts_and_non_object_draft_orders_are_a_400(post) -> None:
    body = hook_body("order-sign", PATIENT, ["rituximab"], fixture_prefetch(PATIENT))
    nested: Any = {}
    for _ in range(300):
        nested = {"extension": [nested]}
    body["context"]["draftOrders"]["entry"][0]["resource"]["note"] = [nested]
    assert post(body).status_code == 400
    view = hook_body("patient-view", PATIENT, None, fixture_prefetch(PATIENT))
    for value in ([], "x", 5):
        view["context"]["draftOrders"] = value
        assert post(view, "salvage-patient-view").status_code == 400


@pytest.mark.parametrize(
    "reason", ["x", {"reason": "x"}, {"reason": {"code": {}}}, {"reason": {"display": [1]}}, 5]
)
def test_malformed_override_reasons_are_a_400(post, reason) -> None:
    path = f"/cds-services/{SIGN}/feedback"
    item = {
        "card": "c",
        "outcome": "overridden",
        "outcomeTimestamp": "2026-11-26T10:00:00Z",
        "overrideReason": reason,
    }
    reply = post.app.test_client().post(
        path,
        data=json.dumps({"feedback": [item]}),
        headers={"Authorization": f"Bearer {signed(path)}"},
        content_type="application/json",
    )
    assert reply.status_code == 400


@pytest.mark.parametrize("user_id", [{"reference": "Practitioner/1"}, 5, "", "x" * 513])
def test_a_user_id_that_is_not_a_reference_string_is_a_400_not_a_500(post, user_id) -> None:
    """userId becomes the requester of emitted proposals; before this check a non-string userId
    gave a 500 as soon as a suggestion was built (found in the final review)."""
    body = hook_body("order-sign", PATIENT, R_CHOP, fixture_prefetch(PATIENT))
    body["context"]["userId"] = user_id
    reply = post(body)
    assert reply.status_code == 400 and "userId" in reply.json["error"]
