"""EHR screens: patient list, EHR launch of apps (also in an iframe), fault switches."""

from __future__ import annotations

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
    """Fault injection for tests: latency_ms, status (5xx), truncate, foreign_next; for Bulk
    Data: bulk_status (status URL fails), retry_after, bulk_file_fail / bulk_file_truncate (lists
    of file names)."""
    store = _sandbox().store
    if request.method == "POST":
        if request.remote_addr not in ("127.0.0.1", "::1"):
            abort(403)
        body = request.get_json(silent=True) or {}
        allowed = {
            k: body[k]
            for k in (
                "latency_ms",
                "status",
                "truncate",
                "foreign_next",
                "no_well_known",
                "bulk_status",
                "retry_after",
                "bulk_file_fail",
                "bulk_file_truncate",
            )
            if k in body
        }
        store.set_value("faults", allowed)
    return jsonify(store.value("faults", {}))


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
