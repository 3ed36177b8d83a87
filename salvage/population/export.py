"""FHIR Bulk Data Access client (`salvage export`): kick-off with `Prefer: respond-async`, status
polling that honours Retry-After, NDJSON download, and a state file that makes every step
resumable. The files land in the output folder only when every one of them arrived whole, so a
server that fails mid-export leaves a resumable state, never a silently partial population.

Bulk Data Access IG 2.0 (hl7.org/fhir/uv/bulkdata): kick-off answers 202 + Content-Location; the
status URL answers 202 (+ Retry-After, X-Progress) while running, 200 + manifest when done, 4xx/5xx
+ OperationOutcome when the export failed; output files need the token when the manifest says
requiresAccessToken. Authorization: SMART Backend Services (backend_auth.py) when configured.
"""

from __future__ import annotations

import email.utils
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import requests

from salvage.errors import ExportError
from salvage.fhir.queries import USED_TYPES, encode_query
from salvage.fhir.references import FHIR_ID, same_origin
from salvage.population.backend_auth import BackendServices
from salvage.population.progress import Meter

STATE_FILE = ".salvage-export-state"  # no .json suffix: readers skip it
STAGING = ".partial"
NDJSON = "application/fhir+ndjson"
TIMEOUT = 60
TRANSIENT = frozenset({429, 500, 502, 503, 504})
DEFAULT_WAIT = 2.0  # seconds between polls when the server gives no Retry-After
LONGEST_WAIT = 300.0  # a Retry-After further away than this is capped


def export_types() -> list[str]:
    """The resource types the engine reads (salvage/fhir/queries.py): nothing else is exported."""
    return sorted(USED_TYPES)


def system_scopes(types: list[str]) -> str:
    return " ".join(f"system/{t}.read" for t in types)


@dataclass
class ExportRequest:
    base: str
    out: Path
    group: str | None = None
    since: str | None = None
    types: list[str] = field(default_factory=export_types)

    def kickoff_url(self) -> str:
        base = self.base.rstrip("/")
        where = f"{base}/Group/{self.group}/$export" if self.group else f"{base}/$export"
        params = [("_outputFormat", NDJSON), ("_type", ",".join(self.types))]
        if self.since:
            params.append(("_since", self.since))
        return f"{where}?{encode_query(params)}"


@dataclass
class ExportResult:
    files: list[Path]
    resources: int
    server_errors: int  # OperationOutcome entries the server reported in the manifest's error list
    messages: list[str]


