"""The SMART app blueprint: /launch, /standalone, /callback, the screen, /api/summary, JWKS."""

from __future__ import annotations

import hmac
import logging
import re
import secrets
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlparse

import requests
from authlib.common.errors import AuthlibBaseError  # OAuth2Error and OAuthError alike
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    stream_with_context,
)
from joserfc.errors import JoseError

from salvage import service
from salvage.errors import LaunchError, SalvageError
from smart_app import chart, discovery, fhir_reader, id_tokens, keys, registry, scopes
from smart_app import screen as smart_screen
from smart_app.sessions import COOKIE, LAUNCH_PARAM, SessionStore
from smart_app.summary import summarise

log = logging.getLogger("salvage.smart")
bp = Blueprint(
    "smart_app",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/static/smart",
)


PUBLIC_BANNER = (
    "Public test server — synthetic or arbitrary data uploaded by anyone; not a medical record; "
    "for testing only"
)
RELAUNCH = "Your access to this patient's record has ended. Launch the app again from the EHR."
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def _registrations() -> dict[str, registry.Registration]:
    """The registrations create_app loaded and validated at start-up."""
    registrations: dict[str, registry.Registration] = current_app.extensions[
        "salvage_smart_registrations"
    ]
    return registrations


def _sessions() -> SessionStore:
    return SessionStore(current_app.extensions["salvage_db"], current_app.config["SECRET_KEY"])


def _base() -> str:
    return str(current_app.config["BASE_URL"]).rstrip("/")


def _app_key() -> Any:
    key = current_app.extensions.get("salvage_smart_key")
    if key is None:
        key = keys.app_key(current_app.instance_path)
        current_app.extensions["salvage_smart_key"] = key
    return key


def _oauth_session(reg: registry.Registration, token_endpoint: str, **extra: Any) -> OAuth2Session:
    """authlib does PKCE, state and the token requests; SMART's private_key_jwt rules (exp at most
    5 minutes, kid, ES384) are applied by our signer registered as a client auth method."""
    session = OAuth2Session(
        client_id=reg.client_id,
        client_secret=reg.client_secret,
        token_endpoint_auth_method=reg.auth_method,
        redirect_uri=f"{_base()}/callback",
        code_challenge_method="S256",  # PKCE S256 always (S9)
        **extra,
    )
    if reg.auth_method == "private_key_jwt":
        key = _app_key()

        def private_key_jwt(auth: Any, method: str, uri: str, headers: dict, body: str) -> Any:
            from authlib.common.urls import add_params_to_qs

            assertion = keys.client_assertion(key, reg.client_id, token_endpoint)
            body = add_params_to_qs(
                body or "",
                [
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", assertion),
                ],
            )
            return uri, headers, body

        session.register_client_auth_method(("private_key_jwt", private_key_jwt))
    return session


def _cookie(response: Response, sid: str) -> Response:
    secure = _base().startswith("https://")
    # Inside an EHR iframe over HTTPS the cookie must be SameSite=None; Secure (S24): the SMART
    # launcher's "launch within the EHR UI" frames the app, so the cookie is third-party (issue
    # 18, quirk 6). Partitioned (CHIPS) keeps it working where third-party cookies are blocked.
    response.set_cookie(
        COOKIE,
        sid,
        httponly=True,
        secure=secure,
        samesite="None" if secure else "Lax",
        partitioned=secure,
        max_age=8 * 3600,
        path="/",
    )
    return response


