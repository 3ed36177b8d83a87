"""HIV genotype reports read live (ux finding 1): DiagnosticReport with its result Observations
through the one query set, for the CDS fallback fetch and the SMART app alike; optional, so a
refusal says "read in part" and the rest is still analysed."""

from __future__ import annotations

import json
import socket
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cds_hooks import fetch
from salvage import service
from salvage.fhir import client, queries
from salvage.fhir.client import TokenHolder
from smart_app import fhir_reader, scopes
from tests.fhir.hostile_server import hostile_server, http_answer

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
KB = service.knowledge_base()
PATIENT = "hiv-multiclass-resistance"
REFUSED = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "x"}]}


def _resources() -> list[dict[str, Any]]:
    bundle = json.loads((FIXTURES / f"{PATIENT}.json").read_text())
    return [e["resource"] for e in bundle["entry"]]


def _coded(resource: dict[str, Any]) -> bool:
    """What a server's LOINC-restricted Observation search returns."""
    codings = (resource.get("code") or {}).get("coding") or []
    return any(c.get("code") in KB.loinc_index for c in codings)


def _bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r} for r in resources],
    }


def _reports_with_results() -> list[dict[str, Any]]:
    everything = _resources()
    reports = [r for r in everything if r["resourceType"] == "DiagnosticReport"]
    wanted = {ref["reference"] for r in reports for ref in r.get("result", [])}
    return reports + [r for r in everything if f"{r['resourceType']}/{r.get('id')}" in wanted]


def _server(*, report_answer: str = "ok", repeat_observation: bool = False) -> Any:
    """A FHIR server holding the fixture: Observations by LOINC code only (as a real `code`
    search), reports with their results on _include; report_answer 'refuse' (403) or
    'no-include' (400 to _include, as a server that does not offer it)."""
    everything = _resources()

    def answer(target: str, sock: socket.socket) -> None:
        path, query = urlsplit(target).path, parse_qs(urlsplit(target).query)
        rtype = path.rsplit("/", 1)[-1]
        if path.endswith(f"/Patient/{PATIENT}"):
            patient = next(r for r in everything if r["resourceType"] == "Patient")
            return http_answer(patient)(target, sock)
        if rtype == "DiagnosticReport":
            if report_answer == "refuse":
                return http_answer(REFUSED, "403 Forbidden")(target, sock)
            if report_answer == "no-include" and "_include" in query:
                return http_answer(REFUSED, "400 Bad Request")(target, sock)
            found = (
                _reports_with_results()
                if "_include" in query
                else [r for r in everything if r["resourceType"] == "DiagnosticReport"]
            )
            return http_answer(_bundle(found))(target, sock)
        found = [r for r in everything if r["resourceType"] == rtype]
        if rtype == "Observation":
            found = [r for r in found if _coded(r)]
            if repeat_observation:  # the same result also reached by the Observation search
                found += [r for r in _reports_with_results() if r["resourceType"] == "Observation"]
        return http_answer(_bundle(found))(target, sock)

    return answer


def _missing(resources: list[dict[str, Any]]) -> tuple[str, ...]:
    report, _ = service.report_for_resources(
        ((r, "live") for r in resources), f"Patient/{PATIENT}", KB, date(2026, 6, 1)
    )
    assert report is not None
    return report.recommendation.missing_data


def test_the_report_search_includes_its_results_and_is_optional() -> None:
    (query,) = [q for q in queries.QUERIES if q.resource_type == "DiagnosticReport"]
    assert query.optional and query.key in queries.optional_keys()
    read = queries.patient_reads(KB.loinc_index, "p-1", ["diagnosticReports"])
    params = parse_qs(urlsplit(read["diagnosticReports"]).query)
    assert params["_include"] == ["DiagnosticReport:result"] and params["patient"] == ["p-1"]
    assert "diagnosticReports" in queries.prefetch_templates(KB.loinc_index)


def test_the_app_asks_for_the_report_scope_in_its_scope_style() -> None:
    assert (
        "patient/DiagnosticReport.rs"
        in scopes.requested_scope(ehr_launch=True, v2=True, offline=False).split()
    )
    assert (
        "patient/DiagnosticReport.read"
        in scopes.requested_scope(ehr_launch=True, v2=False, offline=False).split()
    )


