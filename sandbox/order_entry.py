"""EHR screens that call CDS services: the patient chart (patient-view) and order entry
(order-select, order-sign), modelled on how EHRs present cards.

Info cards never block signing. A warning or critical card blocks signing until one of its
suggestions is accepted or it is overridden with one of its reasons; an override holds for the
drafts it was given on, so signing them again does not show the same warning again. Every
action ends with a confirmation of what happened (CDS Hooks 2.0 feedback is sent for accept and
override)."""

from __future__ import annotations

import functools
import json
import secrets
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from flask import Blueprint, abort, current_app, render_template, request, session

from sandbox import markdown, order_sets
from sandbox.ehr import current_user
from sandbox.wording import counted

bp = Blueprint("orders", __name__)

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
BLOCKING = ("warning", "critical")


def _sandbox() -> Any:
    return current_app.extensions["sandbox"]


@functools.lru_cache(maxsize=1)
def _catalog() -> dict[str, Any]:
    """The order pick-list, read once (it ships with the sandbox and does not change)."""
    from pathlib import Path

    import yaml

    return yaml.safe_load(Path(__file__).with_name("order_catalog.yaml").read_text())


def _sid() -> str:
    if "sid" not in session:
        session["sid"] = secrets.token_urlsafe(16)
    return str(session["sid"])


def _key(kind: str, patient: str) -> str:
    return f"{kind}:{_sid()}:{patient}"


def _get(kind: str, patient: str, default: Any) -> Any:
    value = _sandbox().store.value(_key(kind, patient), default)
    return default if value is None else value


def _set(kind: str, patient: str, value: Any) -> None:
    _sandbox().store.set_value(_key(kind, patient), value)


def _draft(drug: str, patient: str, catalog: dict[str, Any]) -> dict[str, Any]:
    code = (catalog["drugs"].get(drug) or {}).get("code")
    concept: dict[str, Any] = {"text": drug}
    if code:
        concept["coding"] = [{"system": RXNORM, "code": code, "display": drug}]
    return {
        "resourceType": "MedicationRequest",
        "id": f"draft-{secrets.token_hex(6)}",
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": concept,
        "subject": {"reference": f"Patient/{patient}"},
        "requester": {"reference": current_user()},
    }


def order_name(resource: dict[str, Any]) -> str:
    """What an EHR shows for a draft: the drug, or for a referral the service requested."""
    concept = resource.get("medicationCodeableConcept") or resource.get("code") or {}
    text = concept.get("text") or next(
        (c.get("display") for c in concept.get("coding") or [] if c.get("display")), None
    )
    return str(text or resource.get("resourceType", "order"))


def _services() -> tuple[list[tuple[str, dict[str, Any]]], list[dict[str, Any]]]:
    """(base URL, service) for every configured CDS service (discovery each time: cheap, fresh),
    and a result entry for each configured service whose discovery failed."""
    from sandbox.cds_client import CdsClient

    client = CdsClient(_sandbox())
    found = []
    failed = []
    for entry in _sandbox().config.cds_services:
        url = entry["discovery_url"].rstrip("/")
        services, error = client.discover_or_error(url)
        found += [(url, s) for s in services]
        if error:
            name = entry.get("name", url)
            failed.append({"service": name, "base": url, "status": 0, "cards": [], "error": error})
    return found, failed


def call_hook(patient: str, hook: str, context: dict[str, Any]) -> list[dict[str, Any]]:
    from sandbox.cds_client import CdsClient

    client = CdsClient(_sandbox())
    send_prefetch = _get("prefetch", patient, True)
    services, results = _services()
    for base, service in services:
        if service.get("hook") != hook:
            continue
        status, answer, _ = client.call(
            service,
            base,
            hook,
            {"userId": current_user(), "patientId": patient, **context},
            send_prefetch=send_prefetch,
        )
        cards = answer.get("cards", []) if status == 200 and isinstance(answer, dict) else []
        results.append(
            {
                "service": service["id"],
                "base": base,
                "status": status,
                "cards": cards,
                "error": None if status == 200 else str(answer)[:300],
            }
        )
    return results


def _fire(patient: str, hook: str, selections: list[str]) -> dict[str, Any]:
    drafts = _get("drafts", patient, [])
    context: dict[str, Any] = {
        "draftOrders": {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": d} for d in drafts],
        },
    }
    if hook == "order-select":
        context["selections"] = selections
    outcome = {"hook": hook, "results": call_hook(patient, hook, context)}
    _set("cards", patient, outcome)
    return outcome