def _start(iss: str, launch: str | None) -> Response:
    reg = _registrations().get(registry.normalise(iss))
    if reg is None:
        raise LaunchError(
            "This FHIR server is not registered with salvage-cds, so the app will "
            "not connect to it. Ask your administrator to add it.",
            400,
        )
    if reg.open_server:
        raise LaunchError("This is a public test server: open it from the standalone page.", 400)
    if reg.dev_only:
        log.warning("launch against a DEV-ONLY registration: %s", reg.iss)
    try:
        config = discovery.discover(reg.iss, headers=dict(reg.metadata_headers))
    except discovery.DiscoveryError as exc:
        raise LaunchError(f"Could not discover the server's SMART endpoints: {exc}", 502) from exc
    scope = reg.scope or scopes.requested_scope(
        ehr_launch=launch is not None,
        v2=config.supports_v2,
        offline=reg.offline_access == "auto" and "offline_access" in config.scopes_supported,
    )
    state = secrets.token_urlsafe(32)  # 256 bits (S10)
    verifier = generate_token(64)  # 64 chars of [A-Za-z0-9], fresh per request (S9)
    params: dict[str, str] = {"aud": reg.aud or reg.iss}
    if launch is not None:
        params["launch"] = launch
    oauth = _oauth_session(reg, config.token_endpoint, scope=scope)
    url, _ = oauth.create_authorization_url(
        config.authorization_endpoint, state=state, code_verifier=verifier, **params
    )
    store = _sessions()
    cookie = request.cookies.get(COOKIE)
    browser = store.browser(cookie)
    if cookie is None or browser is None:
        cookie, browser = store.new_browser()
    # Keyed by the state: interleaved launches in one browser each find their own sign-in.
    store.save(
        store.key(browser, "pending", state),
        {
            "iss": reg.iss,
            "state": state,
            "verifier": verifier,
            "token_endpoint": config.token_endpoint,
            "issuer": config.issuer,
            "jwks_uri": config.jwks_uri,
            "scope_requested": scope,
            "created": time.time(),
        },
    )
    if reg.authorize_method == "post" and launch is not None:
        # Epic: launch tokens are long JWTs, so the EHR launch's authorize request is a form
        # POST (capability authorize-post; standalone launch stays a GET).
        endpoint, _, query = url.partition("?")
        page = render_template(
            "authorize_post.html", action=endpoint, fields=parse_qsl(query, keep_blank_values=True)
        )
        return _cookie(make_response(page), cookie)
    return _cookie(redirect(url, 302), cookie)


@bp.get("/")
def about() -> Any:
    """What this service is (the CDS cards' source link points here)."""
    kb = current_app.extensions["salvage_kb"]
    return render_template(
        "about.html", kb=kb, base=_base(), servers=list(_registrations().values())
    )


@bp.get("/launch")
def launch() -> Response:
    iss, launch_id = request.args.get("iss"), request.args.get("launch")
    if not iss or not launch_id:
        raise LaunchError("An EHR launch needs iss and launch parameters.")
    return _start(iss, launch_id)


@bp.route("/standalone", methods=["GET", "POST"])
def standalone() -> Any:
    if request.method == "POST":
        reg = _registrations().get(registry.normalise(request.form.get("iss", "")))
        if reg is not None and reg.open_server:
            return _open_server(reg, request.form.get("patient", ""))
        return _start(request.form.get("iss", ""), None)
    return render_template(
        "standalone.html", servers=list(_registrations().values()), public_banner=PUBLIC_BANNER
    )


def _open_server(reg: registry.Registration, patient: str) -> Response:
    """An allow-listed unauthenticated public server (issue 18 section 2): read-only, no token
    is ever sent to it, and every page about it carries the public-test-server banner."""
    patient = patient.strip()
    if not FHIR_ID.fullmatch(patient):
        raise LaunchError("Enter the test patient's id (letters, digits, '-' and '.').")
    store = _sessions()
    cookie = request.cookies.get(COOKIE)
    browser = store.browser(cookie)
    if cookie is None or browser is None:
        cookie, browser = store.new_browser()
    launch_id = secrets.token_urlsafe(24)
    store.save(
        store.key(browser, "launch", launch_id),
        {
            "iss": reg.iss,
            "open_server": True,
            "access_token": "",
            "refresh_token": None,
            "expires_at": time.time() + 8 * 3600,
            "scope": "patient/*.read",
            "patient": patient,
            "user": None,
            "need_patient_banner": True,
            "smart_style_url": None,
            "app_context": None,
        },
    )
    target = f"{_base()}/app?{urlencode({LAUNCH_PARAM: launch_id})}"
    return _cookie(redirect(target, 303), cookie)


