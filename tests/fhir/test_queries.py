"""One query set (issue 9 item 3): prefetch templates, SMART reads, requested scopes and the
types the converter reads all come from salvage/fhir/queries.py."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from salvage.fhir import queries, records
from smart_app import scopes


def test_every_list_of_what_is_read_derives_from_the_query_set() -> None:
    types = {q.resource_type for q in queries.QUERIES} | {"Medication"}
    assert set(scopes.READ_TYPES) == types
    # DiagnosticReports (HIV genotype reports) are searched live too, with their results.
    assert set(records.USED_TYPES) == types | set(queries.FILE_ONLY_TYPES)
    scope = scopes.requested_scope(ehr_launch=True, v2=True, offline=False)
    assert {s.split("/")[1].split(".")[0] for s in scope.split() if s.startswith("patient/")} == (
        types
    )
    templates = queries.prefetch_templates(["1-8"])
    assert list(templates) == [q.key for q in queries.QUERIES]
    assert set(queries.patient_reads(["1-8"], "p")) == set(templates)


def test_every_query_value_is_percent_encoded() -> None:
    reads = queries.patient_reads(["21000-5", "2-6"], "p-1")
    for read in reads.values():
        assert "//" not in read and "|" not in read
    query = dict(parse_qsl(urlsplit(reads["observations"]).query))
    assert query == {
        "patient": "p-1",
        "code": "http://loinc.org|2-6,http://loinc.org|21000-5",
        "_count": "200",
    }
    assert queries.prefetch_templates(["2-6"])["patient"] == "Patient/{{context.patientId}}"
