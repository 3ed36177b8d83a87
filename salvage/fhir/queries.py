"""The one query set: what salvage-cds reads about a patient. Prefetch templates (CDS Hooks H5),
the SMART app's searches, the scopes it requests (S12-S14) and the resource types the converter
reads are all derived from QUERIES below; nothing else lists them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

LOINC = "http://loinc.org"
PAGE_SIZE = 200
PATIENT_PLACEHOLDER = "{{context.patientId}}"  # CDS Hooks prefetch token (H5)


@dataclass(frozen=True, slots=True)
class Query:
    """One read of the patient's record: its prefetch key, resource type and search kind."""

    key: str  # prefetch key (CDS Hooks) and label of the read
    resource_type: str
    by_id: bool = False  # Patient/<id> read instead of a search
    observation_codes: bool = False  # restricted to the LOINC codes the rules read
    # Optional reads: refused (403, scope) or absent, the record is said to be read in part, but
    # the answer is still given (required reads that fail end a CDS call instead).
    optional: bool = False
    include: str | None = None  # _include target (the report's result Observations)


QUERIES: tuple[Query, ...] = (
    Query("patient", "Patient", by_id=True),
    Query("medicationRequests", "MedicationRequest"),
    Query("medicationAdministrations", "MedicationAdministration"),
    Query("medicationStatements", "MedicationStatement"),
    Query("conditions", "Condition"),
    Query("procedures", "Procedure"),
    Query("observations", "Observation", observation_codes=True),
    # HIV genotype reports group their mutation Observations, or hold the result as text only
    # (salvage/fhir/genotypes.py); their result Observations may carry no LOINC code the
    # Observation search asks for, so they come with the report (FHIR R4 search, _include).
    Query(
        "diagnosticReports",
        "DiagnosticReport",
        optional=True,
        include="DiagnosticReport:result",
    ),
)
# Orders may name their drug through a Medication resource, read by id after the orders.
REFERENCED_TYPES: tuple[str, ...] = ("Medication",)
READ_TYPES: tuple[str, ...] = tuple(q.resource_type for q in QUERIES) + REFERENCED_TYPES
# Read when a Bundle or export holds them, not searched live (none at present).
FILE_ONLY_TYPES: tuple[str, ...] = ()
USED_TYPES: frozenset[str] = frozenset(READ_TYPES + FILE_ONLY_TYPES)


def encode_query(params: Iterable[tuple[str, str]]) -> str:
    """A query string with every value percent-encoded: '/', ':' and '|' included, because
    proxies in front of FHIR servers (the SMART launcher's) collapse '//' anywhere in a URL."""
    return "&".join(f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in params)


def _params(query: Query, loinc_codes: Iterable[str]) -> list[tuple[str, str]]:
    params = [("patient", PATIENT_PLACEHOLDER)]
    if query.observation_codes:
        params.append(("code", ",".join(f"{LOINC}|{c}" for c in sorted(loinc_codes))))
    if query.include:
        params.append(("_include", query.include))
    params.append(("_count", str(PAGE_SIZE)))
    return params


def _relative(query: Query, loinc_codes: Iterable[str], patient: str) -> str:
    """The read relative to the FHIR base, the patient filled in (or left as the token)."""
    if query.by_id:
        return f"{query.resource_type}/{patient}"
    encoded = encode_query(_params(query, loinc_codes))
    return f"{query.resource_type}?{encoded.replace(quote(PATIENT_PLACEHOLDER, safe=''), patient)}"


def prefetch_templates(loinc_codes: Iterable[str]) -> dict[str, str]:
    """The prefetch templates advertised at discovery (H5), values percent-encoded."""
    codes = sorted(loinc_codes)
    return {q.key: _relative(q, codes, PATIENT_PLACEHOLDER) for q in QUERIES}


def patient_reads(
    loinc_codes: Iterable[str], patient_id: str, keys: Iterable[str] | None = None
) -> dict[str, str]:
    """Reads relative to the FHIR base for one patient, by prefetch key. patient_id must be a
    valid FHIR id (checked by the caller); it is percent-encoded anyway."""
    codes = sorted(loinc_codes)
    wanted = set(keys) if keys is not None else None
    patient = quote(patient_id, safe="")
    return {
        q.key: _relative(q, codes, patient) for q in QUERIES if wanted is None or q.key in wanted
    }


def optional_keys() -> frozenset[str]:
    return frozenset(q.key for q in QUERIES if q.optional)


def query_for_type(resource_type: str) -> Query | None:
    return next((q for q in QUERIES if q.resource_type == resource_type), None)


def keys_by_type() -> Mapping[str, str]:
    return {q.resource_type: q.key for q in QUERIES}