@bp.get("/callback")
def callback() -> Response:
    store = _sessions()
    cookie = request.cookies.get(COOKIE) or ""
    browser = store.browser(cookie)
    if browser is None:
        raise LaunchError(
            "This sign-in has no session (it expired or cookies are blocked). Launch the app again."
        )
    state = request.args.get("state", "")
    sid = store.key(browser, "pending", state[:256])
    data = store.load(sid)
    if data is None or not hmac.compare_digest(str(data["state"]), state):
        raise LaunchError(
            "The sign-in response does not match this session (state mismatch). "
            "Launch the app again."
        )
    if request.args.get("error"):
        error = request.args["error"][:64]
        described = request.args.get("error_description", "")[:300]
        # The EHR's words (escaped by the template): the SMART launcher's simulated errors and
        # real EHRs say why in error_description (issue 18, quirk 2).
        text = (
            "Access was declined, so the app cannot show this patient."
            if error == "access_denied"
            else f"The EHR refused the sign-in ({error})."
            + (f" The EHR said: {described}" if described else "")
        )
        store.delete(sid)
        raise LaunchError(text, 403 if error == "access_denied" else 400)
    reg = _registrations()[data["iss"]]
    oauth = _oauth_session(reg, data["token_endpoint"])
    try:
        token = oauth.fetch_token(
            data["token_endpoint"],
            code=request.args.get("code", ""),
            code_verifier=data["verifier"],
            redirect_uri=f"{_base()}/callback",
            timeout=10,
        )
    except (AuthlibBaseError, requests.RequestException, ValueError, KeyError) as exc:
        # A bogus or reused code, or an EHR that refuses the client: ask for a new launch.
        log.info("token request failed: %s", type(exc).__name__)
        store.delete(sid)
        raise LaunchError(
            "The EHR did not issue an access token. Launch the app again.", 401
        ) from exc
    check_token_response(token)
    user = _verify_id_token(token, data, reg) if token.get("id_token") else None
    session = {
        "iss": data["iss"],
        "token_endpoint": data["token_endpoint"],
        "access_token": token["access_token"],
        "refresh_token": token.get("refresh_token"),
        "expires_at": time.time() + float(token.get("expires_in") or 300),
        "scope": token.get("scope") or data["scope_requested"],
        "patient": token.get("patient"),
        "user": user,
        "need_patient_banner": bool(token.get("need_patient_banner", True)),
        "smart_style_url": token.get("smart_style_url"),
        "app_context": token.get("appContext"),
    }
    if not isinstance(session["patient"], str) or not FHIR_ID.fullmatch(session["patient"]):
        raise LaunchError("The EHR did not say which patient to open.")
    store.delete(sid)
    launch_id = secrets.token_urlsafe(24)
    store.save(store.key(browser, "launch", launch_id), session)
    # A new cookie at login: one planted before sign-in is worth nothing (session fixation).
    target = f"{_base()}/app?{urlencode({LAUNCH_PARAM: launch_id})}"
    return _cookie(redirect(target, 303), store.rotate(cookie, browser))


def check_token_response(token: dict[str, Any]) -> None:
    """S19: an access token with token_type Bearer in any case; unknown keys are ignored."""
    if str(token.get("token_type", "")).lower() != "bearer" or not token.get("access_token"):
        raise LaunchError("The EHR's token response is not a bearer token.")


def _verify_id_token(
    token: dict[str, Any], data: dict[str, Any], reg: registry.Registration
) -> str | None:
    """Verify signature (issuer jwks_uri), iss, aud = client_id and exp (S23); fhirUser = user."""
    issuers, jwks_uri = id_tokens.expectations(data, reg)
    try:
        reply = requests.get(jwks_uri, timeout=(3.05, 10))
        claims = id_tokens.decode(token["id_token"], reply.json())
    except (JoseError, ValueError, TypeError, requests.RequestException) as exc:
        raise LaunchError("The id_token could not be verified.") from exc
    if claims.get("iss") not in issuers or claims.get("aud") not in (
        reg.client_id,
        [reg.client_id],
    ):
        raise LaunchError("The id_token was not issued for this app.")
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool) or exp < time.time() - 60:
        raise LaunchError("The id_token has expired.")
    return id_tokens.user_reference(claims.get("fhirUser"))


