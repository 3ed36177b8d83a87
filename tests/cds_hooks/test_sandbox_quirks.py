"""Issue 18, CDS Hooks sandbox quirks 24-28, reproduced with requests shaped as the sandbox sends
them (sandbox.cds-hooks.org source: src/retrieve-data-helpers/, src/components/CardList/)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from salvage.app import create_app
from tests.cds_hooks.conftest import (
    BASE,
    FHIR,
    fixture_prefetch,
    hook_body,
    signed,
    write_clients,
)
from tests.fhir.hostile_server import hostile_server, http_answer

SIGN = "salvage-order-sign"
SELECT = "salvage-order-select"
VIEW = "salvage-patient-view"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def _app(tmp_path: Path, allow_dev: bool = False, **client: Any) -> Any:
    clients = write_clients(tmp_path / "clients.json", **client)
    return create_app(
        {
            "TESTING": True,
            "BASE_URL": BASE,
            "CDS_CLIENTS": str(clients),
            "DATABASE_URL": str(tmp_path / "salvage.db"),
            "ALLOW_DEV_ENTRIES": allow_dev,
        }
    )


def _post(app: Any, path: str, body: Any, aud: str | None = None) -> Any:
    token = signed(path, aud=aud)
    return app.test_client().post(
        path,
        data=json.dumps(body),
        headers={"Authorization": f"Bearer {token}"},
        content_type="application/json",
    )


# -- 24: audience as the sandbox's user typed the discovery URL --------------------------------
ALIASES = [
    "https://cds.example.org/cds-services/",  # a trailing slash: .../cds-services//<id>
    "http://localhost:8700/cds-services",  # localhost against 127.0.0.1
    "http://cds.example.org/cds-services",  # http behind a TLS proxy
]


@pytest.mark.parametrize("alias", ALIASES)
def test_q24_a_configured_audience_alias_is_accepted(tmp_path, alias) -> None:
    app = _app(tmp_path, audience_aliases=ALIASES)
    body = hook_body(
        "patient-view", "dlbcl-late-relapse", prefetch=fixture_prefetch("dlbcl-late-relapse")
    )
    reply = _post(app, f"/cds-services/{VIEW}", body, aud=f"{alias}/{VIEW}")
    assert reply.status_code == 200, reply.get_data()
    # discovery: the discovery URL itself; feedback: .../<id>/feedback
    client = app.test_client()
    discovery = client.get(
        "/cds-services", headers={"Authorization": f"Bearer {signed('/cds-services', aud=alias)}"}
    )
    assert discovery.status_code == 200


@pytest.mark.parametrize("alias", ALIASES)
def test_q24_without_an_alias_the_401_is_logged_naming_both_audiences(
    tmp_path, alias, caplog
) -> None:
    app = _app(tmp_path)
    body = hook_body(
        "patient-view", "dlbcl-late-relapse", prefetch=fixture_prefetch("dlbcl-late-relapse")
    )
    with caplog.at_level(logging.INFO, logger="salvage"):
        reply = _post(app, f"/cds-services/{VIEW}", body, aud=f"{alias}/{VIEW}")
    assert reply.status_code == 401 and reply.get_data() == b""  # still a bare 401 (H17)
    logged = caplog.text
    assert f"{alias}/{VIEW}" in logged and f"{BASE}/cds-services/{VIEW}" in logged
    assert "audience_aliases" in logged


def test_q24_an_alias_is_not_a_wildcard(tmp_path) -> None:
    app = _app(tmp_path, audience_aliases=["http://localhost:8700/cds-services"])
    body = hook_body(
        "patient-view", "dlbcl-late-relapse", prefetch=fixture_prefetch("dlbcl-late-relapse")
    )
    reply = _post(
        app, f"/cds-services/{VIEW}", body, aud=f"http://localhost:8700/cds-services/{SIGN}"
    )
    assert reply.status_code == 401  # the alias of another service's URL


# -- 25: DSTU2 draft orders --------------------------------------------------------------------
def test_q25_a_dstu2_medication_order_is_a_400_naming_r4(call) -> None:
    body = hook_body(
        "order-sign", "dlbcl-early-relapse", [], fixture_prefetch("dlbcl-early-relapse")
    )
    body["context"]["draftOrders"]["entry"] = [
        {
            "resource": {
                "resourceType": "MedicationOrder",
                "id": "order-123",
                "status": "draft",
                "medicationCodeableConcept": {"text": "rituximab"},
            }
        }
    ]
    reply = call(SIGN, body)
    assert reply.status_code == 400
    assert "R4" in reply.get_json()["error"] and "MedicationOrder" in reply.get_json()["error"]


# -- 26: omitted prefetch keys, no fhirAuthorization -------------------------------------------
def test_q26_omitted_keys_without_authorization_give_a_412_listing_them(call) -> None:
    prefetch = fixture_prefetch("dlbcl-early-relapse")
    del prefetch["observations"], prefetch["conditions"]  # their queries failed in the browser
    body = hook_body("patient-view", "dlbcl-early-relapse", prefetch=prefetch, fhirServer=FHIR)
    reply = call(VIEW, body)
    assert reply.status_code == 412
    error = reply.get_json()["error"]
    assert "observations" in error and "conditions" in error and "patient," not in error


def test_q26_an_open_server_entry_reads_omitted_keys_without_a_token(tmp_path) -> None:
    prefetch = fixture_prefetch("dlbcl-early-relapse")
    observations = prefetch.pop("observations")
    with hostile_server() as server:
        server.route("/fhir/Observation", http_answer(observations))
        app = _app(tmp_path, open_fhir_servers=[server.base])
        body = hook_body(
            "patient-view", "dlbcl-early-relapse", prefetch=prefetch, fhirServer=server.base
        )
        reply = _post(app, f"/cds-services/{VIEW}", body)
        assert reply.status_code == 200, reply.get_data()
        assert server.requests, "the omitted key was read from the open server"
        for _, headers in server.requests:
            assert not any(k.lower() == "authorization" for k in headers)
        # With a fhirAuthorization the open-server entry does not apply: the token is never
        # sent to a server that is only listed as open.
        body["fhirAuthorization"] = {
            "access_token": "secret-token",
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "patient/*.read",
            "subject": "cds",
        }
        assert _post(app, f"/cds-services/{VIEW}", body).status_code == 401
        assert not any("secret-token" in str(h) for _, h in server.requests)


# -- 27: the sandbox's draft MedicationRequests ------------------------------------------------
def _sandbox_draft(text: str | None, code: str | None = None) -> dict[str, Any]:
    """As the sandbox builds it: no intent before dispense details, category one object, the
    medication absent until one is picked from its RxNorm product list."""
    draft: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": "request-123",
        "status": "draft",
        "subject": {"reference": "Patient/dlbcl-early-relapse"},
        "category": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/medicationrequest-category",
                    "code": "outpatient",
                }
            ]
        },
    }
    if text:
        draft["medicationCodeableConcept"] = {
            "text": text,
            "coding": [{"system": RXNORM, "code": code or "0", "display": text}],
        }
    return draft


def _sign_with(call, patient: str, draft: dict[str, Any]) -> Any:
    body = hook_body("order-sign", patient, [], fixture_prefetch(patient))
    draft["subject"] = {"reference": f"Patient/{patient}"}
    body["context"]["draftOrders"]["entry"] = [{"resource": draft}]
    return call(SIGN, body)


def test_q27_a_draft_without_intent_and_with_one_category_object_is_read(call) -> None:
    reply = _sign_with(
        call, "dlbcl-intolerance", _sandbox_draft("vincristine 1 MG/ML Injectable Solution")
    )
    assert reply.status_code == 200, reply.get_data()
    (card,) = reply.get_json()["cards"]
    assert "not tolerated" in card["summary"]


def test_q27_a_draft_before_any_drug_is_chosen_is_not_an_error(call) -> None:
    reply = _sign_with(call, "dlbcl-intolerance", _sandbox_draft(None))
    assert reply.status_code == 200 and reply.get_json()["cards"] == []


def test_q27_other_invalid_drafts_stay_a_400(call) -> None:
    draft = _sandbox_draft("vincristine")
    draft["authoredOn"] = "yesterday"
    assert _sign_with(call, "dlbcl-intolerance", draft).status_code == 400


@pytest.mark.parametrize(
    ("patient", "product", "expected_topic"),
    [
        ("hiv-virologic-failure", "darunavir 600 MG Oral Tablet [Prezista]", "single-active-drug"),
    ],
)
def test_q27_rxnorm_products_from_the_picker_map_to_ingredients(
    call, patient, product, expected_topic
) -> None:
    reply = _sign_with(call, patient, _sandbox_draft(product))
    assert reply.status_code == 200, reply.get_data()
    assert [c["source"]["topic"]["code"] for c in reply.get_json()["cards"]] == [expected_topic]


# -- 28: rendering -----------------------------------------------------------------------------
def test_q28_record_text_in_detail_is_escaped() -> None:
    """The sandbox renders detail as Markdown with raw HTML: free text from a record (a
    genotype report, a reason) must arrive as literal text."""
    from cds_hooks import cards
    from salvage.engine.order_checks import OrderFinding
    from salvage.engine.recommend import Recommendation
    from salvage.knowledge import load_knowledge

    hostile = '<img src=x onerror="alert(1)"> [click](javascript:alert(1)) **bold** ~~x~~'
    finding = OrderFinding(
        kind="repeats-failed-therapy",
        severity="warning",
        summary=f"This order repeats {hostile}",
        facts=(f"Genotype: {hostile}.",),
        missing_data=(hostile,),
    )
    rec = Recommendation(
        patient="p", disease=None, failure=None, options=(), excluded=(), missing_data=()
    )
    builder = cards.CardBuilder(load_knowledge(), BASE, "p", None)
    detail = cards.render(finding, rec, (), builder).card["detail"]
    assert "<img" not in detail and "[click](" not in detail and "**bold**" not in detail
    assert detail.count("&lt;img") == 3 and "\\[click\\]" in detail and "\\~\\~x" in detail


def test_q28_a_suggestions_create_comes_before_its_deletes(call) -> None:
    drugs = ["rituximab", "cyclophosphamide", "doxorubicin", "vincristine", "prednisone"]
    body = hook_body(
        "order-sign", "dlbcl-early-relapse", drugs, fixture_prefetch("dlbcl-early-relapse")
    )
    reply = call(SIGN, body)
    suggestions = [s for c in reply.get_json()["cards"] for s in c.get("suggestions", [])]
    assert suggestions
    for suggestion in suggestions:
        types = [a["type"] for a in suggestion["actions"]]
        assert types[0] == "create" and types == sorted(types, key=lambda t: t != "create")
        assert all(a.get("description") for a in suggestion["actions"])


@pytest.mark.parametrize(
    "override",
    [
        None,  # dismissed without a reason
        {"reason": {"code": "patient-preference", "system": f"{BASE}/override-reasons"}},
        {},
    ],
)
def test_q28_feedback_without_a_reason_or_display_is_accepted(call, override) -> None:
    item: dict[str, Any] = {
        "card": "0b1c2d3e-0000-4000-8000-000000000001",
        "outcome": "overridden",
        "outcomeTimestamp": "2026-05-01T10:00:00Z",
    }
    if override is not None:
        item["overrideReason"] = override
    path = f"/cds-services/{SIGN}/feedback"
    reply = call(SIGN, {"feedback": [item]}, path=path)
    assert reply.status_code == 200, reply.get_data()


def test_every_request_from_a_dev_only_client_is_logged_as_such(tmp_path, caplog) -> None:
    app = _app(tmp_path, allow_dev=True, dev_only=True)
    body = hook_body(
        "patient-view", "dlbcl-late-relapse", prefetch=fixture_prefetch("dlbcl-late-relapse")
    )
    with caplog.at_level(logging.INFO, logger="salvage.cds"):
        assert _post(app, f"/cds-services/{VIEW}", body).status_code == 200
    assert "DEV-ONLY CLIENT" in caplog.text


def test_q24_a_jwt_shaped_like_the_sandbox_s_is_accepted(tmp_path) -> None:
    """ES384, its kid, jku = the allow-listed JWKS URL, exp = iat + 300, no sub, no nbf; aud is
    the discovery URL as typed plus the service id."""
    import time
    import uuid

    from joserfc import jwt as jose_jwt
    from joserfc.jwk import ECKey

    key = ECKey.generate_key(
        "P-384", {"alg": "ES384", "kid": "44823f3d-0b01-4a6c-a80e-b9d3e8a7226f"}
    )
    with hostile_server() as keys_server:
        jku = f"http://127.0.0.1:{keys_server.port}/.well-known/jwks.json"
        keys_server.route(
            "/.well-known/jwks.json", http_answer({"keys": [key.as_dict(private=False)]})
        )
        clients = tmp_path / "cds.json"
        clients.write_text(
            json.dumps(
                {
                    "clients": [
                        {
                            "iss": "https://sandbox.cds-hooks.org",
                            "jwks_url": jku,
                            "fhir_servers": [FHIR],
                            "audience_aliases": ["http://localhost:8700/cds-services/"],
                            "dev_only": True,
                        }
                    ]
                }
            )
        )
        app = create_app(
            {
                "TESTING": True,
                "BASE_URL": "http://127.0.0.1:8700",
                "CDS_CLIENTS": str(clients),
                "DATABASE_URL": str(tmp_path / "s.db"),
            }
        )
        now = int(time.time())
        token = jose_jwt.encode(
            {"alg": "ES384", "typ": "JWT", "kid": key.kid, "jku": jku},
            {
                "iss": "https://sandbox.cds-hooks.org",
                "aud": f"http://localhost:8700/cds-services//{VIEW}",
                "exp": now + 300,
                "iat": now,
                "jti": str(uuid.uuid4()),
            },
            key,
            algorithms=["ES384"],
        )
        body = hook_body(
            "patient-view", "dlbcl-late-relapse", prefetch=fixture_prefetch("dlbcl-late-relapse")
        )
        reply = app.test_client().post(
            f"/cds-services/{VIEW}",
            data=json.dumps(body),
            headers={"Authorization": f"Bearer {token}"},
            content_type="application/json",
        )
    assert reply.status_code == 200, reply.get_data()
