"""Gather a patient's resources for a hook call: prefetch first (H6), then the FHIR server with the
request's fhirAuthorization (H7): missing prefetch keys, the further pages of paged prefetch
searches, and the Medications that orders (history and drafts) reference. All reads go through
the one FHIR reader (salvage/fhir/client.py) within one wall-clock budget. What could not be read
is returned as gaps, so the answer can say that the data were incomplete."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from salvage.engine.wording import counted
from salvage.errors import FhirUnavailable, PrefetchUnavailable, Unauthorized
from salvage.fhir import client, queries
from salvage.fhir.references import referenced_medication_ids

MISSING = object()


@dataclass
class Gathered:
    resources: list[dict[str, Any]] = field(default_factory=list)
    fetched: list[str] = field(default_factory=list)  # prefetch keys read from the server
    gaps: list[client.ReadProblem] = field(default_factory=list)  # what is missing, and why


def gather(
    body: dict[str, Any],
    loinc_codes: Iterable[str],
    budget_seconds: float,
    fhir_allowed: Callable[[str], bool],
    drafts: Iterable[dict[str, Any]] = (),
    open_server: Callable[[str], bool] = lambda _: False,
) -> Gathered:
    """Resources for the rules, the prefetch keys fetched, and the gaps. The request has been
    validated (patientId is a FHIR id, the access token is a plain token). open_server: the
    client's open_fhir_servers, read without a token when the request has no
    fhirAuthorization (a testing aid for public sandboxes, issue 18 section 2)."""
    prefetch = body.get("prefetch") if isinstance(body.get("prefetch"), dict) else {}
    assert isinstance(prefetch, dict)  # noqa: S101 (narrowing)
    out = Gathered()
    to_fetch: list[queries.Query] = []
    more_pages: list[tuple[queries.Query, str]] = []
    for query in queries.QUERIES:
        value = prefetch.get(query.key, MISSING)
        if value is None:
            continue  # the EHR says: no data (H6)
        if not isinstance(value, dict) or value.get("resourceType") == "OperationOutcome":
            to_fetch.append(query)
            continue
        out.resources += client.resources_of(value)
        next_url = client.next_link(value)
        if next_url is not None:
            more_pages.append((query, next_url))
    drafts = list(drafts)
    server = body.get("fhirServer")
    auth = body.get("fhirAuthorization")
    token = auth.get("access_token") if isinstance(auth, dict) else None
    tokenless = auth is None and isinstance(server, str) and open_server(server)
    if tokenless:
        token = ""  # an open public server: no Authorization header at all
    elif not (isinstance(server, str) and isinstance(token, str) and token):
        optional = [q for q in to_fetch if q.optional]
        to_fetch = [q for q in to_fetch if not q.optional]
        out.gaps += [
            client.ReadProblem(
                q.resource_type,
                client.INCOMPLETE,
                "not prefetched, and no FHIR server was given to read it",
            )
            for q in optional
        ]
        if to_fetch:
            # The CDS Hooks sandbox omits a key whose query failed and sends no
            # fhirAuthorization (quirk 26): name the keys, so the cause can be found.
            raise PrefetchUnavailable(
                f"prefetch lacks {', '.join(q.key for q in to_fetch)} (omitted, or an "
                "OperationOutcome), and the request has no fhirServer with fhirAuthorization "
                "to read them"
            )
        out.gaps += _unreadable_without_server(out.resources, drafts, more_pages)
        out.resources = client.unique_resources(out.resources)
        return out
    assert isinstance(server, str) and isinstance(token, str)  # noqa: S101 (narrowing)
    if not server.startswith(("https://", "http://")) or not (tokenless or fhir_allowed(server)):
        raise Unauthorized("fhirServer is not on the issuer's allowlist")
    reader = client.FhirReader(
        server, client.TokenHolder(token), budget_seconds=budget_seconds, retries=0
    )
    patient_id = str((body.get("context") or {}).get("patientId"))
    relative = queries.patient_reads(loinc_codes, patient_id, [q.key for q in to_fetch])
    reads = {q.key: (relative[q.key], q.resource_type) for q in to_fetch}
    reads |= {f"{q.key} (next pages)": (url, q.resource_type) for q, url in more_pages}
    with reader:  # kept connections reused by the Medication reads
        for key, result in reader.read_many(reads).items():
            out.resources += result.resources
            required = key in relative and key not in queries.optional_keys()
            failed = [p for p in result.problems if p.kind == client.FAILED]
            if required and failed:
                raise FhirUnavailable(failed[0].text)
            out.gaps += result.problems
        out.fetched = [q.key for q in to_fetch]
        medications = reader.read_referenced_medications([*out.resources, *drafts])
    out.resources = client.unique_resources([*out.resources, *medications.resources])
    out.gaps += medications.problems
    return out


def _unreadable_without_server(
    resources: list[dict[str, Any]],
    drafts: list[dict[str, Any]],
    more_pages: list[tuple[queries.Query, str]],
) -> list[client.ReadProblem]:
    """Without fhirServer and a token, further pages and referenced Medications stay unread."""
    gaps = [
        client.ReadProblem(
            q.resource_type,
            client.INCOMPLETE,
            "the prefetched search has further pages, and no FHIR server was given to read them",
        )
        for q, _ in more_pages
    ]
    # Any base: absolute references elsewhere are not ours to read either way.
    unread = referenced_medication_ids([*resources, *drafts], "https://invalid.invalid")
    if unread:
        gaps.append(
            client.ReadProblem(
                "Medication",
                client.INCOMPLETE,
                f"{counted(len(unread), 'medication')} that orders reference "
                f"{'was' if len(unread) == 1 else 'were'} not provided",
            )
        )
    return gaps
