"""Read the launched patient's record: resource types fetched concurrently, every page followed
on the same origin only, explicit timeouts, retries on 429/5xx, refresh once on 401 (S21).

Why not fhirclient here: 4.4.0 follows a Bundle's next link to any host with the bearer token,
sets no timeouts, and its strict R4 models reject unknown elements (STANDARDS.md known gaps).
These reads are plain requests with our own guards; fhirclient is used where it is strong, for
the typed Patient banner (see banner.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests

from salvage.fhir.references import medication_search_urls, referenced_medication_ids, same_origin
from smart_app.scopes import AFFECTS

TIMEOUT = (3.05, 15)
RETRY_STATUSES = {429, 500, 502, 503, 504}
MAX_PAGES = 100


@dataclass
class ReadResult:
    resources: list[dict[str, Any]] = field(default_factory=list)
    problems: list[dict[str, str]] = field(default_factory=list)

    def problem(self, rtype: str, text: str) -> None:
        self.problems.append({"type": rtype, "problem": text, "affects": AFFECTS.get(rtype, "")})


class TokenHolder:
    """The current access token, refreshed at most once at a time across reader threads."""

    def __init__(self, token: str, refresh: Callable[[], str | None]) -> None:
        self.token = token
        self._refresh = refresh
        self._lock = threading.Lock()
        self.refreshed = False

    def renew(self, failed: str) -> str | None:
        with self._lock:
            if self.token != failed:
                return self.token  # another thread already refreshed
            new = self._refresh()
            if new:
                self.token = new
                self.refreshed = True
            return new


def read_patient(
    base: str,
    patient: str,
    types: dict[str, str | None],
    token: TokenHolder,
    observation_codes: list[str],
) -> ReadResult:
    result = ReadResult()
    base = base.rstrip("/")
    jobs: dict[str, str] = {}
    for rtype, why_not in types.items():
        if rtype == "Medication":
            continue  # read after the orders: only the Medications they reference
        if why_not == "not granted":
            result.problem(rtype, "the granted scope does not include it")
            continue
        if why_not:
            result.problem(rtype, f"the granted scope allows {why_not}")
        if rtype == "Patient":
            jobs[rtype] = f"{base}/Patient/{patient}"
        elif rtype == "Observation":
            jobs[rtype] = f"{base}/Observation?patient={patient}&_count=200&code=" + ",".join(
                observation_codes
            )
        else:
            jobs[rtype] = f"{base}/{rtype}?patient={patient}&_count=200"
    with ThreadPoolExecutor(max_workers=min(7, max(1, len(jobs)))) as pool:
        outcomes = dict(
            zip(jobs, pool.map(lambda url: _read_all(url, base, token), jobs.values()), strict=True)
        )
    for rtype, (resources, problem) in outcomes.items():
        result.resources += resources
        if problem:
            result.problem(rtype, problem)
    _read_referenced_medications(base, types.get("Medication"), token, result)
    return result


def _read_referenced_medications(
    base: str, why_not: str | None, token: TokenHolder, result: ReadResult
) -> None:
    """Orders may name their drug through a Medication resource (common in EHRs): read those,
    by id, in batches, on the same server only."""
    ids = referenced_medication_ids(result.resources, base)
    if not ids:
        return
    if why_not == "not granted":
        result.problem(
            "Medication",
            f"the granted scope does not include it, so {len(ids)} "
            "referenced medications are unknown",
        )
        return
    for url in medication_search_urls(base, ids):
        found, problem = _read_all(url, base, token)
        result.resources += found
        if problem:
            result.problem("Medication", problem)


def _read_all(url: str, base: str, token: TokenHolder) -> tuple[list[dict[str, Any]], str | None]:
    found: list[dict[str, Any]] = []
    session = requests.Session()
    for _ in range(MAX_PAGES):
        document, problem = _get(session, url, token)
        if problem or document is None:
            return found, problem or "no response"
        if document.get("resourceType") == "Bundle":
            found += [
                e["resource"]
                for e in document.get("entry") or []
                if isinstance(e, dict) and isinstance(e.get("resource"), dict)
            ]
        else:
            found.append(document)
            return found, None
        next_url = next(
            (
                link.get("url")
                for link in document.get("link") or []
                if link.get("relation") == "next"
            ),
            None,
        )
        if not next_url:
            return found, None
        if not same_origin(next_url, base):
            return found, (
                "a next page pointed to another server and was not followed "
                "(the token is never sent elsewhere): later pages are missing"
            )
        url = next_url
    return found, f"more than {MAX_PAGES} pages: later pages are missing"


def _get(
    session: requests.Session, url: str, token: TokenHolder
) -> tuple[dict[str, Any] | None, str | None]:
    refreshed = False
    for attempt in range(3):
        current = token.token
        try:
            reply = session.get(
                url,
                timeout=TIMEOUT,
                allow_redirects=False,
                headers={"Authorization": f"Bearer {current}", "Accept": "application/fhir+json"},
            )
        except requests.Timeout:
            return None, "the FHIR server did not answer in time"
        except requests.RequestException:
            return None, "the FHIR server could not be reached"
        if reply.status_code == 401 and not refreshed:
            refreshed = True
            if token.renew(current):
                continue
            return None, "access expired and could not be refreshed"
        if reply.status_code in RETRY_STATUSES and attempt < 2:
            wait = reply.headers.get("Retry-After", "")
            time.sleep(min(float(wait), 3.0) if wait.isdigit() else 0.4 * (attempt + 1))
            continue
        if reply.status_code == 404:
            return {"resourceType": "Bundle"}, None
        if reply.status_code != 200:
            return None, f"the FHIR server answered {reply.status_code}"
        try:
            document = reply.json()
        except ValueError:
            return None, "the FHIR server sent an incomplete or invalid response"
        if not isinstance(document, dict):
            return None, "the FHIR server sent an unexpected response"
        return document, None
    return None, "the FHIR server kept failing"
