"""Following references safely: same-origin checks, and the Medications that orders reference."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlparse

FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")  # FHIR id syntax
BATCH = 50


def same_origin(url: str, base: str) -> bool:
    """True when url is on base's scheme, host and port, under base's path: only then may a
    bearer token for base be sent to it."""
    a, b = urlparse(url), urlparse(base)
    return (a.scheme, a.netloc) == (b.scheme, b.netloc) and a.path.startswith(b.path.rstrip("/"))


def referenced_medication_ids(resources: Iterable[dict[str, Any]], base: str) -> list[str]:
    """Ids of Medications that orders reference and that are not already among resources;
    contained (#id) and other servers' Medications are left out."""
    resources = list(resources)
    have = {r.get("id") for r in resources if r.get("resourceType") == "Medication"}
    wanted: set[str] = set()
    for resource in resources:
        reference = resource.get("medicationReference")
        ref = reference.get("reference") if isinstance(reference, dict) else None
        if not isinstance(ref, str) or ref.startswith("#"):
            continue
        if ref.startswith(("http://", "https://")) and not same_origin(ref, base):
            continue  # a Medication on another server is never fetched with this token
        rid = ref.rstrip("/").split("/")[-1]
        if FHIR_ID.fullmatch(rid) and rid not in have:
            wanted.add(rid)
    return sorted(wanted)


def medication_search_urls(base: str, ids: list[str]) -> list[str]:
    """Medication?_id= searches in batches, each answered on one page."""
    base = base.rstrip("/")
    return [
        f"{base}/Medication?_id={','.join(ids[i : i + BATCH])}&_count={BATCH}"
        for i in range(0, len(ids), BATCH)
    ]
