"""The EHR side of CDS Hooks 2.0: discovery, prefetch filled from templates, fhirAuthorization,
every request signed with an ES384 JWT (kid + jku of the sandbox JWKS), and feedback."""

from __future__ import annotations

import json
import re
import secrets
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

from joserfc import jwt

from sandbox.keys import SandboxKeys

_TOKEN = re.compile(r"\{\{\s*([\w.]+)\s*\}\}")


class CdsClient:
    def __init__(self, sandbox: Any) -> None:
        self.sandbox = sandbox
        self.config = sandbox.config
        self.keys: SandboxKeys = sandbox.keys

    # -- security ------------------------------------------------------------------------------
    def signed_jwt(self, audience: str) -> str:
        """CDS Hooks 2.0 authorization JWT: aud is the exact endpoint URL called (H16)."""
        now = int(time.time())
        header = {
            "alg": "ES384",
            "typ": "JWT",
            "kid": self.keys.cds.kid,
            "jku": f"{self.config.ehr_base}/.well-known/jwks.json",
        }
        claims = {
            "iss": self.config.ehr_base,
            "aud": audience,
            "exp": now + 300,
            "iat": now,
            "jti": str(uuid.uuid4()),
            "tenant": "sandbox",
        }
        return jwt.encode(header, claims, self.keys.cds, algorithms=["ES384"])

    def _send(
        self, method: str, url: str, body: Any = None, timeout: float = 10
    ) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            url,
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.signed_jwt(url)}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as error:
            raw = error.read()
            try:
                return error.code, json.loads(raw) if raw else None
            except ValueError:
                return error.code, raw.decode("utf-8", "replace")
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            return 0, f"CDS service unreachable: {error}"

    # -- protocol ------------------------------------------------------------------------------
    def discover(self, discovery_url: str) -> list[dict[str, Any]]:
        return self.discover_or_error(discovery_url)[0]

    def discover_or_error(self, discovery_url: str) -> tuple[list[dict[str, Any]], str | None]:
        """The services, or why discovery failed (shown on the chart: an EHR that silently
        shows no cards when its CDS service is unreachable hides a broken integration)."""
        status, body = self._send("GET", discovery_url)
        if status != 200 or not isinstance(body, dict):
            why = body if isinstance(body, str) else f"HTTP {status}"
            return [], f"discovery at {discovery_url} failed: {why}"[:300]
        return [s for s in body.get("services", []) if isinstance(s, dict)], None

    def fhir_authorization(self, patient: str, user: str) -> dict[str, Any]:
        """A short-lived, read-only token for this patient, for the service's own FHIR reads."""
        token = secrets.token_urlsafe(32)
        lifetime = 300
        self.sandbox.store.put(
            "token",
            "access_token",
            token,
            {
                "client_id": "cds-service",
                "scope": self.config.cds_fhir_scope,
                "user": user,
                "patient": patient,
                "encounter": None,
            },
            time.time() + lifetime,
        )
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": lifetime,
            "scope": self.config.cds_fhir_scope,
            "subject": "cds-service",
            "patient": patient,
        }

    def prefetch(self, templates: dict[str, str], context: dict[str, Any]) -> dict[str, Any]:
        """Fill each template and read it from the FHIR server (all pages of a search)."""
        backend_get = self.sandbox.backend_get
        values: dict[str, Any] = {}
        user_id = str(context.get("userId", "")).split("/")[-1]
        for key, template in templates.items():

            def fill(match: re.Match[str]) -> str:
                name = match.group(1)
                if name == "userPractitionerId":
                    return user_id
                return str(context.get(name.removeprefix("context."), ""))

            query = _TOKEN.sub(fill, template)
            status, body = backend_get(query)
            if status == 404:
                values[key] = None
                continue
            if status != 200:
                continue  # key left out: the service may fetch it itself (H6)
            resource = json.loads(body)
            if resource.get("resourceType") == "Bundle":
                resource = self._all_pages(resource)
            values[key] = json.loads(
                json.dumps(resource).replace(self.config.backend_base, self.config.fhir_base)
            )
        return values

    def _all_pages(self, bundle: dict[str, Any]) -> dict[str, Any]:
        backend_get = self.sandbox.backend_get
        entries = list(bundle.get("entry", []))
        page = bundle
        for _ in range(100):
            nxt = next(
                (link["url"] for link in page.get("link", []) if link.get("relation") == "next"),
                None,
            )
            if not nxt or not nxt.startswith(self.config.backend_base):
                break
            status, body = backend_get(nxt[len(self.config.backend_base) + 1 :])
            if status != 200:
                break
            page = json.loads(body)
            entries += page.get("entry", [])
        return {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(entries),
            "entry": entries,
        }

    def call(
        self,
        service: dict[str, Any],
        base_url: str,
        hook: str,
        context: dict[str, Any],
        *,
        send_prefetch: bool = True,
    ) -> tuple[int, Any, dict[str, Any]]:
        """POST the hook request; returns (status, response body, request sent)."""
        body: dict[str, Any] = {
            "hook": hook,
            "hookInstance": str(uuid.uuid4()),
            "context": context,
            "fhirServer": self.config.fhir_base,
            "fhirAuthorization": self.fhir_authorization(context["patientId"], context["userId"]),
        }
        if send_prefetch and service.get("prefetch"):
            body["prefetch"] = self.prefetch(service["prefetch"], context)
        status, answer = self._send("POST", f"{base_url}/{service['id']}", body)
        sent = {k: v for k, v in body.items() if k != "fhirAuthorization"}
        return status, answer, sent

    def feedback(self, base_url: str, service_id: str, item: dict[str, Any]) -> int:
        status, _ = self._send("POST", f"{base_url}/{service_id}/feedback", {"feedback": [item]})
        return status