def test_resources_are_kept_once_by_type_and_id() -> None:
    a = {"resourceType": "Observation", "id": "1", "n": 1}
    again = {"resourceType": "Observation", "id": "1", "n": 2}
    report = {"resourceType": "DiagnosticReport", "id": "1"}
    no_id = {"resourceType": "Observation"}
    kept = client.unique_resources([a, report, again, no_id, dict(no_id)])
    assert kept == [a, report, no_id, no_id]


def _smart(server: Any) -> Any:
    return fhir_reader.read_patient(
        server.base,
        PATIENT,
        scopes.readable_types("patient/*.read"),
        TokenHolder("t"),
        KB.loinc_index,
        budget_seconds=5,
    )


def test_a_text_only_genotype_report_is_read_live_by_the_app() -> None:
    with hostile_server() as server:
        server.route("/fhir", _server(repeat_observation=True))
        result = _smart(server)
    assert result.complete, result.problems
    keys = [(r["resourceType"], r.get("id")) for r in result.resources]
    assert len(keys) == len(set(keys))  # the included Observations are not counted twice
    assert ("DiagnosticReport", "hiv-multiclass-resistance-dr-29") in keys
    assert not any("no readable HIV-1 genotype" in m for m in _missing(result.resources))


def test_without_the_reports_the_text_only_genotype_is_missed() -> None:
    """The defect this read fixes: the LOINC-restricted Observation search alone misses it."""
    coded = [r for r in _resources() if r["resourceType"] != "Observation" or _coded(r)]
    coded = [r for r in coded if r["resourceType"] != "DiagnosticReport"]
    assert any("no readable HIV-1 genotype" in m for m in _missing(coded))


def test_the_app_asks_again_without_include_after_a_400() -> None:
    with hostile_server() as server:
        server.route("/fhir", _server(report_answer="no-include"))
        result = _smart(server)
        targets = [t for t, _ in server.requests if "/DiagnosticReport" in t]
    assert len(targets) == 2 and "_include" in targets[0] and "_include" not in targets[1]
    assert result.complete, result.problems
    assert any(r["resourceType"] == "DiagnosticReport" for r in result.resources)


def test_a_refused_report_read_is_a_gap_and_the_rest_is_read() -> None:
    with hostile_server() as server:
        server.route("/fhir", _server(report_answer="refuse"))
        result = _smart(server)
    assert [p.resource_type for p in result.problems] == ["DiagnosticReport"]
    assert result.problems[0].status == 403
    assert any(r["resourceType"] == "MedicationRequest" for r in result.resources)


def _hook(server: Any, prefetch: dict[str, Any] | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "context": {"patientId": PATIENT},
        "prefetch": prefetch or {},
        "fhirServer": server.base if server else None,
    }
    if server:
        body["fhirAuthorization"] = {"access_token": "t"}
    return body


def test_the_cds_fallback_reads_the_reports_and_a_refusal_is_not_an_error() -> None:
    with hostile_server() as server:
        server.route("/fhir", _server(repeat_observation=True))
        got = fetch.gather(_hook(server, None), KB.loinc_index, 5.0, lambda _: True)
        assert "diagnosticReports" in got.fetched and not got.gaps
        keys = [(r["resourceType"], r.get("id")) for r in got.resources]
        assert len(keys) == len(set(keys))
        server.route("/fhir", _server(report_answer="refuse"))
        refused = fetch.gather(_hook(server, None), KB.loinc_index, 5.0, lambda _: True)
    assert [g.resource_type for g in refused.gaps] == ["DiagnosticReport"]
    assert any(r["resourceType"] == "MedicationRequest" for r in refused.resources)


def test_a_prefetch_without_the_report_key_and_no_server_is_read_in_part() -> None:
    everything = _resources()
    prefetch = {
        q.key: _bundle([r for r in everything if r["resourceType"] == q.resource_type])
        for q in queries.QUERIES
        if not q.by_id and not q.optional
    }
    prefetch["patient"] = next(r for r in everything if r["resourceType"] == "Patient")
    got = fetch.gather(_hook(None, prefetch), KB.loinc_index, 5.0, lambda _: True)
    assert [(g.resource_type, g.kind) for g in got.gaps] == [
        ("DiagnosticReport", client.INCOMPLETE)
    ]