def _active_session() -> tuple[str, dict[str, Any]]:
    """The launch this request belongs to: the cookie's browser and the URL's launch id."""
    store = _sessions()
    browser = store.browser(request.cookies.get(COOKIE))
    launch_id = request.args.get(LAUNCH_PARAM, "")
    if browser is None or not launch_id:
        raise LaunchError("No launched patient in this session. Launch the app from the EHR.", 401)
    sid = store.key(browser, "launch", launch_id[:128])
    data = store.load(sid)
    if not data or "access_token" not in data:
        raise LaunchError("No launched patient in this session. Launch the app from the EHR.", 401)
    g.salvage_launch = launch_id  # carried by url_for into the page's own links
    return sid, data


@bp.url_defaults
def _launch_in_links(endpoint: str, values: dict[str, Any]) -> None:
    launch_id = g.get("salvage_launch")
    if launch_id and endpoint in _LAUNCH_SCOPED:
        values.setdefault(LAUNCH_PARAM, launch_id)


_LAUNCH_SCOPED = frozenset({"smart_app.screen", "smart_app.api_summary", "smart_app.ehr_style"})


def _refresher(sid: str, data: dict[str, Any]) -> Any:
    """A refresh function safe to call from the reader threads: everything it needs from the
    app context is taken now."""
    reg = _registrations()[data["iss"]]
    oauth = _oauth_session(reg, data["token_endpoint"])
    store = _sessions()

    def refresh() -> str | None:
        """Refresh with the same client authentication; keep a rotated refresh token (S22)."""
        if not data.get("refresh_token"):
            return None
        try:
            token = oauth.refresh_token(
                data["token_endpoint"], refresh_token=data["refresh_token"], timeout=10
            )
        except (AuthlibBaseError, requests.RequestException, ValueError, KeyError):
            return None  # the EHR refused the refresh token: the user must launch again
        data["access_token"] = token["access_token"]
        data["refresh_token"] = token.get("refresh_token") or data["refresh_token"]
        data["expires_at"] = time.time() + float(token.get("expires_in") or 300)
        store.save(sid, data)
        return str(token["access_token"])

    return refresh


def _analysis() -> tuple[dict[str, Any], dict[str, Any]]:
    sid, data = _active_session()
    kb = current_app.extensions["salvage_kb"]
    if data.get("open_server"):
        holder = fhir_reader.TokenHolder("")  # no Authorization header at all
    else:
        holder = fhir_reader.TokenHolder(data["access_token"], _refresher(sid, data))
    if not data.get("open_server") and data["expires_at"] - time.time() < 60:
        # refresh before expiry (S21)
        if not holder.renew(data["access_token"]) and data["expires_at"] < time.time():
            raise LaunchError(RELAUNCH, 401)
    types = scopes.readable_types(data["scope"])
    reg = _registrations().get(data["iss"])
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
    _, data = _active_session()  # no session: the error page, before anything is streamed
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
    patient = summary["patients"][0]
    timeline, markers = smart_screen.charts(patient, service.today())
    html = render_template(
        "app_result.html",
        summary=summary,
        p=patient,
        timeline=timeline,
        markers=markers,
        focus=_app_context(data.get("app_context")),
        need_banner=data.get("need_patient_banner", True),
        user=data.get("user") or "",
        chart=chart,
        streamed=True,
    )
    return html + "</main></body></html>"


@bp.get("/app/style.css")
def ehr_style() -> Response:
    """The EHR's smart_style_url colours as CSS variables (served, so CSP stays 'self')."""
    try:
        _, data = _active_session()
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
    response = jsonify(keys.public_jwks(_app_key()))
    # A deliberate lifetime instead of the pages' no-store (quirk 15, key rotation in README).
    response.headers["Cache-Control"] = f"public, max-age={keys.JWKS_MAX_AGE_SECONDS}"
    return response


@bp.after_request
def _headers(response: Response) -> Response:
    registrations = _registrations().values()
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
