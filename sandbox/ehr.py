"""EHR screens: patient list, EHR launch of apps (also in an iframe), fault switches."""

from __future__ import annotations

import functools
import secrets
from typing import Any

from flask import Blueprint, abort, current_app, jsonify, render_template, request, session

bp = Blueprint("ehr", __name__)


def _sandbox() -> Any:
    return current_app.extensions["sandbox"]


def current_user() -> str:
    cfg = _sandbox().config
    known = {u["id"] for u in cfg.users}
    user = session.get("user")
    return user if user in known else cfg.users[0]["id"]


@bp.get("/")
def patients() -> Any:
    sandbox = _sandbox()
    return render_template(
        "patients.html",
        patients=sandbox.patient_list(),
        clients=sandbox.config.clients,
        user=current_user(),
        users=sandbox.config.users,
    )


@bp.post("/user")
def choose_user() -> Any:
    user = request.form.get("user", "")
    if user not in {u["id"] for u in _sandbox().config.users}:
        abort(400)
    session["user"] = user
    return patients()


@bp.get("/static/smart-style.json")
def smart_style() -> Any:
    return jsonify(
        {
            "color_background": "#f7f7f4",
            "color_text": "#1b1b1b",
            "color_highlight": "#23395d",
            "font_family_body": "system-ui, sans-serif",
        }
    )


def new_launch(client_id: str, patient: str, extra: dict[str, Any] | None = None) -> str:
    """A launch id bound to this patient, user and client (S5)."""
    launch_id = secrets.token_urlsafe(24)
    context = {
        "client_id": client_id,
        "patient": patient,
        "user": current_user(),
        "need_patient_banner": False,
        "smart_style_url": f"{_sandbox().config.ehr_base}/static/smart-style.json",
        **(extra or {}),
    }
    _sandbox().store.save_launch(launch_id, context)
    return launch_id


@bp.get("/launch/<client_id>/<patient>")
def launch(client_id: str, patient: str) -> Any:
    sandbox = _sandbox()
    client = sandbox.config.client(client_id)
    if client is None or patient not in sandbox.patient_ids():
        abort(404)
    embedded = request.args.get("frame") == "1"
    launch_id = new_launch(client_id, patient, {"need_patient_banner": not embedded})
    from urllib.parse import urlencode

    url = f"{client.launch_url}?{urlencode({'iss': sandbox.config.fhir_base, 'launch': launch_id})}"
    if embedded:
        return render_template("launch_frame.html", url=url, patient=patient, client=client)
    return "", 302, {"Location": url}


@bp.route("/sandbox/faults", methods=["GET", "POST"])
def faults() -> Any:
    """Fault injection for tests: latency_ms, status (5xx), truncate, foreign_next."""
    store = _sandbox().store
    if request.method == "POST":
        if request.remote_addr not in ("127.0.0.1", "::1"):
            abort(403)
        body = request.get_json(silent=True) or {}
        allowed = {
            k: body[k]
            for k in ("latency_ms", "status", "truncate", "foreign_next", "no_well_known")
            if k in body
        }
        store.set_value("faults", allowed)
    return jsonify(store.value("faults", {}))


# -- order entry with CDS Hooks order-select / order-sign ----------------------------------------

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


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


def _services() -> list[tuple[str, dict[str, Any]]]:
    """(base URL, service) for every configured CDS service (discovery each time: cheap, fresh)."""
    from sandbox.cds_client import CdsClient

    client = CdsClient(_sandbox())
    found = []
    for entry in _sandbox().config.cds_services:
        url = entry["discovery_url"].rstrip("/")
        found += [(url, s) for s in client.discover(url)]
    return found


def _fire(patient: str, hook: str, selections: list[str]) -> None:
    from sandbox.cds_client import CdsClient

    store = _sandbox().store
    drafts = store.value(_key("drafts", patient), [])
    context: dict[str, Any] = {
        "userId": current_user(),
        "patientId": patient,
        "draftOrders": {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": d} for d in drafts],
        },
    }
    if hook == "order-select":
        context["selections"] = selections
    client = CdsClient(_sandbox())
    send_prefetch = store.value(_key("prefetch", patient), True)
    results = []
    for base, service in _services():
        if service.get("hook") != hook:
            continue
        status, answer, _ = client.call(service, base, hook, context, send_prefetch=send_prefetch)
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
    store.set_value(_key("cards", patient), {"hook": hook, "results": results})


@bp.get("/orders/<patient>")
def orders(patient: str) -> Any:
    from sandbox import markdown

    store = _sandbox().store
    if patient not in _sandbox().patient_ids():
        abort(404)
    catalog = _catalog()
    return render_template(
        "orders.html",
        patient=patient,
        drafts=store.value(_key("drafts", patient), []),
        signed=store.value(_key("signed", patient), []),
        catalog=catalog,
        outcome=store.value(_key("cards", patient), None),
        md=markdown.render,
        send_prefetch=store.value(_key("prefetch", patient), True),
        clients=_sandbox().config.clients,
    )


