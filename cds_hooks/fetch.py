"""Gather a patient's resources for a hook call: prefetch first (H6), then the FHIR server with the
request's fhirAuthorization (H7), same-origin paging only, all within one time budget."""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request
from typing import Any

import orjson

from salvage.fhir.references import medication_search_urls, referenced_medication_ids, same_origin

_TOKEN = re.compile(r"\{\{\s*([\w.]+)\s*\}\}")
MISSING = object()


class PrefetchUnavailable(Exception):
    """Required data is neither prefetched nor fetchable (HTTP 412)."""


class DeadlineExceeded(Exception):
    """Outbound FHIR reads did not finish within the budget."""


class FhirUnavailable(Exception):
    """The FHIR server answered with an error for a required read."""


def fill_template(template: str, context: dict[str, Any]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "userPractitionerId":
            return str(context.get("userId", "")).split("/")[-1]
        return str(context.get(name.removeprefix("context."), ""))

    return _TOKEN.sub(value, template)


def resources_of(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, dict):
        return []
    if value.get("resourceType") == "Bundle":
        return [
            e["resource"]
            for e in value.get("entry") or []
            if isinstance(e, dict) and isinstance(e.get("resource"), dict)
        ]
    return [value]


def gather(
    body: dict[str, Any], templates: dict[str, str], budget_seconds: float, fhir_allowed: Any
) -> tuple[list[dict[str, Any]], list[str]]:
    """Resources for the rules plus the names of the prefetch keys that were fetched."""
    prefetch = body.get("prefetch") if isinstance(body.get("prefetch"), dict) else {}
    resources: list[dict[str, Any]] = []
    to_fetch: list[str] = []
    for key in templates:
        value = prefetch.get(key, MISSING)
        if value is None:
            continue  # the EHR says: no data (H6)
        if value is MISSING or (
            isinstance(value, dict) and value.get("resourceType") == "OperationOutcome"
        ):
            to_fetch.append(key)
            continue
        resources += resources_of(value)
    server = body.get("fhirServer")
    auth = body.get("fhirAuthorization")
    can_fetch = (
        isinstance(server, str) and isinstance(auth, dict) and bool(auth.get("access_token"))
    )
    if to_fetch and not can_fetch:
        raise PrefetchUnavailable("prefetch incomplete and no fhirServer/fhirAuthorization")
    if not can_fetch:
        return resources, []
    assert isinstance(server, str) and isinstance(auth, dict)  # noqa: S101 (narrowing)
    if not server.startswith(("https://", "http://")) or not fhir_allowed(server):
        raise PermissionError("fhirServer is not on the issuer's allowlist")
    deadline = time.monotonic() + budget_seconds
    context = body.get("context") or {}
    token = str(auth["access_token"])
    for key in to_fetch:
        url = f"{server.rstrip('/')}/{fill_template(templates[key], context)}"
        resources += _read_all(url, server, token, deadline)
    try:
        resources += _referenced_medications(resources, server, token, deadline)
    except (FhirUnavailable, DeadlineExceeded):
        pass  # optional: those orders stay unmapped, the required data was read
    return resources, to_fetch


def _referenced_medications(
    resources: list[dict[str, Any]], server: str, token: str, deadline: float
) -> list[dict[str, Any]]:
    """Orders may name their drug through a separate Medication resource, which no prefetch
    template can ask for: read the missing ones by id from the same server, within the budget."""
    found: list[dict[str, Any]] = []
    for url in medication_search_urls(server, referenced_medication_ids(resources, server)):
        found += _read_all(url, server, token, deadline)
    return found


def _read_all(url: str, base: str, token: str, deadline: float) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for _ in range(50):  # page limit
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DeadlineExceeded(url.split("?")[0])
        request = urllib.request.Request(  # noqa: S310 (http(s) only, same origin as fhirServer)
            url, headers={"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=remaining) as response:  # noqa: S310
                document = orjson.loads(response.read())
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return found
            raise FhirUnavailable(f"FHIR server answered {error.code}") from error
        except TimeoutError as error:
            raise DeadlineExceeded(url.split("?")[0]) from error
        except (urllib.error.URLError, ConnectionError, orjson.JSONDecodeError) as error:
            raise FhirUnavailable(f"FHIR read failed: {type(error).__name__}") from error
        found += resources_of(document)
        next_url = next(
            (
                link.get("url")
                for link in document.get("link") or []
                if isinstance(link, dict) and link.get("relation") == "next"
            ),
            None,
        )
        if not next_url:
            return found
        if not same_origin(next_url, base):
            return found  # never send the token to another origin (STANDARDS known gap)
        url = next_url
    return found
