"""The scopes the app asks for (the minimum, S14) and what a granted scope lets it read (S15)."""

from __future__ import annotations

import re

from salvage.fhir import queries

READ_TYPES = queries.READ_TYPES  # the one query set decides what is read
# What each type feeds, for the 'could not read' banner.
AFFECTS = {
    "Patient": "age and sex (transplant eligibility, creatinine clearance)",
    "Condition": "the disease, hence which rules and pathways apply; recorded relapses",
    "MedicationRequest": "lines of therapy (orders), stop reasons (refractory, intolerance)",
    "MedicationAdministration": "lines of therapy (given doses), cumulative anthracycline dose",
    "MedicationStatement": "lines of therapy (reported and oral therapies)",
    "Observation": "failures (disease status, PSA, HIV-1 RNA), ECOG, renal function",
    "Procedure": "prostate primary therapy (prostatectomy, radiotherapy)",
    "Medication": "the drugs of orders that reference a separate Medication resource",
    "DiagnosticReport": "HIV genotype reports (drug resistance) and tumour test reports",
}
# Context prefix optional and permissions in any case: Epic grants "Patient.read Patient.search"
# and "patient/Immunization.Read" (issue 18, quirk 12), shaped by the app's registered APIs.
_SCOPE = re.compile(
    r"^(?:(patient|user|system)/)?(\*|[A-Z][A-Za-z]+)\.(read|search|\*|c?r?u?d?s?)(\?.*)?$",
    re.IGNORECASE,
)
# Scopes that grant no resource access, so they never make a grant "uninterpretable".
_NON_RESOURCE = re.compile(
    r"^(launch(/\w+)?|openid|fhirUser|profile|offline_access|online_access|"
    r"smart/orchestrate_launch)$"
)


def requested_scope(*, ehr_launch: bool, v2: bool, offline: bool) -> str:
    parts = ["launch" if ehr_launch else "launch/patient", "openid", "fhirUser"]
    if offline:
        parts.append("offline_access")
    suffix = "rs" if v2 else "read"  # v2 when advertised (S12), v1 otherwise (S13)
    parts += [f"patient/{t}.{suffix}" for t in READ_TYPES]
    return " ".join(parts)


def readable_types(granted: str) -> dict[str, str | None]:
    """For each type: None when it can be searched, else why not. When part of the grant cannot
    be interpreted, the types it does not name are tried anyway (a 403 is then reported by type,
    S15), rather than silently reading nothing."""
    allowed: dict[str, str | None] = {t: "not granted" for t in READ_TYPES}
    uninterpretable = False
    for item in granted.split():
        match = _SCOPE.match(item)
        if not match:
            uninterpretable |= not _NON_RESOURCE.match(item)
            continue
        context, rtype, perm, query = match.groups()
        perm = perm.lower()
        if (context or "").lower() == "system" or not (
            "s" in perm or perm in ("read", "search", "*")
        ):
            continue
        rtype = next((t for t in READ_TYPES if t.lower() == rtype.lower()), rtype)
        for t in READ_TYPES if rtype == "*" else [rtype]:
            if t in allowed:
                allowed[t] = (
                    None
                    if not query
                    else (allowed[t] if allowed[t] is None else f"only {query[1:]}")
                )
    if uninterpretable:
        for t, why in allowed.items():
            if why == "not granted":
                allowed[t] = None
    return allowed
