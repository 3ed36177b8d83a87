"""THE FHIR server reader, for the SMART app and the CDS Hooks fallback fetch alike: every page of a
search, on the base's origin only, within one wall-clock deadline, with bounded responses.

Guarantees, each one a defect seen in practice (issue 14):
- redirects are never followed: a 3xx is a read failure, so the bearer token never leaves the
  FHIR base (S11, H7);
- the deadline covers the whole exchange: connect, request, headers, body and every page; each
  socket operation may only use the time that is left, so a server trickling bytes cannot hold a
  worker longer than the budget;
- responses are capped in size and searches in pages; `next` links are followed only on the
  base's scheme, host, port and path (after normalising the path);
- whatever the server sends (not JSON, not an object, `link: 5`, broken chunking, a short body, an
  over-long header line...) becomes a ReadProblem: no exception escapes `read`.
Token material and URLs (which hold patient ids) never appear in problems or logs.

Why not fhirclient or requests here: fhirclient follows next links to any host with the token and
sets no timeouts; requests' timeouts apply per socket read, not to the whole exchange.
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson

from salvage.fhir import transport
from salvage.fhir.references import (
    medication_search_urls,
    referenced_medication_ids,
    same_origin,
)

log = logging.getLogger("salvage.fhir")
MAX_PAGES = 50
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
SEARCH_REFUSED = frozenset({400, 403, 405, 501})  # a search the server does not offer
MAX_MEDICATION_READS = 50
_CHUNK = 64 * 1024

# ReadProblem kinds
TIMEOUT = "timeout"  # the deadline ran out: later data are missing
FAILED = "failed"  # the server could not be read (error status, bad answer, redirect...)
INCOMPLETE = "incomplete"  # read, but pages are missing (page cap, next link elsewhere)


@dataclass(frozen=True, slots=True)
class ReadProblem:
    """Why a read is incomplete, in words for people: no URL, id or token."""

    resource_type: str
    kind: str  # TIMEOUT, FAILED or INCOMPLETE
    text: str
    status: int | None = None  # the HTTP status that ended the read, when there was one


@dataclass
class ReadResult:
    """The one result type of FHIR reads: what was read, and what could not be."""

    resources: list[dict[str, Any]] = field(default_factory=list)
    problems: list[ReadProblem] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.problems

    @property
    def timed_out(self) -> bool:
        return any(p.kind == TIMEOUT for p in self.problems)

    def extend(self, other: ReadResult) -> None:
        self.resources += other.resources
        self.problems += other.problems


class TokenHolder:
    """The current access token, refreshed at most once at a time across reader threads (S21).
    Without a refresh function (CDS Hooks: the EHR's token is used as given) a 401 is final."""

    def __init__(self, token: str, refresh: Callable[[], str | None] | None = None) -> None:
        self.token = token
        self._refresh = refresh
        self._lock = threading.Lock()
        self.refreshed = False
        self.refused = False  # a refresh was needed and the EHR refused it

    def renew(self, failed: str) -> str | None:
        if self._refresh is None:
            return None
        with self._lock:
            if self.token != failed:
                return self.token  # another thread already refreshed
            new = self._refresh()
            if new:
                self.token = new
                self.refreshed = True
            else:
                self.refused = True
            return new


class _Failure(Exception):
    def __init__(self, kind: str, text: str, status: int | None = None) -> None:
        super().__init__(text)
        self.kind = kind
        self.text = text
        self.status = status


# What a kept connection the server closed while idle raises on its next request.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


def _close_all(
    idle: list[tuple[tuple[str, str, int], transport.Connection]], lock: threading.Lock
) -> None:
    with lock:
        connections = [connection for _, connection in idle]
        idle.clear()
    for connection in connections:
        connection.close()


class FhirReader:
    """Reads from one FHIR base with one token holder, all reads sharing one deadline."""

    def __init__(
        self,
        base: str,
        token: TokenHolder,
        *,
        budget_seconds: float,
        max_pages: int = MAX_PAGES,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        retries: int = 0,
    ) -> None:
        self.base = base.rstrip("/")
        self.token = token
        self.deadline = time.monotonic() + budget_seconds
        self.max_pages = max_pages
        self.max_response_bytes = max_response_bytes
        self.retries = retries
        # Keep-alive connections between reads (one per concurrent read at most): a summary's
        # reads and pages reuse them instead of a TCP (and TLS) handshake each.
        self._idle: list[tuple[tuple[str, str, int], transport.Connection]] = []
        self._lock = threading.Lock()
        self.connections_opened = 0
        # A reader dropped without close() still closes what it kept.
        self._finalizer = weakref.finalize(self, _close_all, self._idle, self._lock)

    def __enter__(self) -> FhirReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections kept for reuse."""
        self._finalizer()

    def _take(self, scheme: str, host: str, port: int) -> transport.Connection:
        origin = (scheme, host, port)
        with self._lock:
            for index, (kept, connection) in enumerate(self._idle):
                if kept == origin:
                    del self._idle[index]
                    return connection
            self.connections_opened += 1
        return transport.Connection(scheme, host, port, self.deadline)

    def _give_back(self, origin: tuple[str, str, int], connection: transport.Connection) -> None:
        if connection.sock is None:  # closed after an error or a `Connection: close` answer
            return
        if not self._finalizer.alive:  # read after close(): nothing is kept any more
            connection.close()
            return
        with self._lock:
            self._idle.append((origin, connection))

    # -- public API ---------------------------------------------------------------------------
    def read(self, relative_or_url: str, resource_type: str) -> ReadResult:
        """Every page of one read or search (relative to the base, or an absolute URL on it)."""
        url = (
            relative_or_url
            if relative_or_url.startswith(("http://", "https://"))
            else f"{self.base}/{relative_or_url.lstrip('/')}"
        )
        result = ReadResult()
        try:
            self._read_pages(url, resource_type, result)
        except _Failure as failure:
            result.problems.append(
                ReadProblem(resource_type, failure.kind, failure.text, failure.status)
            )
        except Exception:  # whatever a server sends is a read failure, never a 500
            result.problems.append(
                ReadProblem(resource_type, FAILED, "the FHIR server's answer could not be read")
            )
        return result

    def read_many(self, reads: Mapping[str, tuple[str, str]]) -> dict[str, ReadResult]:
        """Several reads concurrently: {label: (relative url, resource type)} -> {label: result}."""
        if not reads:
            return {}
        with ThreadPoolExecutor(max_workers=min(7, len(reads))) as pool:
            futures = {
                label: pool.submit(self.read, url, rtype) for label, (url, rtype) in reads.items()
            }
            return {label: future.result() for label, future in futures.items()}

    def read_referenced_medications(self, resources: Iterable[dict[str, Any]]) -> ReadResult:
        """The Medications that orders reference and that are not among resources, by id, in
        batches, on this server only."""
        result = ReadResult()
        ids = referenced_medication_ids(resources, self.base)
        for url in medication_search_urls(self.base, ids):
            batch = url.split("_id=", 1)[1].split("&", 1)[0].split(",")
            found = self.read(url, "Medication")
            if any(p.status in SEARCH_REFUSED for p in found.problems):
                # Epic offers Medication.Read, not Medication.Search (issue 18, quirk 17): read
                # each one by id instead.
                found = ReadResult()
                for mid in batch[:MAX_MEDICATION_READS]:
                    found.extend(self.read(f"Medication/{mid}", "Medication"))
                if len(batch) > MAX_MEDICATION_READS:
                    found.problems.append(
                        ReadProblem(
                            "Medication",
                            INCOMPLETE,
                            f"{len(batch) - MAX_MEDICATION_READS} referenced medications were "
                            "not read (the server offers no Medication search)",
                        )
                    )
            result.extend(found)
        return result

    # -- paging ---------------------------------------------------------------------------------
    def _read_pages(self, url: str, resource_type: str, result: ReadResult) -> None:
        if not same_origin(url, self.base):
            raise _Failure(FAILED, "the read is not on the FHIR server's origin")
        parts = urlsplit(url)
        port = parts.port or _default_port(parts.scheme)
        origin = (parts.scheme, parts.hostname or "", port)
        connection = self._take(*origin)
        first = url
        try:
            for _ in range(self.max_pages):
                document = self._get(connection, url)
                if document.get("resourceType") != "Bundle":
                    result.resources.append(document)
                    return
                result.resources += _bundle_resources(document)
                next_url = _next_link(document)
                if next_url is None:
                    return
                next_url = _upgraded(next_url, self.base)
                if not same_origin(next_url, self.base):
                    raise _Failure(
                        INCOMPLETE,
                        "a next page pointed to another server and was not followed "
                        "(the token is never sent elsewhere): later pages are missing",
                    )
                url = next_url
            raise _Failure(INCOMPLETE, f"more than {self.max_pages} pages: later pages are missing")
        except _Failure as failure:
            if result.resources and url != first and failure.kind == FAILED:
                # HAPI's paging links expire (410 Gone, issue 18 quirk 9): what was read stays,
                # and the gap says that later pages are missing.
                raise _Failure(INCOMPLETE, f"{failure.text}: later pages are missing") from None
            raise
        except BaseException:
            connection.close()  # mid-exchange or after an unexpected answer: never reused
            raise
        finally:
            self._give_back(origin, connection)

    def _get(self, connection: transport.Connection, url: str) -> dict[str, Any]:
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        refreshed = False
        attempt = 0
        while True:
            current = self.token.token
            status, body, retry_after = self._exchange(connection, target, current)
            if status == 401 and not refreshed:
                refreshed = True
                if self.token.renew(current):
                    continue
                raise _Failure(FAILED, "access was refused and could not be renewed")
            if status in RETRY_STATUSES and attempt < self.retries:
                if attempt and status == 500 and b"OperationOutcome" in body[:4096]:
                    # Oracle answers 500 with an OperationOutcome when a record lacks a required
                    # field (quirk 23): deterministic, so one retry, not the whole budget.
                    raise _Failure(FAILED, "the FHIR server answered 500 (an error it repeats)")
                attempt += 1
                wait = min(retry_after if retry_after is not None else 0.4 * attempt, 3.0)
                if time.monotonic() + wait >= self.deadline:
                    raise _Failure(TIMEOUT, "the FHIR server did not answer in time")
                time.sleep(wait)
                continue
            if status == 404:
                return {"resourceType": "Bundle"}  # nothing there: an empty search
            if 300 <= status < 400:
                raise _Failure(FAILED, f"the FHIR server redirected ({status}): not followed")
            if status == 403:
                # Epic: WWW-Authenticate: Bearer error="insufficient_scope" (quirk 12).
                raise _Failure(
                    FAILED, "the FHIR server refused access to it (403, not granted)", status
                )
            if status == 410:
                raise _Failure(FAILED, "the FHIR server's search has expired (410 Gone)", status)
            if status != 200:
                raise _Failure(FAILED, f"the FHIR server answered {status}", status)
            try:
                document = orjson.loads(body)
            except orjson.JSONDecodeError as error:
                raise _Failure(
                    FAILED, "the FHIR server sent an incomplete or invalid response"
                ) from error
            if not isinstance(document, dict) or not isinstance(document.get("resourceType"), str):
                raise _Failure(FAILED, "the FHIR server sent something that is not a resource")
            return document

    def _exchange(
        self, connection: transport.Connection, target: str, token: str
    ) -> tuple[int, bytes, float | None]:
        """One GET: (status, body, Retry-After seconds). Transport errors become _Failure. A kept
        connection the server has closed meanwhile is opened again once (a GET is idempotent)."""
        reused = connection.sock is not None
        try:
            headers = {"Accept": "application/fhir+json"}
            if token:  # an open public server gets no Authorization header at all
                headers["Authorization"] = f"Bearer {token}"
            connection.request("GET", target, headers=headers)
            response = connection.getresponse()
            length = response.getheader("Content-Length")
            if length is not None and length.isdigit() and int(length) > self.max_response_bytes:
                connection.close()
                raise _Failure(FAILED, "the FHIR server's answer is larger than allowed")
            chunks: list[bytes] = []
            size = 0
            while chunk := response.read(_CHUNK):
                size += len(chunk)
                if size > self.max_response_bytes:
                    connection.close()
                    raise _Failure(FAILED, "the FHIR server's answer is larger than allowed")
                chunks.append(chunk)
            wait = response.getheader("Retry-After", "")
            return response.status, b"".join(chunks), float(wait) if wait.isdigit() else None
        except _Failure:
            raise
        except TimeoutError as error:
            connection.close()
            raise _Failure(TIMEOUT, "the FHIR server did not answer in time") from error
        except (OSError, http.client.HTTPException, ValueError) as error:
            connection.close()
            if reused and isinstance(error, _STALE) and time.monotonic() < self.deadline:
                return self._exchange(connection, target, token)  # now on a new connection
            log.info("FHIR read failed: %s", type(error).__name__)  # never the URL or token
            if time.monotonic() >= self.deadline:
                raise _Failure(TIMEOUT, "the FHIR server did not answer in time") from error
            raise _Failure(FAILED, "the FHIR server could not be read") from error


def _upgraded(url: str, base: str) -> str:
    """An http:// next link from an https base on the same host, upgraded to https: HAPI behind
    a TLS proxy emits http links unless its address is configured (quirk 10). The token is never
    sent over http; any other link is judged by the same-origin rule."""
    parts, origin = urlsplit(url), urlsplit(base)
    if (
        parts.scheme == "http"
        and origin.scheme == "https"
        and parts.hostname
        and parts.hostname.lower() == (origin.hostname or "").lower()
        and parts.port in (None, 80)
    ):
        return parts._replace(scheme="https", netloc=origin.netloc).geturl()
    return url


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def _bundle_resources(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    entries = bundle.get("entry")
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise _Failure(FAILED, "the FHIR server sent a Bundle whose entry is not a list")
    return [
        e["resource"]
        for e in entries
        if isinstance(e, dict) and isinstance(e.get("resource"), dict)
    ]


def _next_link(bundle: dict[str, Any]) -> str | None:
    links = bundle.get("link")
    if links is None:
        return None
    if not isinstance(links, list):
        raise _Failure(FAILED, "the FHIR server sent a Bundle whose link is not a list")
    for link in links:
        if isinstance(link, dict) and link.get("relation") == "next":
            url = link.get("url")
            if not isinstance(url, str) or not url:
                raise _Failure(FAILED, "the FHIR server sent a next link that is not a URL")
            return url
    return None


def unique_resources(resources: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each resource once, by type and id, first copy kept: a report's _include repeats the
    Observations the Observation search already read, and a result counted twice would count as
    two measurements. Resources without an id are all kept (nothing says they are the same)."""
    seen: set[tuple[str, str]] = set()
    out = []
    for resource in resources:
        rtype, rid = resource.get("resourceType"), resource.get("id")
        if isinstance(rtype, str) and isinstance(rid, str) and rid:
            if (rtype, rid) in seen:
                continue
            seen.add((rtype, rid))
        out.append(resource)
    return out


def resources_of(value: Any) -> list[dict[str, Any]]:
    """The resources of a prefetch value: a Bundle's entries, or the resource itself."""
    if not isinstance(value, dict):
        return []
    if value.get("resourceType") == "Bundle":
        entries = value.get("entry")
        if not isinstance(entries, list):
            return []
        return [
            e["resource"]
            for e in entries
            if isinstance(e, dict) and isinstance(e.get("resource"), dict)
        ]
    return [value]


def next_link(bundle: Any) -> str | None:
    """The next-page URL of a (prefetched) Bundle, or None, whatever the Bundle holds."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        return None
    try:
        return _next_link(bundle)
    except _Failure:
        return None
