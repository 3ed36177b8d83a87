"""SMART discovery, authorize (EHR and standalone launch) and token endpoints."""

from __future__ import annotations

import secrets
import time
from typing import Any

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749.errors import InvalidClientError, InvalidRequestError
from flask import Blueprint, current_app, jsonify, render_template, request

bp = Blueprint("auth", __name__)

SCOPES_SUPPORTED = [
    "openid",
    "fhirUser",
    "launch",
    "launch/patient",
    "offline_access",
    "patient/*.rs",
    "patient/*.read",
    "user/*.rs",
    "user/*.read",
    "system/*.rs",
    "system/*.read",
]
CAPABILITIES = [
    "launch-ehr",
    "launch-standalone",
    "client-public",
    "client-confidential-symmetric",
    "client-confidential-asymmetric",
    "context-ehr-patient",
    "context-standalone-patient",
    "context-banner",
    "context-style",
    "sso-openid-connect",
    "permission-offline",
    "permission-patient",
    "permission-user",
    "permission-v1",
    "permission-v2",
]


def _sandbox() -> Any:
    return current_app.extensions["sandbox"]


@bp.get("/fhir/.well-known/smart-configuration")
def smart_configuration() -> Any:
    """SMART App Launch 2.2 discovery document (S1, S2)."""
    if (_sandbox().store.value("faults", {}) or {}).get("no_well_known"):
        return jsonify({"error": "not found"}), 404  # fault switch: test the S3 fallback
    cfg = _sandbox().config
    return jsonify(
        {
            "issuer": cfg.fhir_base,
            "jwks_uri": f"{cfg.ehr_base}/.well-known/jwks.json",
            "authorization_endpoint": f"{cfg.ehr_base}/auth/authorize",
            "token_endpoint": f"{cfg.ehr_base}/auth/token",
            "token_endpoint_auth_methods_supported": [
                "none",
                "client_secret_basic",
                "private_key_jwt",
            ],
            "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
            "grant_types_supported": [
                "authorization_code",
                "refresh_token",
                "client_credentials",
            ],
            "scopes_supported": SCOPES_SUPPORTED,
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "capabilities": CAPABILITIES,
        }
    )


@bp.get("/.well-known/jwks.json")
def jwks() -> Any:
    return jsonify(_sandbox().keys.public_jwks())


def _error_page(message: str, status: int = 400) -> Any:
    return render_template("error.html", message=message), status


@bp.route("/auth/authorize", methods=["GET", "POST"])
def authorize() -> Any:
    sandbox = _sandbox()
    server = sandbox.oauth
    cfg = sandbox.config
    params = request.values
    # RFC 6749 4.1.2.1: a bad client_id or redirect_uri is shown to the user, never redirected to.
    client = cfg.client(params.get("client_id", ""))
    if client is None:
        return _error_page("Unknown client: this application is not registered with the EHR.")
    if params.get("redirect_uri") not in client.redirect_uris:
        return _error_page("The redirect_uri does not match the one registered for this client.")
    try:
        grant = server.get_consent_grant(end_user=None)
    except OAuth2Error as error:
        return server.handle_error_response(request, error)
    scope = params.get("scope", "").split()
    try:
        if params.get("aud", "").rstrip("/") != cfg.fhir_base:
            raise InvalidRequestError("aud must be this EHR's FHIR base URL")
        if "launch" in scope:
            context = sandbox.store.launch(params.get("launch", ""))
            if context is None:
                raise InvalidRequestError("unknown or expired launch")
            if context.get("client_id") and context["client_id"] != client.client_id:
                raise InvalidRequestError("launch was issued for another client")
            return _grant(server, grant, context)
        if request.method == "POST":
            if request.form.get("decision") != "allow":
                return server.create_authorization_response(grant=grant, grant_user=None)
            patient = request.form.get("patient", "")
            if "launch/patient" in scope and patient not in sandbox.patient_ids():
                return _error_page("Choose a patient from the list.")
            user = request.form.get("user", cfg.users[0]["id"])
            context = {
                "user": user,
                "patient": patient or None,
                "need_patient_banner": True,
                "smart_style_url": _style_url(),
            }
            return _grant(server, grant, context)
    except OAuth2Error as error:
        error.redirect_uri = params.get("redirect_uri")
        error.state = params.get("state")
        return server.handle_error_response(request, error)
    # Standalone launch: the user signs in and picks a patient (S6).
    return render_template(
        "authorize.html",
        client=client,
        params=params.to_dict(),
        patients=sandbox.patient_list(),
        users=cfg.users,
        needs_patient="launch/patient" in scope,
        csrf=secrets.token_urlsafe(16),
    )


def _style_url() -> str:
    cfg = _sandbox().config
    return f"{cfg.ehr_base}{cfg.smart_style_url}"


def _grant(server: Any, grant: Any, context: dict[str, Any]) -> Any:
    grant_user = {
        "user": context["user"],
        "auth_time": int(time.time()),
        "context": {k: v for k, v in context.items() if k not in ("user", "client_id")},
    }
    return server.create_authorization_response(grant=grant, grant_user=grant_user)


@bp.post("/auth/token")
def token() -> Any:
    server = _sandbox().oauth
    try:
        return server.create_token_response()
    except InvalidClientError as error:
        return server.handle_error_response(request, error)
