"""SMART authorization server built on authlib's server components (SMART App Launch 2.2).

authlib handles the RFC 6749 protocol (parameter checks, error codes, client authentication,
token responses); this module supplies the storage, the SMART launch context, the S256-only PKCE
rule that SMART requires of every client (S9), refresh-token rotation (S22), private_key_jwt client
assertions with RS384/ES384 only (S18), an OpenID Connect id_token carrying fhirUser (S23) and
SMART Backend Services: the client_credentials grant for asymmetric clients registered with
system/ scopes (no user, no launch context, no refresh token).
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.request
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc6749.errors import InvalidClientError, InvalidRequestError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7636 import CodeChallenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from sandbox import scopes as smart_scopes
from sandbox.config import Client, SandboxConfig
from sandbox.keys import SandboxKeys
from sandbox.store import Store

CLIENT_AUTH = {
    "public": "none",
    "confidential-symmetric": "client_secret_basic",
    "confidential-asymmetric": "private_key_jwt",
}


class SmartClient(ClientMixin):
    def __init__(self, registration: Client) -> None:
        self.reg = registration

    def get_client_id(self) -> str:
        return self.reg.client_id

    def get_default_redirect_uri(self) -> str:
        return self.reg.redirect_uris[0]

    def get_allowed_scope(self, scope: str) -> str:
        return smart_scopes.narrow(scope or "", self.reg.scope)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.reg.redirect_uris  # exact match (S7)

    def check_client_secret(self, client_secret: str) -> bool:
        expected = self.reg.client_secret or ""
        return bool(expected) and secrets.compare_digest(expected, client_secret or "")

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == CLIENT_AUTH[self.reg.type]

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        if grant_type == "client_credentials":
            # SMART Backend Services: asymmetric client authentication only, system/ scopes only.
            return self.reg.type == "confidential-asymmetric" and any(
                s.context == "system" for s in smart_scopes.resource_scopes(self.reg.scope)
            )
        return grant_type in ("authorization_code", "refresh_token")


class StoredCode:
    def __init__(self, code: str, data: dict[str, Any]) -> None:
        self.code = code
        self.data = data
        self.code_challenge = data.get("code_challenge")
        self.code_challenge_method = data.get("code_challenge_method")

    def get_redirect_uri(self) -> str:
        return self.data["redirect_uri"]

    def get_scope(self) -> str:
        return self.data["scope"]

    def get_nonce(self) -> str | None:
        return self.data.get("nonce")

    def get_auth_time(self) -> int:
        return int(self.data["auth_time"])


class StoredRefresh:
    def __init__(self, token: str, data: dict[str, Any]) -> None:
        self.token = token
        self.data = data

    def get_scope(self) -> str:
        return self.data["scope"]

    def check_client(self, client: SmartClient) -> bool:
        return client.get_client_id() == self.data["client_id"]

    def is_expired(self) -> bool:
        return False  # the store returns no expired tokens

    def is_revoked(self) -> bool:
        return False


class S256OnlyChallenge(CodeChallenge):
    """SMART: PKCE with S256 for every client, `plain` refused (STANDARDS.md S9)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]  # noqa: RUF012

    def validate_code_challenge(self, grant, redirect_uri):  # type: ignore[no-untyped-def]
        request = grant.request
        if not request.payload.data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send code_challenge with method S256")
        if request.payload.data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256")
        return super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant, result):  # type: ignore[no-untyped-def]
        if not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("Missing 'code_verifier'")  # confidential clients too
        return super().validate_code_verifier(grant, result)