def _blocking(outcome: dict[str, Any] | None) -> list[dict[str, Any]]:
    return [
        c
        for r in (outcome or {}).get("results", [])
        for c in r["cards"]
        if c.get("indicator") in BLOCKING
    ]


def _known_patient(patient: str) -> None:
    if patient not in _sandbox().patient_ids():
        abort(404)


@bp.get("/chart/<patient>")
def chart(patient: str) -> Any:
    """Opening a patient's chart fires patient-view and shows its cards, as EHRs do."""
    _known_patient(patient)
    info = next((p for p in _sandbox().patient_list() if p["id"] == patient), {"id": patient})
    return render_template(
        "chart.html",
        patient=patient,
        info=info,
        outcome={"hook": "patient-view", "results": call_hook(patient, "patient-view", {})},
        md=markdown.render,
        clients=_sandbox().config.clients,
    )


@bp.get("/orders/<patient>")
def orders(patient: str) -> Any:
    _known_patient(patient)
    return render_template(
        "orders.html",
        patient=patient,
        drafts=_get("drafts", patient, []),
        signed=_get("signed", patient, []),
        catalog=_catalog(),
        order_groups=order_sets.groups(
            _catalog(), order_sets.condition_texts(_conditions(patient))
        ),
        outcome=_get("cards", patient, None),
        notice=_get("notice", patient, None),
        md=markdown.render,
        name=order_name,
        send_prefetch=_get("prefetch", patient, True),
    )


def _conditions(patient: str) -> list[dict[str, Any]]:
    """The patient's Conditions from the FHIR server (none when it cannot be read: the
    pick-list then shows every order under "Other orders")."""
    status, body = _sandbox().backend_get(f"Condition?patient={quote(patient, safe='')}&_count=200")
    if status != 200:
        return []
    try:
        bundle = json.loads(body)
    except ValueError:
        return []
    return [
        e["resource"]
        for e in bundle.get("entry") or []
        if isinstance(e, dict) and isinstance(e.get("resource"), dict)
    ]


def _back(patient: str, notice: dict[str, str] | None = None) -> Any:
    _set("notice", patient, notice)
    return "", 303, {"Location": f"/orders/{patient}"}


@bp.post("/orders/<patient>/add")
def add_order(patient: str) -> Any:
    _known_patient(patient)
    catalog = _catalog()
    kind, _, name = request.form.get("item", "").partition(":")
    if kind == "regimen" and name in catalog["regimens"]:
        drugs = catalog["regimens"][name]
    elif kind == "drug" and name in catalog["drugs"]:
        drugs = [name]
    else:
        abort(400)
    new = [_draft(d, patient, catalog) for d in drugs]
    _set("drafts", patient, _get("drafts", patient, []) + new)
    _fire(patient, "order-select", [f"MedicationRequest/{d['id']}" for d in new])
    return _back(patient)


@bp.post("/orders/<patient>/prefetch")
def toggle_prefetch(patient: str) -> Any:
    _set("prefetch", patient, request.form.get("send") == "1")
    return _back(patient)


@bp.post("/orders/<patient>/clear")
def clear_orders(patient: str) -> Any:
    for kind in ("drafts", "cards", "acknowledged"):
        _set(kind, patient, None)
    return _back(patient)


def _sign(patient: str, drafts: list[dict[str, Any]]) -> None:
    _set("signed", patient, _get("signed", patient, []) + drafts)
    _set("drafts", patient, [])
    _set("acknowledged", patient, [])


@bp.post("/orders/<patient>/sign")
def sign_orders(patient: str) -> Any:
    drafts = _get("drafts", patient, [])
    if not drafts:
        return _back(patient, {"kind": "info", "text": "There are no draft orders to sign."})
    outcome = _fire(patient, "order-sign", [])
    acknowledged = set(_get("acknowledged", patient, []))
    blocking = _blocking(outcome)
    if blocking and not all(d["id"] in acknowledged for d in drafts):
        return _back(
            patient,
            {
                "kind": "warning",
                "text": "Not signed yet: accept a suggestion or override each warning with a "
                "reason, then sign again.",
            },
        )
    if blocking:  # already overridden for these drafts: not shown again
        for result in outcome["results"]:
            result["cards"] = [c for c in result["cards"] if c.get("indicator") not in BLOCKING]
        _set("cards", patient, outcome)
    _sign(patient, drafts)
    names = ", ".join(order_name(d) for d in drafts)
    signed = f"Signed {counted(len(drafts), 'order')}: {names}."
    return _back(patient, {"kind": "success", "text": signed})


