"""The CDS Hooks blueprint: discovery, the three services, feedback, CORS. A view parses the
request, gathers data, calls the core, and renders cards; errors become JSON in one place."""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from flask import Blueprint, Response, current_app, g, request

from cds_hooks import cards as card_rules
from cds_hooks import drafts as draft_orders
from cds_hooks import fetch, validation
from cds_hooks.incomplete import incomplete_data_card
from cds_hooks.security import verify_request_jwt
from salvage import service
from salvage.errors import BadRequest, DatabaseUnavailable, TooLarge, Unauthorized
from salvage.fhir import queries

log = logging.getLogger("salvage.cds")
bp = Blueprint("cds_hooks", __name__)

SERVICES = {
    "salvage-order-select": {
        "hook": "order-select",
        "title": "Salvage therapy check at order selection",
        "description": "Warns when a selected order repeats a failed or not-tolerated therapy or "
        "is contraindicated by the patient's data, and proposes fitting salvage "
        "options.",
    },
    "salvage-order-sign": {
        "hook": "order-sign",
        "title": "Salvage therapy check at order signing",
        "description": "The same checks as at selection, on the whole set of orders to sign.",
    },
    "salvage-patient-view": {
        "hook": "patient-view",
        "title": "Salvage therapy reminder",
        "description": "Reminds when a documented treatment failure has no new line of therapy "
        "within the disease's timing threshold.",
    },
}
REQUIRED_CONTEXT = {
    "order-select": ("userId", "patientId", "draftOrders", "selections"),
    "order-sign": ("userId", "patientId", "draftOrders"),
    "patient-view": ("userId", "patientId"),
}


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status=status, mimetype="application/json")


def _error(status: int, message: str | None) -> Response:
    if status == 401:
        return Response(status=401)  # no detail for authentication failures (H17)
    return _json({"error": message}, status)


def prefetch_templates() -> dict[str, str]:
    return queries.prefetch_templates(current_app.extensions["salvage_kb"].loinc_index)


def _clients() -> dict[str, Any]:
    """The trusted clients create_app loaded and validated at start-up."""
    clients: dict[str, Any] = current_app.extensions["salvage_cds_clients"]
    return clients


def _authenticate() -> Any:
    if current_app.config.get("CDS_INSECURE_DEV"):
        return None
    audience = f"{str(current_app.config['BASE_URL']).rstrip('/')}{request.path}"
    db = current_app.extensions["salvage_db"]
    endpoint = request.path.removeprefix("/cds-services").strip("/")
    client = verify_request_jwt(
        request.headers.get("Authorization"),
        audience,
        _clients(),
        db.first_use_of_jti,
        endpoint=endpoint,
    )
    if client.dev_only:
        g.salvage_dev_client = client.iss
    return client


@bp.after_request
def _cors_and_log(response: Response) -> Response:
    origins = [
        o.strip() for o in str(current_app.config.get("CORS_ORIGINS") or "").split(",") if o.strip()
    ]
    origin = request.headers.get("Origin")
    if origin and ("*" in origins or origin in origins):
        response.headers["Access-Control-Allow-Origin"] = origin if "*" not in origins else "*"
        response.headers["Vary"] = "Origin"
        response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        response.headers["Access-Control-Max-Age"] = "600"
    if current_app.config.get("CDS_INSECURE_DEV"):
        log.warning(
            "%s %s -> %s [INSECURE DEV MODE: JWT checks are off]",
            request.method,
            request.path,
            response.status_code,
        )
    elif g.get("salvage_dev_client"):
        log.warning(
            "%s %s -> %s [DEV-ONLY CLIENT %s: its signing key is public, anyone can call as it]",
            request.method,
            request.path,
            response.status_code,
            g.salvage_dev_client,
        )
    else:
        log.info("%s %s -> %s", request.method, request.path, response.status_code)
    return response


def _authenticated_json(what: str) -> tuple[Any, Any, Response | None]:
    """(trusted client, parsed body, None) or (None, None, the error response): the JWT is
    checked before the body is read."""
    try:
        client = _authenticate()
    except Unauthorized as exc:
        log.info("%s refused: %s", what, exc)
        return None, None, _error(401, None)
    try:
        return client, orjson.loads(request.get_data()), None
    except orjson.JSONDecodeError:
        return None, None, _error(400, "request body is not valid JSON")


@bp.route("/cds-services", methods=["GET", "OPTIONS"])
def discovery() -> Response:
    if request.method == "OPTIONS":
        return Response(status=204)
    try:
        _authenticate()
    except Unauthorized as exc:
        log.info("discovery refused: %s", exc)
        return _error(401, None)
    templates = prefetch_templates()
    return _json(
        {
            "services": [
                {
                    "id": sid,
                    "hook": s["hook"],
                    "title": s["title"],
                    "description": s["description"],
                    "prefetch": templates,
                }
                for sid, s in SERVICES.items()
            ]
        }
    )


@bp.route("/cds-services/<service_id>", methods=["POST", "OPTIONS"])
def call_service(service_id: str) -> Response:
    if service_id not in SERVICES:
        return _error(404, f"unknown service {service_id!r}")
    if request.method == "OPTIONS":
        return Response(status=204)
    started = time.perf_counter()
    client, body, refused = _authenticated_json(service_id)
    if refused is not None:
        return refused
    # Request errors (400, 401, 412, 413, 503) propagate to the one handler in salvage/app.py.
    cards = _cards_for(service_id, body, client)
    log.debug("%s answered in %.1f ms", service_id, (time.perf_counter() - started) * 1000)
    return _json({"cards": cards})


