"""H17 and issue 14: any unreadable JWT is a bare 401, never a 500; lifetime and nbf are checked."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import pytest
from joserfc import jws

from tests.cds_hooks.conftest import BASE, ISS, KEY, signed

PATH = "/cds-services"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed_raw(payload: bytes, header: Any = None) -> str:
    """A correctly signed JWS whose payload is any bytes (the signature is not the problem)."""
    head = header or {"alg": "ES384", "typ": "JWT", "kid": KEY.kid}
    return jws.serialize_compact(head, payload, KEY, algorithms=["ES384"])


def claims(**changes: Any) -> bytes:
    now = int(time.time())
    base = {
        "iss": ISS,
        "aud": f"{BASE}{PATH}",
        "exp": now + 300,
        "iat": now,
        "jti": str(uuid.uuid4()),
    }
    base.update(changes)
    return json.dumps({k: v for k, v in base.items() if v is not None}).encode()


UNREADABLE = [
    signed_raw(b"[]"),
    signed_raw(b'"x"'),
    signed_raw(b"null"),
    signed_raw(b"[" * 2000 + b"]" * 2000),
    signed_raw(b'{"a":' * 2000 + b"1" + b"}" * 2000),
    signed_raw(b"\xff\xfe"),
    signed_raw(claims(iss=["x"])),
    signed_raw(claims(iss={"a": 1})),
    signed_raw(claims(jti={"a": 1})),
    signed_raw(claims(exp="soon")),
    signed_raw(claims(exp=True)),
    signed_raw(claims(exp=1e308)),
    signed_raw(claims(aud={"a": 1})),
    _b64(b"[]") + "." + _b64(claims()) + "." + _b64(b"sig"),
    _b64(b'"hdr"') + "." + _b64(claims()) + "." + _b64(b"sig"),
    _b64(b"[" * 2000 + b"]" * 2000) + "." + _b64(claims()) + "." + _b64(b"sig"),
    _b64(json.dumps({"alg": "ES384", "kid": {"x": 1}}).encode()) + "." + _b64(claims()) + ".x",
    "a.b.c.d.e",
    "....",
    "é.é.é",
]


@pytest.mark.parametrize("token", UNREADABLE)
def test_an_unreadable_token_is_a_bare_401(call, token) -> None:
    reply = call(None, None, method="GET", path=PATH, token=token)
    assert reply.status_code == 401 and reply.get_data() == b""


def test_a_token_living_longer_than_5_minutes_is_refused(call) -> None:
    assert call(None, None, method="GET", path=PATH, token=signed(PATH)).status_code == 200
    long_lived = signed(PATH, lifetime=3600)
    assert call(None, None, method="GET", path=PATH, token=long_lived).status_code == 401


def test_a_token_not_valid_yet_is_refused(call) -> None:
    now = int(time.time())
    early = signed_raw(claims(nbf=now + 600))
    assert call(None, None, method="GET", path=PATH, token=early).status_code == 401
    valid = signed_raw(claims(nbf=now - 10))
    assert call(None, None, method="GET", path=PATH, token=valid).status_code == 200


@pytest.mark.parametrize(
    "answer",
    [b"[]", b'{"keys": 5}', b'{"keys": [{}]}', b'{"keys": [{"kty": "EC"}]}', b"not json", b""],
)
def test_an_unreadable_jwks_is_a_bare_401(tmp_path, answer) -> None:
    from salvage.app import create_app
    from tests.cds_hooks.conftest import write_clients
    from tests.fhir.hostile_server import hostile_server, http_answer

    with hostile_server() as server:
        server.route("/jwks", http_answer(answer))
        clients = write_clients(tmp_path / "c.json", jwks=None)
        document = json.loads(clients.read_text())
        document["clients"][0]["jwks_url"] = f"http://127.0.0.1:{server.port}/jwks"
        clients.write_text(json.dumps(document))
        app = create_app(
            {
                "TESTING": True,
                "BASE_URL": BASE,
                "CDS_CLIENTS": str(clients),
                "DATABASE_URL": str(tmp_path / "d.db"),
            }
        )
        reply = app.test_client().get(PATH, headers={"Authorization": f"Bearer {signed(PATH)}"})
    assert reply.status_code == 401 and reply.get_data() == b""
