"""Issue 18 quirks 17 and 22: Epic's category-specific APIs and Oracle's strict parameters,
reproduced by a loopback server that behaves as each is documented to behave."""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import parse_qs, urlsplit

from salvage.config import SearchProfile
from salvage.fhir.client import TokenHolder
from salvage.knowledge import load_knowledge
from smart_app import fhir_reader, scopes
from tests.fhir.hostile_server import hostile_server, http_answer

KB = load_knowledge()
CREATININE = "2160-0"  # a LOINC code the rules read
OUTCOME = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "required"}]}


def _bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r} for r in resources],
    }


def _obs(oid: str, code: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": "Patient/p"},
        "effectiveDateTime": "2026-01-05",
        "valueQuantity": {"value": 1.1, "unit": "mg/dL"},
    }


def _condition(cid: str, status: str) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": cid,
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": status,
                }
            ]
        },
        "code": {"text": "Diffuse large B-cell lymphoma"},
        "subject": {"reference": "Patient/p"},
    }


def _epic(target: str, sock: socket.socket) -> None:
    """Epic as documented: Observation needs category; Condition gives only active conditions
    without clinical-status."""
    path, query = urlsplit(target).path, parse_qs(urlsplit(target).query)
    if path.endswith("/Observation"):
        category = query.get("category", [""])[0]
        if not category:
            return http_answer(OUTCOME, "400 Bad Request")(target, sock)
        found = {
            "laboratory": [_obs("lab-1", CREATININE), _obs("lab-2", "1234-5")],
            "vital-signs": [_obs("vs-1", "8867-4")],
        }.get(category, [])
        return http_answer(_bundle(found))(target, sock)
    if path.endswith("/Condition"):
        statuses = query.get("clinical-status", ["active"])[0].split(",")
        found = [_condition("c-active", "active"), _condition("c-resolved", "resolved")]
        kept = [c for c in found if c["clinicalStatus"]["coding"][0]["code"] in statuses]
        return http_answer(_bundle(kept))(target, sock)
    if path.endswith("/Patient/p"):
        return http_answer({"resourceType": "Patient", "id": "p"})(target, sock)
    return http_answer(_bundle([]))(target, sock)


def _read(base: str, profile: SearchProfile | None):
    return fhir_reader.read_patient(
        base,
        "p",
        scopes.readable_types("patient/*.read"),
        TokenHolder("t"),
        KB.loinc_index,
        budget_seconds=5,
        profile=profile,
    )


def test_q17_without_a_profile_epic_refuses_the_observation_search() -> None:
    with hostile_server() as server:
        server.route("/fhir", _epic)
        result = _read(server.base, None)
    assert any(p.resource_type == "Observation" and p.status == 400 for p in result.problems)


def test_q17_the_epic_profile_reads_by_category_and_filters_loinc_codes_locally() -> None:
    profile = SearchProfile(
        observation_categories=["laboratory", "vital-signs"],
        condition_categories=["problem-list-item", "encounter-diagnosis"],
        condition_clinical_status=["active", "inactive", "resolved"],
    )
    with hostile_server() as server:
        server.route("/fhir", _epic)
        result = _read(server.base, profile)
    assert result.complete, result.problems
    ids = {r["id"] for r in result.resources}
    assert "lab-1" in ids and "lab-2" not in ids  # a code the rules do not read is left out
    assert {"c-active", "c-resolved"} <= ids  # a resolved lymphoma is history, not absence
    condition_queries = [t for t, _ in server.requests if "/Condition" in t]
    assert all("category=problem-list-item" in t for t in condition_queries)


def _oracle(target: str, sock: socket.socket) -> None:
    """Oracle as documented: Condition and Procedure list no _count; undocumented -> 400."""
    path, query = urlsplit(target).path, parse_qs(urlsplit(target).query)
    if path.endswith(("/Condition", "/Procedure")) and "_count" in query:
        return http_answer(OUTCOME, "400 Bad Request")(target, sock)
    if path.endswith("/Condition"):
        return http_answer(_bundle([_condition("c-active", "active")]))(target, sock)
    if path.endswith("/Patient/p"):
        return http_answer({"resourceType": "Patient", "id": "p"})(target, sock)
    return http_answer(_bundle([]))(target, sock)


def test_q22_a_400_for_an_optional_parameter_is_retried_without_it() -> None:
    with hostile_server() as server:
        server.route("/fhir", _oracle)
        result = _read(server.base, None)
    assert result.complete, result.problems
    assert "c-active" in {r["id"] for r in result.resources}


def test_q22_the_oracle_profile_never_sends_count_where_it_is_not_listed() -> None:
    with hostile_server() as server:
        server.route("/fhir", _oracle)
        result = _read(server.base, SearchProfile(drop_params=["_count"]))
    assert result.complete
    assert not any("_count" in t for t, _ in server.requests)