def _cards_for(service_id: str, body: Any, client: Any) -> list[dict[str, Any]]:
    hook = SERVICES[service_id]["hook"]
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    if body.get("hook") != hook:
        raise BadRequest(f"service {service_id} answers hook {hook!r}, not {body.get('hook')!r}")
    if not isinstance(body.get("hookInstance"), str):
        raise BadRequest("hookInstance is required")
    context = body.get("context")
    if not isinstance(context, dict):
        raise BadRequest("context is required")
    missing = [k for k in REQUIRED_CONTEXT[hook] if context.get(k) in (None, "")]
    if missing:
        raise BadRequest(f"context lacks {', '.join(missing)}")
    patient_id = context["patientId"]
    if not isinstance(patient_id, str):
        raise BadRequest("context.patientId must be a string")
    validation.check_hook_request(body)
    drafts_bundle = context.get("draftOrders")
    if hook != "patient-view" and (
        not isinstance(drafts_bundle, dict) or drafts_bundle.get("resourceType") != "Bundle"
    ):
        raise BadRequest("context.draftOrders must be a FHIR Bundle")
    if hook == "order-select" and not isinstance(context.get("selections"), list):
        raise BadRequest("context.selections must be a list")
    server = body.get("fhirServer")
    tokenless = client is not None and body.get("fhirAuthorization") is None
    if (
        server is not None
        and client is not None
        and not client.allows_fhir_server(str(server))
        and not (tokenless and client.is_open_server(str(server)))
    ):
        raise Unauthorized("fhirServer not on the issuer's allowlist")

    kb = current_app.extensions["salvage_kb"]
    draft_resources = draft_orders.draft_resources(drafts_bundle or {})
    allowed = client.allows_fhir_server if client is not None else lambda _: True
    gathered = fetch.gather(
        body,
        kb.loinc_index,
        float(current_app.config["CDS_FETCH_BUDGET_SECONDS"]),
        allowed,
        draft_resources,
        client.is_open_server if client is not None else lambda _: False,
    )
    resources = gathered.resources
    _check_patient(resources, patient_id)
    drafts, draft_ids = draft_orders.drafts_of(draft_resources, kb, resources)
    history = [r for r in resources if f"{r.get('resourceType')}/{r.get('id')}" not in draft_ids]
    report, _skipped = service.report_for_patient(
        history,
        patient_id,
        kb,
        service.today(),
        drafts=tuple(drafts),
        unreadable=frozenset(g.resource_type for g in gathered.gaps),
        origin="prefetch",
    )
    builder = card_rules.CardBuilder(
        kb, str(current_app.config["BASE_URL"]), patient_id, context.get("userId")
    )
    findings = report.delay_findings if hook == "patient-view" else report.order_findings
    if gathered.gaps:  # the incomplete-data card below names what could not be read
        findings = tuple(f for f in findings if f.kind != "not-assessed")
    out = [
        card_rules.render(finding, report.recommendation, tuple(drafts), builder)
        for finding in findings
    ]
    if gathered.gaps:
        log.warning(
            "%s: answered from incomplete data (%s)",
            service_id,
            ", ".join(sorted({f"{g.resource_type} {g.kind}" for g in gathered.gaps})),
        )
        out.append(incomplete_data_card(builder, gathered.gaps))
    _record_cards(service_id, out)
    return [item.card for item in out]


def _check_patient(resources: list[dict[str, Any]], patient_id: str) -> None:
    """A Patient was given, but not the one in context: the data are someone else's (412)."""
    patients = [r for r in resources if r.get("resourceType") == "Patient"]
    if patients and not any(r.get("id") == patient_id for r in patients):
        raise fetch.PrefetchUnavailable("context.patientId matches no prefetched Patient")


def _record_cards(service_id: str, out: list[Any]) -> None:
    """The audit of issued cards; when it cannot be written the cards are still returned."""
    db = current_app.extensions["salvage_db"]
    try:
        for item in out:
            db.insert_once(
                "cds_card",
                {
                    "uuid": item.card["uuid"],
                    "service": service_id,
                    "kind": item.kind,
                    "issued_at": time.time(),
                },
            )
    except DatabaseUnavailable:
        log.warning("%s: cards answered but not recorded (database unavailable)", service_id)


@bp.route("/cds-services/<service_id>/feedback", methods=["POST", "OPTIONS"])
def feedback(service_id: str) -> Response:
    if service_id not in SERVICES:
        return _error(404, f"unknown service {service_id!r}")
    if request.method == "OPTIONS":
        return Response(status=204)
    _, body, refused = _authenticated_json(f"{service_id}/feedback")
    if refused is not None:
        return refused
    items = body.get("feedback") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        raise BadRequest("feedback must be a non-empty list")
    if len(items) > validation.MAX_FEEDBACK_ITEMS:
        raise TooLarge(f"more than {validation.MAX_FEEDBACK_ITEMS} feedback items")
    for index, item in enumerate(items):  # all checked before any is stored
        validation.check_feedback_item(item, index)
    reasons = [validation.feedback_reason(item, i) for i, item in enumerate(items)]
    db = current_app.extensions["salvage_db"]
    for item, (reason_code, reason_display) in zip(items, reasons, strict=True):
        db.insert_once(
            "cds_feedback",
            {  # duplicates are expected and tolerated (H14)
                "card": item["card"],
                "service": service_id,
                "outcome": item["outcome"],
                "outcome_timestamp": item["outcomeTimestamp"],
                "reason_code": reason_code,
                "reason_display": reason_display,
                "accepted_suggestions": orjson.dumps(
                    item.get("acceptedSuggestions") or []
                ).decode(),
                "received_at": time.time(),
            },
        )
    return Response(status=200)
