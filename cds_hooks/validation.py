"""Checks on what a CDS client sends, before anything of it is used: values copied into outbound
requests (patientId, the access token), size limits (draft orders, prefetch entries), nesting
depth, and the shape of feedback. A failed check is a 400 or a 413 with a short message that
repeats nothing of the value."""

from __future__ import annotations

import re
from typing import Any

from salvage.errors import BadRequest, TooLarge

MAX_USER_ID = 512  # a "Practitioner/<id>" reference, with room for absolute URLs
MAX_DRAFT_ORDERS = 100
MAX_PREFETCH_ENTRIES = 20_000
MAX_CONTEXT_DEPTH = 40  # FHIR resources in draft orders nest far less deeply
MAX_FEEDBACK_ITEMS = 100
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")  # FHIR R4 id datatype
# RFC 6750 b64token is stricter; any visible ASCII is accepted, never CR, LF, space or non-ASCII,
# since the token is copied into an Authorization header.
ACCESS_TOKEN = re.compile(r"[\x21-\x7e]{1,8192}")


def check_hook_request(body: dict[str, Any]) -> None:
    """Values copied into outbound requests, and limits, for a hook call."""
    context = body.get("context")
    if isinstance(context, dict):
        patient_id = context.get("patientId")
        if isinstance(patient_id, str) and not FHIR_ID.fullmatch(patient_id):
            raise BadRequest("context.patientId is not a valid FHIR id")
        user = context.get("userId")
        if user is not None and not (isinstance(user, str) and 0 < len(user) <= MAX_USER_ID):
            # copied into the requester of emitted proposals: a reference string (H4)
            raise BadRequest("context.userId must be a FHIR reference string")
        if nesting_depth(context, MAX_CONTEXT_DEPTH) > MAX_CONTEXT_DEPTH:
            raise BadRequest(f"context is nested more than {MAX_CONTEXT_DEPTH} levels deep")
        drafts = context.get("draftOrders")
        if drafts is not None and not isinstance(drafts, dict):
            raise BadRequest("context.draftOrders must be a FHIR Bundle")
        entries = drafts.get("entry") if isinstance(drafts, dict) else None
        if isinstance(entries, list) and len(entries) > MAX_DRAFT_ORDERS:
            raise TooLarge(f"more than {MAX_DRAFT_ORDERS} draft orders")
    auth = body.get("fhirAuthorization")
    if auth is not None:
        if not isinstance(auth, dict):
            raise BadRequest("fhirAuthorization must be an object")
        token = auth.get("access_token")
        if token is not None and not (isinstance(token, str) and ACCESS_TOKEN.fullmatch(token)):
            raise BadRequest("fhirAuthorization.access_token is not a valid bearer token")
    server = body.get("fhirServer")
    if server is not None and not (
        isinstance(server, str) and server.isascii() and server.isprintable()
    ):
        raise BadRequest("fhirServer must be a URL")
    prefetch = body.get("prefetch")
    if prefetch is not None and not isinstance(prefetch, dict):
        raise BadRequest("prefetch must be an object")
    if isinstance(prefetch, dict):
        total = 0
        for value in prefetch.values():
            if isinstance(value, dict) and isinstance(value.get("entry"), list):
                total += len(value["entry"])
            else:
                total += 1
        if total > MAX_PREFETCH_ENTRIES:
            raise TooLarge(f"more than {MAX_PREFETCH_ENTRIES} prefetched resources")


def nesting_depth(value: Any, limit: int) -> int:
    """Depth of nested lists and objects, counted up to limit + 1 (without recursion)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, dict | list):
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children)
    return deepest


def feedback_reason(item: dict[str, Any], index: int) -> tuple[str | None, str | None]:
    """(code, display) of an overrideReason, which must be {reason: Coding, userComment?}."""
    override = item.get("overrideReason")
    if override is None:
        return None, None
    if not isinstance(override, dict):
        raise BadRequest(f"feedback[{index}].overrideReason must be an object")
    reason = override.get("reason")
    if reason is None:
        return None, None
    if not isinstance(reason, dict):
        raise BadRequest(f"feedback[{index}].overrideReason.reason must be a Coding")
    code, display = reason.get("code"), reason.get("display")
    for name, value in (("code", code), ("display", display)):
        if value is not None and not isinstance(value, str):
            raise BadRequest(f"feedback[{index}].overrideReason.reason.{name} must be text")
    return code, display


def check_feedback_item(item: Any, index: int) -> None:
    if (
        not isinstance(item, dict)
        or not isinstance(item.get("card"), str)
        or item.get("outcome") not in ("accepted", "overridden")
        or not isinstance(item.get("outcomeTimestamp"), str)
    ):
        raise BadRequest(
            f"feedback[{index}] needs card, outcome (accepted|overridden) and outcomeTimestamp"
        )
    accepted = item.get("acceptedSuggestions")
    if accepted is not None and not isinstance(accepted, list):
        raise BadRequest(f"feedback[{index}].acceptedSuggestions must be a list")
    if nesting_depth(item, 10) > 10:
        raise BadRequest(f"feedback[{index}] is nested too deeply")
