"""Per-server search shapes (a registration's `search_profile`, issue 18 quirks 17 and 22).

Epic exposes Observation and Condition through category-specific APIs: an Observation search
without `category` is refused, and Condition.Search returns only active conditions unless
`clinical-status` is given. Oracle lists no `_count` for Condition and Procedure and refuses
undocumented parameters. The profile rewrites the query set's reads for such a server; the
LOINC filter that the server would have applied is then applied here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

from salvage.fhir import queries

# Dropped on a retry after a 400: Oracle refuses _count on some types (quirk 22); a server that
# does not offer _include answers 400 to the report search, which is still worth its reports.
OPTIONAL_PARAMS = ("_count", "_include")


def apply(
    profile: Any, reads: dict[str, tuple[str, str]], patient: str
) -> dict[str, tuple[str, str]]:
    """The reads rewritten for the profile: {label: (relative url, type)}."""
    if profile is None:
        return reads
    out: dict[str, tuple[str, str]] = {}
    for label, (url, rtype) in reads.items():
        if rtype == "Observation" and profile.observation_categories:
            for category in profile.observation_categories:
                params = [("patient", patient), ("category", category)]
                params.append(("_count", str(queries.PAGE_SIZE)))
                out[f"{label} ({category})"] = (_url("Observation", params), rtype)
            continue
        if rtype == "Condition" and (
            profile.condition_categories or profile.condition_clinical_status
        ):
            params = _params(url)
            if profile.condition_categories:
                params.append(("category", ",".join(profile.condition_categories)))
            if profile.condition_clinical_status:
                params.append(("clinical-status", ",".join(profile.condition_clinical_status)))
            url = _url("Condition", params)
        out[label] = (url, rtype)
    if profile.drop_params:
        out = {k: (without(u, profile.drop_params), t) for k, (u, t) in out.items()}
    return out


def without(url: str, names: Iterable[str]) -> str:
    """The relative search url without the named parameters."""
    path, _, _ = url.partition("?")
    dropped = set(names)
    return _url(path, [(k, v) for k, v in _params(url) if k not in dropped])


def keep_rule_observations(
    resources: list[dict[str, Any]], loinc_codes: Iterable[str]
) -> list[dict[str, Any]]:
    """Observations read by category, kept when their code is one the rules read (the filter
    the `code` search parameter applies: Observation.code, not component codes)."""
    wanted = set(loinc_codes)
    kept = []
    for resource in resources:
        if resource.get("resourceType") != "Observation":
            kept.append(resource)
            continue
        code = resource.get("code")
        codings = code.get("coding") if isinstance(code, dict) else None
        if isinstance(codings, list) and any(
            isinstance(c, dict) and c.get("system") == queries.LOINC and c.get("code") in wanted
            for c in codings
        ):
            kept.append(resource)
    return kept


def _params(url: str) -> list[tuple[str, str]]:
    return parse_qsl(url.partition("?")[2], keep_blank_values=True)


def _url(path: str, params: list[tuple[str, str]]) -> str:
    return f"{path}?{queries.encode_query(params)}" if params else path
