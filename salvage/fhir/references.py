"""Following references safely: same-origin checks, and the Medications that orders reference."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote, urlsplit

FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")  # FHIR id syntax
BATCH = 50
_DEFAULT_PORTS = {"http": 80, "https": 443}


def same_origin(url: str, base: str) -> bool:
    """True when url is on base's scheme, host and port, and its path lies under base's path on
    a segment boundary: only then may a bearer token for base be sent to it (S11). Paths are
    compared after percent-decoding; any '.' or '..' segment is refused ('/fhir/../../x'), and
    '/fhir-evil/' is not under '/fhir'."""
    try:
        a, b = urlsplit(url), urlsplit(base)
        a_port = a.port or _DEFAULT_PORTS.get(a.scheme)
        b_port = b.port or _DEFAULT_PORTS.get(b.scheme)
    except ValueError:  # a port that is not a number
        return False
    if a.scheme not in _DEFAULT_PORTS or a.scheme != b.scheme or a_port != b_port:
        return False
    if a.username is not None or a.password is not None or not a.hostname:
        return False
    if a.hostname.lower() != (b.hostname or "").lower():
        return False
    path = unquote(a.path)
    if "\\" in path or any(seg in (".", "..") for seg in path.split("/")):
        return False
    prefix = unquote(b.path).rstrip("/")
    return path == prefix or path.startswith(prefix + "/")


def referenced_medication_ids(resources: Iterable[dict[str, Any]], base: str) -> list[str]:
    """Ids of Medications that orders reference and that are not already among resources;
    contained (#id) and other servers' Medications are left out."""
    resources = list(resources)
    have = {
        r["id"]
        for r in resources
        if r.get("resourceType") == "Medication" and isinstance(r.get("id"), str)
    }
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