def _find_card(patient: str, card_uuid: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    outcome = _get("cards", patient, {}) or {}
    for result in outcome.get("results", []):
        for card in result["cards"]:
            if card.get("uuid") == card_uuid:
                return result, card
    return None


def _drop_card(patient: str, card_uuid: str) -> dict[str, Any]:
    outcome = _get("cards", patient, {}) or {}
    for result in outcome.get("results", []):
        result["cards"] = [c for c in result["cards"] if c.get("uuid") != card_uuid]
    _set("cards", patient, outcome)
    return outcome


@bp.post("/orders/<patient>/accept")
def accept_suggestion(patient: str) -> Any:
    """Apply a suggestion's actions to the draft orders, then send accepted feedback (H10, H14)."""
    from sandbox.cds_client import CdsClient

    found = _find_card(patient, request.form.get("card", ""))
    if not found:
        abort(400)
    result, card = found
    suggestion = next(
        (s for s in card.get("suggestions", []) if s.get("uuid") == request.form.get("suggestion")),
        None,
    )
    if suggestion is None:
        abort(400)
    drafts = _get("drafts", patient, [])
    for action in suggestion.get("actions", []):
        if action.get("type") == "delete":
            target = str(action.get("resourceId", "")).split("/")[-1]
            drafts = [d for d in drafts if d["id"] != target]
        elif action.get("type") == "create" and isinstance(action.get("resource"), dict):
            resource = dict(action["resource"])
            resource.setdefault("id", f"draft-{secrets.token_hex(6)}")
            drafts.append(resource)
    _set("drafts", patient, drafts)
    CdsClient(_sandbox()).feedback(
        result["base"],
        result["service"],
        {
            "card": card["uuid"],
            "outcome": "accepted",
            "acceptedSuggestions": [{"id": suggestion["uuid"]}],
            "outcomeTimestamp": _now(),
        },
    )
    _set("cards", patient, None)
    names = ", ".join(order_name(d) for d in drafts) or "none"
    return _back(
        patient,
        {
            "kind": "success",
            "text": f"Accepted “{suggestion.get('label', '')}”. Draft orders now: {names}. "
            "Sign to complete.",
        },
    )


@bp.post("/orders/<patient>/override")
def override_card(patient: str) -> Any:
    from sandbox.cds_client import CdsClient

    found = _find_card(patient, request.form.get("card", ""))
    if not found:
        abort(400)
    result, card = found
    reasons = {r.get("code"): r for r in card.get("overrideReasons", [])}
    chosen = reasons.get(request.form.get("reason", ""))
    if card.get("indicator") in BLOCKING and card.get("overrideReasons") and chosen is None:
        # a warning is overridden with one of the card's own reasons; an info card is dismissed
        return _back(patient, {"kind": "warning", "text": "Choose an override reason first."})
    item: dict[str, Any] = {
        "card": card["uuid"],
        "outcome": "overridden",
        "outcomeTimestamp": _now(),
    }
    if chosen:
        item["overrideReason"] = {"reason": chosen}
    CdsClient(_sandbox()).feedback(result["base"], result["service"], item)
    drafts = _get("drafts", patient, [])
    acknowledged = set(_get("acknowledged", patient, [])) | {d["id"] for d in drafts}
    _set("acknowledged", patient, sorted(acknowledged))
    outcome = _drop_card(patient, card["uuid"])
    why = f" ({chosen.get('display', chosen.get('code'))})" if chosen else ""
    verb = "Overridden" if card.get("indicator") in BLOCKING else "Dismissed"
    text = f"{verb}{why}: “{card.get('summary', '')}”."
    if outcome.get("hook") == "order-sign" and drafts and not _blocking(outcome):
        _sign(patient, drafts)  # the override was the answer to the sign dialog
        text += (
            f" Signed {counted(len(drafts), 'order')}: {', '.join(order_name(d) for d in drafts)}."
        )
    else:
        text += " It will not be shown again for these drafts."
    return _back(patient, {"kind": "success", "text": text})


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