def build_authorization_server(app, sandbox: Any) -> AuthorizationServer:  # type: ignore[no-untyped-def]
    """Closures read sandbox.config at call time, so registrations can change while running."""
    store: Store = sandbox.store
    keys: SandboxKeys = sandbox.keys

    def current() -> SandboxConfig:
        return sandbox.config

    def token_url() -> str:
        return f"{current().ehr_base}/auth/token"

    def query_client(client_id: str) -> SmartClient | None:
        registration = current().client(client_id)
        return SmartClient(registration) if registration else None

    def save_token(token: dict[str, Any], request: Any) -> None:
        now = time.time()
        scope = token.get("scope", "")
        if request.user is None:  # client_credentials (Backend Services): no user, no context
            record = {
                "client_id": request.client.get_client_id(),
                "scope": " ".join(s for s in scope.split() if s.startswith("system/")),
                "user": None,
                "patient": None,
                "encounter": None,
            }
            token["scope"] = record["scope"]
            store.put(
                "token",
                "access_token",
                token["access_token"],
                record,
                now + current().token_lifetime_seconds,
            )
            return
        grant_user: dict[str, Any] = request.user
        context = grant_user["context"]
        record = {
            "client_id": request.client.get_client_id(),
            "scope": scope,
            "user": grant_user["user"],
            "patient": context.get("patient"),
            "encounter": context.get("encounter"),
        }
        store.put(
            "token",
            "access_token",
            token["access_token"],
            record,
            now + current().token_lifetime_seconds,
        )
        if token.get("refresh_token"):
            store.save_refresh(
                token["refresh_token"],
                {**record, "context": context, "auth_time": grant_user["auth_time"], "nonce": None},
                now + current().refresh_lifetime_seconds,
            )
        # SMART context in the token response (S19), added to the dict authlib returns.
        for key in (
            "patient",
            "encounter",
            "fhirContext",
            "need_patient_banner",
            "smart_style_url",
            "intent",
            "appContext",
        ):
            if context.get(key) is not None:
                token[key] = context[key]
        if "openid" in scope.split():
            token["id_token"] = id_token(
                request.client.get_client_id(), grant_user, grant_user.get("nonce")
            )

    def id_token(client_id: str, grant_user: dict[str, Any], nonce: str | None) -> str:
        now = int(time.time())
        claims = {
            "iss": current().fhir_base,
            "sub": grant_user["user"].split("/")[-1],
            "aud": client_id,
            "iat": now,
            "exp": now + 300,
            "auth_time": grant_user["auth_time"],
            "fhirUser": f"{current().fhir_base}/{grant_user['user']}",
        }
        if nonce:
            claims["nonce"] = nonce
        return jwt.encode(
            {"alg": "RS256", "kid": keys.id_token.kid, "typ": "JWT"},
            claims,
            keys.id_token,
            algorithms=["RS256"],
        )

    class CodeGrant(grants.AuthorizationCodeGrant):
        TOKEN_ENDPOINT_AUTH_METHODS = ["none", "client_secret_basic", "private_key_jwt"]  # noqa: RUF012

        def save_authorization_code(self, code: str, request: Any) -> None:
            grant_user = request.user
            data = {
                "client_id": request.client.get_client_id(),
                "redirect_uri": request.payload.redirect_uri,
                "scope": request.client.get_allowed_scope(request.payload.scope),
                "user": grant_user["user"],
                "context": grant_user["context"],
                "auth_time": grant_user["auth_time"],
                "nonce": request.payload.data.get("nonce"),
                "code_challenge": request.payload.data.get("code_challenge"),
                "code_challenge_method": request.payload.data.get("code_challenge_method"),
            }
            store.save_code(code, data, time.time() + current().code_lifetime_seconds)

        def query_authorization_code(self, code: str, client: SmartClient) -> StoredCode | None:
            data = store.use_code(code)
            if data is None or data["client_id"] != client.get_client_id():
                return None
            return StoredCode(code, data)

        def delete_authorization_code(self, authorization_code: StoredCode) -> None:
            store.mark_code_used(authorization_code.code)

        def authenticate_user(self, authorization_code: StoredCode) -> dict[str, Any]:
            d = authorization_code.data
            return {
                "user": d["user"],
                "context": d["context"],
                "auth_time": d["auth_time"],
                "nonce": d.get("nonce"),
            }

    class RefreshGrant(grants.RefreshTokenGrant):
        TOKEN_ENDPOINT_AUTH_METHODS = ["none", "client_secret_basic", "private_key_jwt"]  # noqa: RUF012
        INCLUDE_NEW_REFRESH_TOKEN = True  # rotation (S22)

        def authenticate_refresh_token(self, refresh_token: str) -> StoredRefresh | None:
            data = store.refresh(refresh_token)
            return StoredRefresh(refresh_token, data) if data else None

        def authenticate_user(self, refresh_token: StoredRefresh) -> dict[str, Any]:
            d = refresh_token.data
            return {"user": d["user"], "context": d["context"], "auth_time": d["auth_time"]}

        def revoke_old_credential(self, refresh_token: StoredRefresh) -> None:
            store.revoke_refresh(refresh_token.token)

    class PrivateKeyJWT(JWTBearerClientAssertion):
        """private_key_jwt (RFC 7523) with SMART's rules: RS384/ES384, exp at most 5 minutes."""

        CLIENT_AUTH_METHOD = "private_key_jwt"

        def get_audiences(self) -> list[str]:
            return [token_url()]

        def validate_jti(self, claims: Any, jti: str) -> bool:
            return store.first_use_of_jti(f"{claims['iss']}:{jti}", float(claims["exp"]) + 60)

        def resolve_client_public_key(self, client: SmartClient) -> KeySet:
            reg = client.reg
            if reg.jwks:
                return KeySet.import_key_set(reg.jwks)
            if reg.jwks_url:  # the registered URL only, never one taken from the request
                with urllib.request.urlopen(reg.jwks_url, timeout=5) as response:
                    return KeySet.import_key_set(json.loads(response.read()))
            raise InvalidClientError(description="no key registered for this client")

        def process_assertion_claims(self, assertion, resolve_key):  # type: ignore[no-untyped-def]
            try:
                token = jwt.decode(assertion, resolve_key, algorithms=["RS384", "ES384"])
            except (JoseError, ValueError) as exc:
                raise InvalidClientError(description="client assertion signature invalid") from exc
            self.verify_claims(token.claims)
            if float(token.claims["exp"]) - time.time() > 300 + self.leeway:
                raise InvalidClientError(
                    description="client assertion exp is more than 5 minutes away"
                )
            return token.claims

    class BackendServicesGrant(grants.ClientCredentialsGrant):
        """SMART Backend Services: client_credentials with a private_key_jwt assertion only."""

        TOKEN_ENDPOINT_AUTH_METHODS = ["private_key_jwt"]  # noqa: RUF012

    server = AuthorizationServer(app, query_client=query_client, save_token=save_token)
    server.register_grant(CodeGrant, [S256OnlyChallenge(required=True)])
    server.register_grant(RefreshGrant)
    server.register_grant(BackendServicesGrant)
    server.register_client_auth_method("private_key_jwt", PrivateKeyJWT(leeway=30))
    return server
