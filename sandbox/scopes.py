"""SMART App Launch 2.x scopes: parse v1 (patient/Observation.read) and v2 (patient/Observation.rs
with ?param=value restrictions) and decide whether a FHIR request is allowed."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

_SCOPE = re.compile(
    r"^(?P<context>patient|user|system)/(?P<type>\*|[A-Z][A-Za-z]+)\."
    r"(?P<perm>read|write|\*|c?r?u?d?s?)(?:\?(?P<query>.+))?$"
)
V1_PERMISSIONS = {"read": "rs", "write": "cud", "*": "cruds"}


@dataclass(frozen=True)
class ResourceScope:
    context: str  # patient | user | system
    resource_type: str  # a type or "*"
    permissions: str  # subset of "cruds"
    restrictions: tuple[tuple[str, str], ...]
    version: int  # 1 or 2
    text: str

    def covers(self, resource_type: str, interaction: str) -> bool:
        return self.resource_type in ("*", resource_type) and interaction in self.permissions


def parse_scope(text: str) -> ResourceScope | None:
    """A resource scope, or None for launch/openid/fhirUser/offline_access and anything unknown."""
    match = _SCOPE.match(text)
    if not match or not match.group("perm"):
        return None
    perm = match.group("perm")
    version = 1 if perm in V1_PERMISSIONS else 2
    permissions = V1_PERMISSIONS.get(perm, perm)
    if version == 2 and perm != "".join(c for c in "cruds" if c in perm):
        return None  # v2 letters must be in cruds order (SMART 2.2 scopes-and-launch-context)
    restrictions = tuple(parse_qsl(match.group("query") or "", keep_blank_values=False))
    return ResourceScope(
        context=match.group("context"),
        resource_type=match.group("type"),
        permissions=permissions,
        restrictions=restrictions,
        version=version,
        text=text,
    )


def resource_scopes(scope: str) -> list[ResourceScope]:
    return [s for s in (parse_scope(t) for t in scope.split()) if s is not None]


def narrow(requested: str, allowed: str) -> str:
    """The requested scopes the client is registered for (a scope may be granted narrower)."""
    allowed_set = set(allowed.split())
    allowed_resources = resource_scopes(allowed)
    granted = []
    for item in requested.split():
        if item in allowed_set:
            granted.append(item)
            continue
        wanted = parse_scope(item)
        if wanted and any(
            a.context == wanted.context
            and a.resource_type in ("*", wanted.resource_type)
            and set(wanted.permissions) <= set(a.permissions)
            and not a.restrictions
            for a in allowed_resources
        ):
            granted.append(item)
    return " ".join(dict.fromkeys(granted))


def matching_scopes(scope: str, resource_type: str, interaction: str) -> list[ResourceScope]:
    return [s for s in resource_scopes(scope) if s.covers(resource_type, interaction)]


def query_satisfies(restrictions: tuple[tuple[str, str], ...], query: str) -> bool:
    """A search satisfies a v2 restriction when it asks for every restricted param=value."""
    params = parse_qsl(query, keep_blank_values=True)
    present: dict[str, set[str]] = {}
    for key, value in params:
        present.setdefault(key.split(":")[0], set()).update(value.split(","))
    return all(value in present.get(key, set()) for key, value in restrictions)


def resource_satisfies(restrictions: tuple[tuple[str, str], ...], resource: dict) -> bool:
    """A read meets a restriction on a token parameter (code, category) when the resource has it."""
    for key, value in restrictions:
        system, _, code = value.rpartition("|")
        concepts = resource.get(key)
        concepts = concepts if isinstance(concepts, list) else [concepts] if concepts else []
        codings = [
            c
            for concept in concepts
            if isinstance(concept, dict)
            for c in concept.get("coding") or []
        ]
        if not any(
            c.get("code") == code and (not system or c.get("system") == system) for c in codings
        ):
            return False
    return True