class BulkExport:
    """One export into one folder; run() starts, resumes or finishes it."""

    def __init__(
        self,
        request: ExportRequest,
        auth: BackendServices | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        deadline_seconds: float = 6 * 3600,
        meter_stream: Any = None,
    ) -> None:
        if request.group is not None and not FHIR_ID.fullmatch(request.group):
            raise ExportError("--group must be a FHIR id (letters, digits, '-' and '.')")
        self.request = request
        self.auth = auth
        self.session = session or (auth.session if auth else requests.Session())
        self.sleep = sleep
        self.deadline_seconds = deadline_seconds
        self.meter_stream = meter_stream
        self.out = request.out
        self.state_path = self.out / STATE_FILE
        self.state: dict[str, Any] = {}

    # -- state -----------------------------------------------------------------------------------
    def _identity(self) -> dict[str, Any]:
        r = self.request
        return {"base": r.base.rstrip("/"), "group": r.group, "since": r.since, "types": r.types}

    def _load_state(self, restart: bool) -> None:
        if self.state_path.exists():
            try:
                state = orjson.loads(self.state_path.read_bytes())
            except (OSError, orjson.JSONDecodeError) as exc:
                raise ExportError(f"the state file {self.state_path} cannot be read") from exc
            if state.get("identity") != self._identity() and not restart:
                raise ExportError(
                    f"{self.out} holds another export (other server, group, --since or types): "
                    "choose another --out, or --restart to discard it"
                )
            if restart:
                self._cancel(state.get("status_url"))
                shutil.rmtree(self.out / STAGING, ignore_errors=True)
                state = {}
            self.state = state
        if not self.state:
            self.state = {"identity": self._identity(), "status_url": None, "manifest": None}

    def _save_state(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        temporary = self.state_path.with_suffix(".tmp")
        temporary.write_bytes(orjson.dumps(self.state, option=orjson.OPT_INDENT_2))
        os.replace(temporary, self.state_path)

    # -- HTTP ------------------------------------------------------------------------------------
    def _headers(self, accept: str, url: str) -> dict[str, str]:
        headers = {"Accept": accept}
        if self.auth is not None and same_origin(url, self.request.base):
            headers["Authorization"] = f"Bearer {self.auth.token()}"
        return headers

    def _send(self, method: str, url: str, accept: str, **extra: Any) -> requests.Response:
        headers = {**self._headers(accept, url), **extra.pop("headers", {})}
        try:
            reply = self.session.request(method, url, headers=headers, timeout=TIMEOUT, **extra)
            if reply.status_code == 401 and self.auth is not None:  # expired: one new token
                headers["Authorization"] = f"Bearer {self.auth.token(renew=True)}"
                reply = self.session.request(method, url, headers=headers, timeout=TIMEOUT, **extra)
        except requests.RequestException as exc:
            raise _Transient(f"no answer ({type(exc).__name__})") from exc
        return reply

    def _cancel(self, status_url: str | None) -> None:
        if not status_url:
            return
        try:
            self._send("DELETE", status_url, "application/fhir+json")
        except _Transient:
            pass  # the server forgets the job on its own; a new export starts regardless

    # -- steps -----------------------------------------------------------------------------------
    def run(self, restart: bool = False) -> ExportResult:
        self._load_state(restart)
        if self.state.get("complete"):
            files = [self.out / f["name"] for f in self.state["manifest"]["files"]]
            return ExportResult(files, self.state.get("resources", 0), 0, ["already complete"])
        if not self.state.get("status_url"):
            self._kickoff()
        if not self.state.get("manifest"):
            self._poll()
        return self._download_all()

    def _kickoff(self) -> None:
        url = self.request.kickoff_url()
        try:
            reply = self._send(
                "GET", url, "application/fhir+json", headers={"Prefer": "respond-async"}
            )
        except _Transient as exc:
            raise ExportError(f"the export could not be started: {exc}") from exc
        if reply.status_code == 401:
            raise ExportError(
                "the server requires authorization: give --client-id and --private-key "
                "(SMART Backend Services)"
            )
        location = reply.headers.get("Content-Location")
        if reply.status_code != 202 or not location:
            raise ExportError(
                f"the server refused the export (HTTP {reply.status_code}): {_diagnostics(reply)}"
            )
        if not same_origin(location, self.request.base):
            raise ExportError("the status URL is on another server: not followed with the token")
        self.state["status_url"] = location
        self.state["started"] = time.time()
        self._save_state()

    def _poll(self) -> None:
        status_url = self.state["status_url"]
        started = time.monotonic()
        failures = 0
        wait = DEFAULT_WAIT
        meter = Meter("status checks", stream=self.meter_stream)
        with meter:
            while True:
                if time.monotonic() - started > self.deadline_seconds:
                    raise ExportError(
                        "the export is still running on the server; the same command resumes it"
                    )
                try:
                    reply = self._send("GET", status_url, "application/json")
                except _Transient as exc:
                    reply, note = None, str(exc)
                if reply is not None and reply.status_code == 200:
                    self._accept_manifest(reply)
                    return
                if reply is not None and reply.status_code == 202:
                    failures = 0
                    meter.note = reply.headers.get("X-Progress", "")[:60]
                    meter.add()
                    wait = _retry_after(reply, wait)
                    self.sleep(wait)
                    wait = min(wait * 1.5, 60.0) if "Retry-After" not in reply.headers else wait
                    continue
                if reply is not None and reply.status_code not in TRANSIENT:
                    if reply.status_code in (404, 410):
                        raise ExportError(
                            "the server no longer knows this export (expired or deleted): "
                            "run again with --restart"
                        )
                    raise ExportError(
                        f"the export failed on the server (HTTP {reply.status_code}): "
                        f"{_diagnostics(reply)}; run again with --restart"
                    )
                failures += 1
                if reply is not None:
                    note = f"HTTP {reply.status_code}"
                if failures > 5:
                    raise ExportError(
                        f"the status URL kept failing ({note}); the same command resumes the export"
                    )
                self.sleep(_retry_after(reply, DEFAULT_WAIT * 2**failures))

    def _accept_manifest(self, reply: requests.Response) -> None:
        try:
            manifest = orjson.loads(reply.content)
        except orjson.JSONDecodeError as exc:
            raise ExportError("the export manifest is not JSON; run again to resume") from exc
        if not isinstance(manifest, dict) or not isinstance(manifest.get("output"), list):
            raise ExportError("the export manifest has no output list; run again to resume")
        files, per_type = [], dict[str, int]()
        for item in manifest["output"]:
            rtype, url = item.get("type"), item.get("url")
            if not isinstance(rtype, str) or not isinstance(url, str) or not rtype.isalnum():
                raise ExportError("the export manifest lists an output without type or url")
            per_type[rtype] = per_type.get(rtype, 0) + 1
            name = f"{rtype}.{per_type[rtype]:03d}.ndjson"
            files.append({"name": name, "type": rtype, "url": url, "count": item.get("count")})
        errors = [
            {"name": f"error.{i:03d}.ndjson", "url": item.get("url")}
            for i, item in enumerate(manifest.get("error") or [], start=1)
            if isinstance(item, dict) and isinstance(item.get("url"), str)
        ]
        self.state["manifest"] = {
            "transactionTime": manifest.get("transactionTime"),
            "requiresAccessToken": bool(manifest.get("requiresAccessToken", True)),
            "files": files,
            "errors": errors,
        }
        self.state["done"] = {}
        self._save_state()

    def _download_all(self) -> ExportResult:
        manifest = self.state["manifest"]
        done: dict[str, int] = self.state.setdefault("done", {})
        staging = self.out / STAGING
        staging.mkdir(parents=True, exist_ok=True)
        problems: list[str] = []
        meter = Meter("files", total=len(manifest["files"]), stream=self.meter_stream)
        with meter:
            for item in manifest["files"]:
                if item["name"] in done and (staging / item["name"]).exists():
                    meter.add()
                    continue
                try:
                    count = self._download(item, staging / item["name"])
                except _FileProblem as exc:
                    problems.append(f"{item['name']} ({item['type']}): {exc}")
                    self.state.setdefault("file_errors", {})[item["name"]] = str(exc)
                else:
                    done[item["name"]] = count
                    self.state.get("file_errors", {}).pop(item["name"], None)
                self._save_state()
                meter.add()
        if problems:
            raise ExportError(
                f"{len(problems)} of {len(manifest['files'])} files failed; nothing was moved "
                "into the output folder and the same command resumes the download:\n  "
                + "\n  ".join(problems)
            )
        server_errors, messages = self._server_errors(staging)
        for item in manifest["files"]:
            os.replace(staging / item["name"], self.out / item["name"])
        shutil.rmtree(staging, ignore_errors=True)
        self.state["complete"] = True
        self.state["resources"] = sum(done.values())
        self._save_state()
        files = [self.out / item["name"] for item in manifest["files"]]
        return ExportResult(files, self.state["resources"], server_errors, messages)

    def _download(self, item: dict[str, Any], target: Path) -> int:
        url = item["url"]
        if self.state["manifest"]["requiresAccessToken"] and not same_origin(
            url, self.request.base
        ):
            raise _FileProblem("on another server: the token is not sent there")
        last = ""
        for attempt in range(4):
            if attempt:
                self.sleep(DEFAULT_WAIT * 2**attempt)
            try:
                count = self._fetch_file(url, target, item.get("count"))
            except _Transient as exc:
                last = str(exc)
                continue
            return count
        raise _FileProblem(last)

    def _fetch_file(self, url: str, target: Path, expected: Any) -> int:
        try:
            reply = self._send("GET", url, NDJSON, stream=True)
        except _Transient:
            raise
        if reply.status_code in TRANSIENT:
            raise _Transient(f"HTTP {reply.status_code}")
        if reply.status_code != 200:
            raise _FileProblem(f"HTTP {reply.status_code}: {_diagnostics(reply)}")
        partial = target.with_suffix(".download")
        count = 0
        tail = b""
        try:
            with partial.open("wb") as handle:
                for chunk in reply.iter_content(chunk_size=1 << 20):
                    handle.write(chunk)
                    data = tail + chunk
                    lines = data.split(b"\n")
                    tail = lines.pop()
                    for line in lines:
                        count += _check_line(line, count)
        except requests.RequestException as exc:
            raise _Transient(f"connection lost ({type(exc).__name__})") from exc
        if tail.strip():  # the last line may lack its newline, but it must be a whole resource
            count += _check_line(tail, count, truncated=True)
        if isinstance(expected, int) and expected != count:
            raise _Transient(f"{count} resources arrived, the manifest announced {expected}")
        os.replace(partial, target)
        return count

    def _server_errors(self, staging: Path) -> tuple[int, list[str]]:
        """The server's own per-resource problems (manifest 'error' files, OperationOutcomes)."""
        total, messages = 0, []
        for item in self.state["manifest"]["errors"]:
            if not same_origin(item["url"], self.request.base):
                messages.append("an error file on another server was not fetched")
                continue
            try:
                reply = self._send("GET", item["url"], NDJSON)
            except _Transient as exc:
                messages.append(f"error file not fetched ({exc})")
                continue
            if reply.status_code != 200:
                messages.append(f"error file not fetched (HTTP {reply.status_code})")
                continue
            errors_dir = self.out / "errors"
            errors_dir.mkdir(exist_ok=True)
            (errors_dir / item["name"]).write_bytes(reply.content)
            for line in reply.content.splitlines():
                try:
                    outcome = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                for issue in outcome.get("issue") or [] if isinstance(outcome, dict) else []:
                    total += 1
                    text = str(issue.get("diagnostics") or issue.get("code") or "")[:200]
                    messages.append(f"server: {issue.get('severity', 'error')}: {text}")
        return total, messages


class _Transient(Exception):
    """A failure worth retrying (connection, 5xx, 429, a short file)."""


class _FileProblem(Exception):
    """A file that cannot be had (4xx, refused URL) or kept failing."""


def _check_line(line: bytes, number: int, truncated: bool = False) -> int:
    if not line.strip():
        return 0
    try:
        resource = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        reason = "the file ends mid-resource (truncated)" if truncated else "a line is not JSON"
        raise _Transient(f"{reason} after {number} resources") from exc
    if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
        raise _Transient(f"line {number + 1} is not a FHIR resource")
    return 1


def _retry_after(reply: requests.Response | None, default: float) -> float:
    """Retry-After in seconds or as an HTTP date (RFC 9110 10.2.3), capped."""
    value = reply.headers.get("Retry-After") if reply is not None else None
    if not value:
        return min(default, LONGEST_WAIT)
    value = value.strip()
    if value.isdigit():
        return min(float(value), LONGEST_WAIT)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return min(default, LONGEST_WAIT)
    return max(0.0, min(when.timestamp() - time.time(), LONGEST_WAIT))


def _diagnostics(reply: requests.Response) -> str:
    try:
        body = orjson.loads(reply.content)
    except orjson.JSONDecodeError:
        return "no OperationOutcome"
    issues = body.get("issue") if isinstance(body, dict) else None
    if isinstance(issues, list) and issues and isinstance(issues[0], dict):
        return str(issues[0].get("diagnostics") or issues[0].get("code") or "")[:200]
    return "no diagnostics"
