"""The SMART app blueprint: /launch, /standalone, /callback, the screen, /api/summary, JWKS.
Signing in and the per-launch session are in smart_app/signin.py."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from datetime import date
from typing import Any
from urllib.parse import urlparse

import requests
from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    jsonify,
    make_response,
    render_template,
    request,
    stream_with_context,
)

from salvage import service
from salvage.engine import wording
from salvage.errors import LaunchError, SalvageError
from smart_app import chart, fhir_reader, keys, registry, scopes, signin
from smart_app import screen as smart_screen
from smart_app.sessions import LAUNCH_PARAM
from smart_app.signin import PUBLIC_BANNER
from smart_app.summary import summarise

log = logging.getLogger("salvage.smart")
bp = Blueprint(
    "smart_app",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/static/smart",
)


bp.add_app_template_filter(wording.counted, "counted")
bp.add_app_template_filter(wording.sentence, "capitalize_first")

RELAUNCH = "Your access to this patient's record has ended. Launch the app again from the EHR."


@bp.get("/")
def about() -> Any:
    """What this service is (the CDS cards' source link points here)."""
    kb = current_app.extensions["salvage_kb"]
    return render_template(
        "about.html", kb=kb, base=signin.base(), servers=list(signin.registrations().values())
    )


@bp.get("/launch")
def launch() -> Response:
    iss, launch_id = request.args.get("iss"), request.args.get("launch")
    if not iss or not launch_id:
        raise LaunchError("An EHR launch needs iss and launch parameters.")
    return signin.start(iss, launch_id)


@bp.route("/standalone", methods=["GET", "POST"])
def standalone() -> Any:
    if request.method == "POST":
        reg = signin.registrations().get(registry.normalise(request.form.get("iss", "")))
        if reg is not None and reg.open_server:
            return signin.open_server(reg, request.form.get("patient", ""))
        return signin.start(request.form.get("iss", ""), None)
    return render_template(
        "standalone.html",
        servers=list(signin.registrations().values()),
        public_banner=PUBLIC_BANNER,
    )


@bp.get("/callback")
def callback() -> Response:
    return signin.callback()


@bp.url_defaults
def _launch_in_links(endpoint: str, values: dict[str, Any]) -> None:
    launch_id = g.get("salvage_launch")
    if launch_id and endpoint in _LAUNCH_SCOPED:
        values.setdefault(LAUNCH_PARAM, launch_id)


_LAUNCH_SCOPED = frozenset({"smart_app.screen", "smart_app.api_summary", "smart_app.ehr_style"})


def _analysis() -> tuple[dict[str, Any], dict[str, Any]]:
    sid, data = signin.active_session()
    kb = current_app.extensions["salvage_kb"]
    if data.get("open_server"):
        holder = fhir_reader.TokenHolder("")  # no Authorization header at all
    else:
        holder = fhir_reader.TokenHolder(data["access_token"], signin.refresher(sid, data))
    if not data.get("open_server") and data["expires_at"] - time.time() < 60:
        # refresh before expiry (S21)
        if not holder.renew(data["access_token"]) and data["expires_at"] < time.time():
            raise LaunchError(RELAUNCH, 401)
    types = scopes.readable_types(data["scope"])
    reg = signin.registrations().get(data["iss"])
    result = fhir_reader.read_patient(
        data["iss"],
        data["patient"],
        types,
        holder,
        kb.loinc_index,
        profile=reg.search_profile if reg else None,
    )
    if holder.refused:
        raise LaunchError(RELAUNCH, 401)  # a 401 the EHR would not let us refresh
    gaps = fhir_reader.data_gaps(result)
    summary = summarise(result.resources, data["patient"], kb, gaps, service.today())
    if data.get("open_server"):
        summary["public_test_server"] = {"banner": PUBLIC_BANNER, "server": data["iss"]}
    return data, summary


@bp.get("/api/summary")
def api_summary() -> Response:
    try:
        _, summary = _analysis()
    except LaunchError as exc:
        return make_response(jsonify({"error": str(exc)}), exc.status)
    return jsonify(summary)


@bp.get("/app")
def screen() -> Response:
    """Streamed: the loading state (what is being read) goes out at once, the analysis follows
    in the same response when the FHIR reads are done (no script needed, CSP unchanged)."""
    _, data = signin.active_session()  # no session: the error page, before anything is streamed
    reading = smart_screen.reading(scopes.readable_types(data["scope"]))

    def page() -> Iterator[str]:
        yield render_template(
            "app_loading.html",
            reading=reading,
            public_banner=PUBLIC_BANNER if data.get("open_server") else None,
        )
        try:
            yield _screen_result()
        except (LaunchError, SalvageError) as exc:
            yield render_template("app_failed.html", message=str(exc))
        except Exception:  # the status line has gone: end the page instead of leaving it loading
            log.exception("unexpected error while analysing")
            yield render_template("app_failed.html", message="An unexpected error occurred.")

    return Response(stream_with_context(page()), mimetype="text/html")


def _screen_result() -> str:
    data, summary = _analysis()
    html = result_html(
        summary,
        summary["patients"][0],
        service.today(),
        focus=_app_context(data.get("app_context")),
        need_banner=data.get("need_patient_banner", True),
        user=data.get("user") or "",
    )
    return html + "</main></body></html>"


def result_html(
    summary: dict[str, Any],
    patient: dict[str, Any],
    as_of: date,
    *,
    focus: Any = None,
    need_banner: bool = False,
    user: str = "",
) -> str:
    """The result part of the screen for one patient of a summary (in a request context)."""
    timeline, markers = smart_screen.charts(patient, as_of)
    return render_template(
        "app_result.html",
        summary=summary,
        p=patient,
        timeline=timeline,
        markers=markers,
        focus=focus,
        need_banner=need_banner,
        user=user,
        chart=chart,
        streamed=True,
    )


@bp.get("/app/style.css")
def ehr_style() -> Response:
    """The EHR's smart_style_url colours as CSS variables (served, so CSP stays 'self')."""
    try:
        _, data = signin.active_session()
    except LaunchError:
        return Response("", mimetype="text/css")
    style = _style(data)
    names = {"color_background": "--bg", "color_text": "--fg", "color_highlight": "--accent"}
    css = "".join(f"{names[k]}: {v};" for k, v in style.items() if k in names)
    return Response(f":root {{{css}}}", mimetype="text/css")


def _app_context(raw: Any) -> dict[str, Any] | None:
    if not raw:
        return None
    import json

    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


_COLOR = re.compile(r"^#[0-9a-fA-F]{3,8}$")


def _style(data: dict[str, Any]) -> dict[str, str]:
    """Apply smart_style_url (S20) only from the EHR's own origin, and only colour values."""
    url = data.get("smart_style_url")
    if not url or urlparse(url).netloc != urlparse(data["iss"]).netloc:
        return {}
    try:
        doc = requests.get(url, timeout=(2, 3)).json()
    except (requests.RequestException, ValueError):
        return {}
    return {
        k: v
        for k, v in doc.items()
        if k.startswith("color_") and isinstance(v, str) and _COLOR.match(v)
    }


@bp.get("/.well-known/jwks.json")
def jwks() -> Response:
    response = jsonify(keys.public_jwks(signin.signing_key()))
    # A deliberate lifetime instead of the pages' no-store (quirk 15, key rotation in README).
    response.headers["Cache-Control"] = f"public, max-age={keys.JWKS_MAX_AGE_SECONDS}"
    return response


@bp.after_request
def _headers(response: Response) -> Response:
    registrations = signin.registrations().values()
    origins = {f"{urlparse(r.iss).scheme}://{urlparse(r.iss).netloc}" for r in registrations}
    # The EHR's web origin can differ from its FHIR host (Epic Hyperspace, MyChart).
    origins |= {o for r in registrations for o in r.frame_ancestors}
    ancestors = " ".join(["'self'", *sorted(origins)])
    response.headers.setdefault(
        "Content-Security-Policy",
        f"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        f"frame-ancestors {ancestors}",
    )
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("Cache-Control", "no-store")
    return response
