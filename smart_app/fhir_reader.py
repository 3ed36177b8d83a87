"""Read the launched patient's record for the screen through the one FHIR reader
(salvage/fhir/client.py): the query set's reads concurrently, every page on the same origin only,
one deadline over the whole read, retries on 429/5xx and one refresh on 401 (S21). What the
granted scope or the server did not let us read becomes a data gap shown to the user (S15)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from salvage.fhir import client, queries, search_profiles
from salvage.fhir.client import ReadProblem, ReadResult, TokenHolder
from salvage.fhir.references import referenced_medication_ids
from smart_app.scopes import AFFECTS

__all__ = ["ReadResult", "TokenHolder", "data_gaps", "read_patient"]

BUDGET_SECONDS = 20.0  # the whole read of one patient, every type and page
MAX_PAGES = 100
RETRIES = 2


def read_patient(
    base: str,
    patient: str,
    types: dict[str, str | None],
    token: TokenHolder,
    loinc_codes: Iterable[str],
    budget_seconds: float = BUDGET_SECONDS,
    profile: Any = None,
) -> ReadResult:
    """Every read of the query set the granted scope allows, then the referenced Medications.
    profile: the registration's search_profile (Epic's category APIs, Oracle's parameters)."""
    loinc_codes = list(loinc_codes)
    result = ReadResult()
    reader = client.FhirReader(
        base, token, budget_seconds=budget_seconds, max_pages=MAX_PAGES, retries=RETRIES
    )
    relative = queries.patient_reads(loinc_codes, patient)
    reads: dict[str, tuple[str, str]] = {}
    for query in queries.QUERIES:
        why_not = types.get(query.resource_type)
        if why_not == "not granted":
            result.problems.append(
                ReadProblem(
                    query.resource_type, client.INCOMPLETE, "the granted scope does not include it"
                )
            )
            continue
        if why_not:
            result.problems.append(
                ReadProblem(
                    query.resource_type, client.INCOMPLETE, f"the granted scope allows {why_not}"
                )
            )
        reads[query.key] = (relative[query.key], query.resource_type)
    reads = search_profiles.apply(profile, reads, patient)
    with reader:  # one kept connection per concurrent read, reused by pages and Medications
        answers = reader.read_many(reads)
        # A server that refuses an optional parameter with 400 (Oracle: no _count on Condition
        # and Procedure, quirk 22) is asked once more without it.
        retry = {
            label: (search_profiles.without(url, search_profiles.OPTIONAL_PARAMS), rtype)
            for label, (url, rtype) in reads.items()
            if any(p.status == 400 for p in answers[label].problems)
            and search_profiles.without(url, search_profiles.OPTIONAL_PARAMS) != url
        }
        answers |= reader.read_many(retry)
        optional = queries.optional_keys()
        for label, read in answers.items():
            if label not in optional and profile is not None and profile.observation_categories:
                # The report's included result Observations are kept whatever their code: a
                # genotype's mutation list is not among the codes the Observation search asks.
                read.resources = search_profiles.keep_rule_observations(read.resources, loinc_codes)
            result.extend(read)
        result.resources = client.unique_resources(result.resources)
        _read_referenced_medications(reader, types.get("Medication"), result)
    return result


def _read_referenced_medications(
    reader: client.FhirReader, why_not: str | None, result: ReadResult
) -> None:
    """Orders may name their drug through a Medication resource (common in EHRs): read those,
    by id, in batches, on the same server only."""
    if why_not == "not granted":
        count = len(referenced_medication_ids(result.resources, reader.base))
        if count:
            result.problems.append(
                ReadProblem(
                    "Medication",
                    client.INCOMPLETE,
                    f"the granted scope does not include it, so {count} "
                    "referenced medications are unknown",
                )
            )
        return
    result.extend(reader.read_referenced_medications(result.resources))


def data_gaps(result: ReadResult) -> list[dict[str, str]]:
    """The problems as the screen shows them: type, problem, and what that type feeds."""
    return [
        {"type": p.resource_type, "problem": p.text, "affects": AFFECTS.get(p.resource_type, "")}
        for p in result.problems
    ]