def _back(patient: str) -> Any:
    return "", 303, {"Location": f"/orders/{patient}"}


@bp.post("/orders/<patient>/add")
def add_order(patient: str) -> Any:
    catalog = _catalog()
    item = request.form.get("item", "")
    kind, _, name = item.partition(":")
    if kind == "regimen" and name in catalog["regimens"]:
        drugs = catalog["regimens"][name]
    elif kind == "drug" and name in catalog["drugs"]:
        drugs = [name]
    else:
        abort(400)
    store = _sandbox().store
    new = [_draft(d, patient, catalog) for d in drugs]
    store.set_value(_key("drafts", patient), store.value(_key("drafts", patient), []) + new)
    _fire(patient, "order-select", [f"MedicationRequest/{d['id']}" for d in new])
    return _back(patient)


@bp.post("/orders/<patient>/prefetch")
def toggle_prefetch(patient: str) -> Any:
    _sandbox().store.set_value(_key("prefetch", patient), request.form.get("send") == "1")
    return _back(patient)


@bp.post("/orders/<patient>/clear")
def clear_orders(patient: str) -> Any:
    store = _sandbox().store
    store.set_value(_key("drafts", patient), [])
    store.set_value(_key("cards", patient), None)
    return _back(patient)


@bp.post("/orders/<patient>/sign")
def sign_orders(patient: str) -> Any:
    _fire(patient, "order-sign", [])
    store = _sandbox().store
    outcome = store.value(_key("cards", patient), {}) or {}
    if request.form.get("confirm") == "1" or not any(
        r["cards"] for r in outcome.get("results", [])
    ):
        drafts = store.value(_key("drafts", patient), [])
        store.set_value(_key("signed", patient), store.value(_key("signed", patient), []) + drafts)
        store.set_value(_key("drafts", patient), [])
    return _back(patient)


def _find_card(patient: str, card_uuid: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    outcome = _sandbox().store.value(_key("cards", patient), {}) or {}
    for result in outcome.get("results", []):
        for card in result["cards"]:
            if card.get("uuid") == card_uuid:
                return result, card
    return None


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
    store = _sandbox().store
    drafts = store.value(_key("drafts", patient), [])
    for action in suggestion.get("actions", []):
        if action.get("type") == "delete":
            target = str(action.get("resourceId", "")).split("/")[-1]
            drafts = [d for d in drafts if d["id"] != target]
        elif action.get("type") == "create" and isinstance(action.get("resource"), dict):
            resource = dict(action["resource"])
            resource.setdefault("id", f"draft-{secrets.token_hex(6)}")
            drafts.append(resource)
    store.set_value(_key("drafts", patient), drafts)
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
    store.set_value(_key("cards", patient), None)
    return _back(patient)


@bp.post("/orders/<patient>/override")
def override_card(patient: str) -> Any:
    from sandbox.cds_client import CdsClient

    found = _find_card(patient, request.form.get("card", ""))
    if not found:
        abort(400)
    result, card = found
    reasons = {r.get("code"): r for r in card.get("overrideReasons", [])}
    chosen = reasons.get(request.form.get("reason", ""))
    if card.get("overrideReasons") and chosen is None:
        abort(400)  # the EHR asks for one of the card's own reasons
    item: dict[str, Any] = {
        "card": card["uuid"],
        "outcome": "overridden",
        "outcomeTimestamp": _now(),
    }
    if chosen:
        item["overrideReason"] = {"reason": chosen}
    CdsClient(_sandbox()).feedback(result["base"], result["service"], item)
    outcome = _sandbox().store.value(_key("cards", patient), {}) or {}
    for r in outcome.get("results", []):
        r["cards"] = [c for c in r["cards"] if c.get("uuid") != card["uuid"]]
    _sandbox().store.set_value(_key("cards", patient), outcome)
    return _back(patient)


@bp.get("/smart-link/<patient>")
def smart_link(patient: str) -> Any:
    """Open a card's SMART link: an EHR launch of the registered app, passing appContext."""
    from urllib.parse import urlencode

    url = request.args.get("url", "")
    client = next((c for c in _sandbox().config.clients if c.launch_url == url), None)
    if client is None or patient not in _sandbox().patient_ids():
        abort(400)  # only registered apps are launched
    launch_id = new_launch(
        client.client_id, patient, {"appContext": request.args.get("appContext") or None}
    )
    target = f"{url}?{urlencode({'iss': _sandbox().config.fhir_base, 'launch': launch_id})}"
    return render_template("launch_frame.html", url=target, patient=patient, client=client)


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="seconds")
