"""The client's JWKS is imported once and reused (issue 16): the cache must never weaken a check,
a key outside the set still fails, and a fetched set is read again after its lifetime."""

from __future__ import annotations

import json
from typing import Any

from joserfc.jwk import ECKey, KeySet

import cds_hooks.security as security
from tests.cds_hooks.conftest import BASE, ISS, KEY, signed

PATH = "/cds-services"


def _client(jwks_url: str | None = None) -> security.TrustedClient:
    inline = None if jwks_url else {"keys": [KEY.as_dict(private=False)]}
    return security.TrustedClient(iss=ISS, jwks_url=jwks_url, jwks=inline, fhir_servers=())


def _verify(client: security.TrustedClient, token: str) -> Any:
    return security.verify_request_jwt(
        f"Bearer {token}", f"{BASE}{PATH}", {ISS: client}, lambda _jti, _until: True
    )


def test_an_inline_jwks_is_imported_once_and_still_refuses_another_key(monkeypatch) -> None:
    imports = []
    real = KeySet.import_key_set
    monkeypatch.setattr(
        security.KeySet, "import_key_set", lambda data: imports.append(1) or real(data)
    )
    client = _client()
    for _ in range(3):
        assert _verify(client, signed(PATH)) is client
    assert len(imports) == 1
    stranger = ECKey.generate_key("P-384", {"alg": "ES384"})
    stranger.ensure_kid()
    forged = signed(PATH, key=stranger, header={"kid": KEY.kid})  # the trusted kid, wrong key
    try:
        _verify(client, forged)
    except security.Unauthorized:
        pass
    else:
        raise AssertionError("a token signed by a key outside the cached set was accepted")


def test_a_fetched_jwks_is_read_once_per_lifetime(monkeypatch) -> None:
    from tests.fhir.hostile_server import hostile_server, http_answer

    clock = [1000.0]
    monkeypatch.setattr(security.time, "monotonic", lambda: clock[0])
    with hostile_server() as server:
        server.route("/jwks", http_answer(json.dumps({"keys": [KEY.as_dict(private=False)]})))
        client = _client(f"http://127.0.0.1:{server.port}/jwks")
        for _ in range(3):
            assert _verify(client, signed(PATH)) is client
        assert len(server.requests) == 1
        clock[0] += security.JWKS_TTL_SECONDS + 1
        assert _verify(client, signed(PATH)) is client
        assert len(server.requests) == 2