def test_q23_an_oracle_order_with_a_contained_medication_coded_absent_is_matched_by_text() -> None:
    from datetime import date

    from smart_app.summary import summarise

    absent = {
        "extension": [
            {
                "url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
                "valueCode": "unknown",
            }
        ]
    }
    order = {
        "resourceType": "MedicationRequest",
        "id": "mr-1",
        "status": "completed",
        "intent": "order",
        "subject": {"reference": "Patient/p"},
        "authoredOn": "2025-03-01T10:00:00Z",
        "contained": [
            {
                "resourceType": "Medication",
                "id": "med1",
                "code": {"coding": [absent], "text": "riTUXimab 10 mg/mL intravenous solution"},
            }
        ],
        "medicationReference": {"reference": "#med1"},
    }

    def oracle(target: str, sock: socket.socket) -> None:
        path = urlsplit(target).path
        if path.endswith("/MedicationRequest"):
            return http_answer(_bundle([order]))(target, sock)
        return _oracle(target, sock)

    with hostile_server() as server:
        server.route("/fhir", oracle)
        result = _read(server.base, SearchProfile(drop_params=["_count"]))
    summary = summarise(result.resources, "p", KB, [], date(2026, 6, 30))
    exposures = summary["patients"][0]["exposures"]
    assert [e["ingredients"] for e in exposures] == [["rituximab"]]


def test_q4_q19_the_aud_sent_is_the_exact_base_or_the_registered_override(tmp_path) -> None:
    import json
    from urllib.parse import parse_qs as qs

    from salvage.app import create_app

    with hostile_server() as server:
        server.route(
            "/fhir/.well-known/smart-configuration",
            http_answer(
                {
                    "authorization_endpoint": f"http://127.0.0.1:{server.port}/authorize",
                    "token_endpoint": f"http://127.0.0.1:{server.port}/token",
                    "capabilities": ["launch-ehr", "permission-v1"],  # Oracle: no issuer
                }
            ),
        )
        for name, extra, expected in (
            ("plain", {"iss": server.base + "/"}, server.base),  # no trailing slash (quirk 4)
            ("override", {"aud": server.base + "/"}, server.base + "/"),  # Oracle's example
        ):
            smart = tmp_path / f"{name}.json"
            entry = {"iss": server.base, "client_id": "a", "client_type": "public", **extra}
            smart.write_text(json.dumps({"servers": [entry]}))
            app = create_app(
                {
                    "TESTING": True,
                    "SMART_CLIENTS": str(smart),
                    "DATABASE_URL": str(tmp_path / f"{name}.db"),
                    "INSTANCE_PATH": str(tmp_path / name),
                }
            )
            reply = app.test_client().get(
                "/launch", query_string={"iss": server.base, "launch": "x"}
            )
            query = qs(urlsplit(reply.headers["Location"]).query)
            assert query["aud"] == [expected]
            assert "*" not in query["scope"][0]  # never wildcard scopes (Oracle refuses them)


def test_q17_medications_are_read_by_id_where_no_medication_search_is_offered() -> None:
    """Epic registers Medication.Read without Medication.Search: the _id search is refused, so
    each referenced Medication is read by id."""
    orders = [
        {
            "resourceType": "MedicationRequest",
            "id": f"mr-{i}",
            "status": "completed",
            "intent": "order",
            "subject": {"reference": "Patient/p"},
            "authoredOn": "2025-03-01",
            "medicationReference": {"reference": f"Medication/med-{i}"},
        }
        for i in (1, 2)
    ]

    def epic(target: str, sock: socket.socket) -> None:
        path = urlsplit(target).path
        if path.endswith("/Medication"):
            return http_answer(OUTCOME, "403 Forbidden")(target, sock)
        if "/Medication/" in path:
            mid = path.rsplit("/", 1)[1]
            med = {"resourceType": "Medication", "id": mid, "code": {"text": "rituximab"}}
            return http_answer(med)(target, sock)
        if path.endswith("/MedicationRequest"):
            return http_answer(_bundle(orders))(target, sock)
        return _epic(target, sock)

    profile = SearchProfile(observation_categories=["laboratory"])
    with hostile_server() as server:
        server.route("/fhir", epic)
        result = _read(server.base, profile)
    assert result.complete, result.problems
    assert {r["id"] for r in result.resources if r["resourceType"] == "Medication"} == {
        "med-1",
        "med-2",
    }


def test_q23_a_reported_home_medication_is_counted_and_said_to_be_reported() -> None:
    from datetime import date

    from smart_app.summary import summarise

    home = {
        "resourceType": "MedicationRequest",
        "id": "home-1",
        "status": "active",
        "intent": "plan",
        "reportedBoolean": True,
        "subject": {"reference": "Patient/p"},
        "authoredOn": "2025-01-10",
        "medicationCodeableConcept": {"text": "capecitabine 500 MG Oral Tablet"},
    }
    summary = summarise(
        [{"resourceType": "Patient", "id": "p"}, home], "p", KB, [], date(2026, 6, 30)
    )
    patient = summary["patients"][0]
    assert [e["ingredients"] for e in patient["exposures"]] == [["capecitabine"]]
    (warning,) = [w for w in patient["warnings"] if w["source"] == "MedicationRequest/home-1"]
    assert "reported home or historical medication" in warning["problem"]
