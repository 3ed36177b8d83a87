"""Signing in to a SMART EHR: discovery, the authorize request (GET or POST), the callback and
its token, the id_token, refresh; and the per-launch session the app's pages read (issue 18,
quirk 18: the cookie identifies the browser, the launch id in the URL picks the launch)."""

from __future__ import annotations

import hmac
import logging
import re
import secrets
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode

import requests
from authlib.common.errors import AuthlibBaseError  # OAuth2Error and OAuthError alike
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from flask import Response, current_app, g, make_response, redirect, render_template, request
from joserfc.errors import JoseError

from salvage.errors import LaunchError
from smart_app import discovery, id_tokens, keys, registry, scopes
from smart_app.sessions import COOKIE, LAUNCH_PARAM, SessionStore

log = logging.getLogger("salvage.smart")

PUBLIC_BANNER = (
    "Public test server — synthetic or arbitrary data uploaded by anyone; not a medical record; "
    "for testing only"
)
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def registrations() -> dict[str, registry.Registration]:
    """The registrations create_app loaded and validated at start-up."""
    registrations: dict[str, registry.Registration] = current_app.extensions[
        "salvage_smart_registrations"
    ]
    return registrations


def sessions() -> SessionStore:
    return SessionStore(current_app.extensions["salvage_db"], current_app.config["SECRET_KEY"])


def base() -> str:
    return str(current_app.config["BASE_URL"]).rstrip("/")


def signing_key() -> Any:
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
        redirect_uri=f"{base()}/callback",
        code_challenge_method="S256",  # PKCE S256 always (S9)
        **extra,
    )
    if reg.auth_method == "private_key_jwt":
        key = signing_key()

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
    secure = base().startswith("https://")
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


def start(iss: str, launch: str | None) -> Response:
    reg = registrations().get(registry.normalise(iss))
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
    store = sessions()
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


def open_server(reg: registry.Registration, patient: str) -> Response:
    """An allow-listed unauthenticated public server (issue 18 section 2): read-only, no token
    is ever sent to it, and every page about it carries the public-test-server banner."""
    patient = patient.strip()
    if not FHIR_ID.fullmatch(patient):
        raise LaunchError("Enter the test patient's id (letters, digits, '-' and '.').")
    store = sessions()
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
    target = f"{base()}/app?{urlencode({LAUNCH_PARAM: launch_id})}"
    return _cookie(redirect(target, 303), cookie)


def callback() -> Response:
    store = sessions()
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
    reg = registrations()[data["iss"]]
    oauth = _oauth_session(reg, data["token_endpoint"])
    try:
        token = oauth.fetch_token(
            data["token_endpoint"],
            code=request.args.get("code", ""),
            code_verifier=data["verifier"],
            redirect_uri=f"{base()}/callback",
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
    user = verify_id_token(token, data, reg) if token.get("id_token") else None
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
    target = f"{base()}/app?{urlencode({LAUNCH_PARAM: launch_id})}"
    return _cookie(redirect(target, 303), store.rotate(cookie, browser))


def check_token_response(token: dict[str, Any]) -> None:
    """S19: an access token with token_type Bearer in any case; unknown keys are ignored."""
    if str(token.get("token_type", "")).lower() != "bearer" or not token.get("access_token"):
        raise LaunchError("The EHR's token response is not a bearer token.")


def verify_id_token(
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


def active_session() -> tuple[str, dict[str, Any]]:
    """The launch this request belongs to: the cookie's browser and the URL's launch id."""
    store = sessions()
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


def refresher(sid: str, data: dict[str, Any]) -> Any:
    """A refresh function safe to call from the reader threads: everything it needs from the
    app context is taken now."""
    reg = registrations()[data["iss"]]
    oauth = _oauth_session(reg, data["token_endpoint"])
    store = sessions()

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
