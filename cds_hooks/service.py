"""The CDS Hooks blueprint: discovery, the three services, feedback, CORS. A view parses the
request, gathers data, calls the core, and renders cards; errors become JSON in one place."""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from fhir.resources.R4B import get_fhir_model_class
from flask import Blueprint, Response, current_app, request
from pydantic import ValidationError

from cds_hooks import cards as card_rules
from cds_hooks import fetch
from cds_hooks.security import Unauthorized, load_trusted_clients, verify_request_jwt
from salvage import service
from salvage.engine.drugs import concept_text, normaliser_for
from salvage.engine.order_checks import DraftOrder

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


class BadRequest(Exception):
    pass


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status=status, mimetype="application/json")


def _error(status: int, message: str | None) -> Response:
    if status == 401:
        return Response(status=401)  # no detail for authentication failures (H17)
    return _json({"error": message}, status)


def prefetch_templates() -> dict[str, str]:
    kb = current_app.extensions["salvage_kb"]
    codes = ",".join(f"http://loinc.org|{code}" for code in sorted(kb.loinc_index))
    p = "{{context.patientId}}"
    return {
        "patient": f"Patient/{p}",
        "medicationRequests": f"MedicationRequest?patient={p}&_count=200",
        "medicationAdministrations": f"MedicationAdministration?patient={p}&_count=200",
        "medicationStatements": f"MedicationStatement?patient={p}&_count=200",
        "conditions": f"Condition?patient={p}&_count=200",
        "procedures": f"Procedure?patient={p}&_count=200",
        "observations": f"Observation?patient={p}&code={codes}&_count=200",
    }


def _clients() -> dict[str, Any]:
    cached = current_app.extensions.get("salvage_cds_clients")
    if cached is None:
        cached = load_trusted_clients(current_app.config.get("CDS_CLIENTS"))
        current_app.extensions["salvage_cds_clients"] = cached
    return cached


def _authenticate() -> Any:
    if current_app.config.get("CDS_INSECURE_DEV"):
        return None
    audience = f"{str(current_app.config['BASE_URL']).rstrip('/')}{request.path}"
    db = current_app.extensions["salvage_db"]
    return verify_request_jwt(
        request.headers.get("Authorization"), audience, _clients(), db.first_use_of_jti
    )


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
    try:
        cards = _cards_for(service_id, body, client)
    except BadRequest as exc:
        return _error(400, str(exc))
    except fetch.PrefetchUnavailable as exc:
        return _error(412, str(exc))
    except fetch.FhirUnavailable as exc:
        return _error(412, f"required data could not be read: {exc}")
    except PermissionError:
        log.info("%s refused: fhirServer not allowed for this issuer", service_id)
        return _error(401, None)
    except fetch.DeadlineExceeded as exc:
        log.warning(
            "%s: FHIR reads exceeded the %.1f s budget (%s); answering with no cards",
            service_id,
            current_app.config["CDS_FETCH_BUDGET_SECONDS"],
            exc,
        )
        return _json({"cards": []})
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
    drafts_bundle = context.get("draftOrders")
    if hook != "patient-view" and (
        not isinstance(drafts_bundle, dict) or drafts_bundle.get("resourceType") != "Bundle"
    ):
        raise BadRequest("context.draftOrders must be a FHIR Bundle")
    if hook == "order-select" and not isinstance(context.get("selections"), list):
        raise BadRequest("context.selections must be a list")
    if (
        body.get("fhirServer") is not None
        and client is not None
        and not client.allows_fhir_server(str(body["fhirServer"]))
    ):
        raise PermissionError("fhirServer not allowed")

    kb = current_app.extensions["salvage_kb"]
    drafts, draft_ids = _drafts(drafts_bundle or {}, kb)
    allowed = client.allows_fhir_server if client is not None else lambda _: True
    resources, _ = fetch.gather(
        body, prefetch_templates(), float(current_app.config["CDS_FETCH_BUDGET_SECONDS"]), allowed
    )
    history = [r for r in resources if f"{r.get('resourceType')}/{r.get('id')}" not in draft_ids]
    report, _skipped = service.report_for_patient(
        history, patient_id, kb, service.today(), drafts=tuple(drafts), origin="prefetch"
    )
    builder = card_rules.CardBuilder(
        kb, str(current_app.config["BASE_URL"]), patient_id, context.get("userId")
    )
    findings = report.delay_findings if hook == "patient-view" else report.order_findings
    out = [
        card_rules.render(finding, report.recommendation, tuple(drafts), builder)
        for finding in findings
    ]
    db = current_app.extensions["salvage_db"]
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
    return [item.card for item in out]


def _drafts(bundle: dict[str, Any], kb: Any) -> tuple[list[DraftOrder], set[str]]:
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise BadRequest("draftOrders.entry must be a list")
    normaliser = normaliser_for(kb)
    drafts: list[DraftOrder] = []
    ids: set[str] = set()
    for index, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            raise BadRequest(f"draftOrders.entry[{index}] has no resource")
        try:
            model = get_fhir_model_class(resource["resourceType"])
            model.model_validate(resource)
        except (KeyError, ValueError, ValidationError) as exc:
            first = str(exc).splitlines()[0][:200]
            raise BadRequest(
                f"draftOrders.entry[{index}] is not a valid {resource['resourceType']}: {first}"
            ) from exc
        ids.add(f"{resource['resourceType']}/{resource.get('id')}")
        if resource["resourceType"] != "MedicationRequest":
            continue
        concept = resource.get("medicationCodeableConcept")
        ref = (resource.get("medicationReference") or {}).get("reference", "")
        if concept is None and str(ref).startswith("#"):
            contained = next(
                (c for c in resource.get("contained") or [] if c.get("id") == ref[1:]), {}
            )
            concept = contained.get("code")
        ingredients = normaliser.from_concept(concept)
        if ingredients:
            drafts.append(
                DraftOrder(
                    resource_id=(
                        f"MedicationRequest/{resource['id']}"
                        if isinstance(resource.get("id"), str)
                        else None
                    ),
                    ingredients=ingredients,
                    text=concept_text(concept) or ", ".join(sorted(ingredients)),
                )
            )
    return drafts, ids


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
        return _error(400, "feedback must be a non-empty list")
    db = current_app.extensions["salvage_db"]
    for index, item in enumerate(items):
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("card"), str)
            or item.get("outcome") not in ("accepted", "overridden")
            or not isinstance(item.get("outcomeTimestamp"), str)
        ):
            return _error(
                400,
                f"feedback[{index}] needs card, outcome (accepted|overridden) and outcomeTimestamp",
            )
        reason = (item.get("overrideReason") or {}).get("reason") or {}
        db.insert_once(
            "cds_feedback",
            {  # duplicates are expected and tolerated (H14)
                "card": item["card"],
                "service": service_id,
                "outcome": item["outcome"],
                "outcome_timestamp": item["outcomeTimestamp"],
                "reason_code": reason.get("code"),
                "reason_display": reason.get("display"),
                "accepted_suggestions": orjson.dumps(
                    item.get("acceptedSuggestions") or []
                ).decode(),
                "received_at": time.time(),
            },
        )
    return Response(status=200)
