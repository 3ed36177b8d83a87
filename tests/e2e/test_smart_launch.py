"""SMART App Launch 2.2 (S1-S24) end to end: the salvage-cds app against the sandbox EHR."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests

from smart_app import discovery
from tests.e2e.conftest import CLIENT_TYPES, ehr_launch, start_smart_app

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.mark.parametrize("client_type", CLIENT_TYPES)
def test_s5_s8_s16_s18_ehr_launch_in_an_iframe_for_each_client_type(
    sandbox, smart_apps, browser, client_type
) -> None:
    app = smart_apps[client_type]
    page = browser.new_page(viewport={"width": 820, "height": 1200})
    page.goto(f"{sandbox.config.ehr_base}/launch/{app.client_id}/dlbcl-early-relapse?frame=1")
    frame = page.frame_locator("iframe")
    frame.locator("#lines").wait_for(timeout=20000)
    assert "R-CHOP" in frame.locator("#lines").inner_text()
    assert "Axicabtagene ciloleucel" in frame.locator("#options").inner_text()
    assert frame.locator("svg#timeline rect.bar").count() == 5
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"ehr-launch-{client_type}.png"), full_page=True)
    page.close()


def test_s6_standalone_launch_with_the_patient_picker(sandbox, smart_apps, browser) -> None:
    app = smart_apps["public"]
    page = browser.new_page(viewport={"width": 900, "height": 1200})
    page.goto(f"{app.base}/standalone")
    page.click("#connect")
    page.check("input[name=patient][value=hiv-virologic-failure]")
    page.click("#allow")
    page.locator("#lines").wait_for(timeout=20000)
    text = page.inner_text("body")
    assert "BIC/FTC/TAF" in text and "virologic-failure" in text
    assert page.locator("svg.marker").count() == 1  # HIV-1 RNA on a log scale
    assert "Missing data" in text
    page.screenshot(path=str(ARTIFACTS / "standalone-launch.png"), full_page=True)
    page.close()


def test_s10_access_denied_is_explained(sandbox, smart_apps, browser) -> None:
    app = smart_apps["public"]
    page = browser.new_page()
    page.goto(f"{app.base}/standalone")
    page.click("#connect")
    page.click("#deny")
    assert "Access was declined" in page.inner_text("body")
    page.close()


def test_s10_a_state_mismatch_is_refused(sandbox, smart_apps) -> None:
    app = smart_apps["public"]
    session = requests.Session()
    start = session.post(
        f"{app.base}/standalone",
        data={"iss": sandbox.config.fhir_base},
        allow_redirects=False,
        timeout=10,
    )
    assert start.status_code == 302 and "code_challenge_method=S256" in start.headers["Location"]
    reply = session.get(f"{app.base}/callback", params={"code": "x", "state": "forged"}, timeout=10)
    assert reply.status_code == 400 and "state mismatch" in reply.text


def test_s5_a_counterfeit_iss_is_refused_before_any_request(smart_apps) -> None:
    reply = requests.get(
        f"{smart_apps['public'].base}/launch",
        params={"iss": "http://127.0.0.1:9/fhir", "launch": "abc"},
        timeout=10,
    )
    assert reply.status_code == 400 and "not registered" in reply.text


def test_s11_s24_the_cookie_holds_no_token_and_is_http_only(sandbox, smart_apps) -> None:
    session, reply = ehr_launch(sandbox, smart_apps["public"], "dlbcl-early-relapse")
    assert reply.status_code == 200
    (cookie,) = session.cookies
    assert cookie.name == "salvage_sid" and len(cookie.value) >= 40
    assert cookie.has_nonstandard_attr("HttpOnly")
    assert "access_token" not in reply.text and "code=" not in reply.url


def test_api_summary_has_the_recommend_json_shape(sandbox, smart_apps) -> None:
    session, _ = ehr_launch(sandbox, smart_apps["public"], "dlbcl-late-relapse")
    summary = session.get(f"{smart_apps['public'].base}/api/summary", timeout=30).json()
    (patient,) = summary["patients"]
    assert summary["kb_version"]
    assert patient["failure"]["kind"] == "relapse"
    assert [o["regimen"] for o in patient["options"]][:1] == ["R-DHAP"]  # R-ICE already given
    assert {"excluded", "missing_data", "disclaimer", "lines", "data_gaps"} <= set(patient)
    assert patient["data_gaps"] == []


def test_s21_s22_an_expired_token_is_refreshed_and_the_rotated_token_kept(
    sandbox, smart_apps
) -> None:
    app = smart_apps["confidential-symmetric"]
    session, _ = ehr_launch(sandbox, app, "dlbcl-early-relapse")
    store = sandbox.state.store
    store._conn().execute("UPDATE token SET expires = 0")  # every access token expires
    before = {
        row[0] for row in store._conn().execute("SELECT token FROM refresh WHERE revoked = 0")
    }
    summary = session.get(f"{app.base}/api/summary", timeout=30).json()
    assert summary["patients"][0]["data_gaps"] == []
    after = {row[0] for row in store._conn().execute("SELECT token FROM refresh WHERE revoked = 0")}
    assert after - before, "a rotated refresh token was issued and is now the live one"


def test_s15_a_narrower_grant_is_read_and_explained(sandbox, smart_apps, tmp_path) -> None:
    narrow, server = start_smart_app(
        sandbox,
        tmp_path,
        "public",
        suffix="-narrow",
        scope="launch openid fhirUser patient/Patient.rs patient/MedicationAdministration.rs "
        "patient/Condition.rs",
    )
    try:
        session, _ = ehr_launch(sandbox, narrow, "dlbcl-early-relapse")
        patient = session.get(f"{narrow.base}/api/summary", timeout=30).json()["patients"][0]
        gaps = {g["type"]: g for g in patient["data_gaps"]}
        assert "Observation" in gaps and "failures" in gaps["Observation"]["affects"]
        assert patient["lines"][0]["regimen"] == "R-CHOP"
        assert patient["failures"] == []  # the relapse observation could not be read
        page = session.get(f"{narrow.base}/app", timeout=30).text
        assert "Some data could not be read" in page
        # issue 10, item 8: an unreadable type is never turned into "no failure"
        assert "Treatment failure could not be assessed" in page
        assert "No treatment failure is documented" not in page
        assert "could not be assessed" in patient["statement"]
    finally:
        server.shutdown()


@pytest.mark.parametrize(
    ("faults", "expected"),
    [
        ({"status": 503}, "answered 503"),
        ({"foreign_next": True}, "another server"),
        ({"truncate": True}, "incomplete or invalid"),
    ],
)
def test_a_failing_fhir_server_is_named_in_the_data_gaps(
    sandbox, smart_apps, faults, expected
) -> None:
    session, _ = ehr_launch(sandbox, smart_apps["public"], "dlbcl-early-relapse")
    sandbox.faults(**faults)
    try:
        patient = session.get(
            f"{smart_apps['public'].base}/api/summary", params={"_count": "5"}, timeout=60
        ).json()["patients"][0]
    finally:
        sandbox.faults()
    assert any(expected in g["problem"] for g in patient["data_gaps"]), patient["data_gaps"]


def test_a_slow_fhir_server_is_waited_for(sandbox, smart_apps) -> None:
    session, _ = ehr_launch(sandbox, smart_apps["public"], "dlbcl-early-relapse")
    sandbox.faults(latency_ms=600)
    started = time.monotonic()
    try:
        patient = session.get(f"{smart_apps['public'].base}/api/summary", timeout=60).json()[
            "patients"
        ][0]
    finally:
        sandbox.faults()
    assert patient["lines"] and patient["data_gaps"] == []
    assert time.monotonic() - started < 10  # the types were read concurrently


def test_s1_s3_discovery_prefers_well_known_and_falls_back_to_the_capability_statement(
    sandbox,
) -> None:
    first = discovery.discover(sandbox.config.fhir_base)
    assert first.supports_v2 and first.jwks_uri
    sandbox.faults(no_well_known=True)
    try:
        fallback = discovery.discover(sandbox.config.fhir_base)
    finally:
        sandbox.faults()
    assert fallback.token_endpoint == first.token_endpoint
    assert not fallback.supports_v2


def test_s23_the_id_token_user_is_recorded(sandbox, smart_apps) -> None:
    _, reply = ehr_launch(sandbox, smart_apps["public"], "hiv-blip")
    assert "Practitioner/sandbox-oncologist" in reply.text


def test_a_cds_card_smart_link_opens_the_app_on_its_app_context(sandbox, smart_apps) -> None:
    app = smart_apps["public"]
    context = json.dumps({"focus": "repeats-failed-therapy", "line": 1})
    session = requests.Session()
    frame = session.get(
        f"{sandbox.config.ehr_base}/smart-link/dlbcl-early-relapse",
        params={"url": f"{app.base}/launch", "appContext": context},
        timeout=30,
    )
    assert frame.status_code == 200
    src = frame.text.split('<iframe src="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    page = session.get(src, timeout=30)
    assert "Opened from a CDS card about" in page.text
    assert "repeats failed therapy" in page.text and "(line 1)" in page.text


def test_a_smart_link_to_an_unregistered_app_is_refused(sandbox) -> None:
    reply = requests.get(
        f"{sandbox.config.ehr_base}/smart-link/dlbcl-early-relapse",
        params={"url": "https://attacker.invalid/launch"},
        timeout=10,
    )
    assert reply.status_code == 400


def test_the_screen_is_keyboard_usable(sandbox, smart_apps, browser) -> None:
    """Tab reaches the evidence disclosures and Enter opens them (no mouse needed)."""
    app = smart_apps["public"]
    page = browser.new_page(viewport={"width": 800, "height": 1000})
    page.goto(f"{sandbox.config.ehr_base}/launch/{app.client_id}/dlbcl-early-relapse")
    page.locator("#lines").wait_for(timeout=20000)
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.tagName") == "SUMMARY":
            break
    assert page.evaluate("document.activeElement.tagName") == "SUMMARY"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.parentElement.open") is True
    assert page.evaluate("document.documentElement.scrollWidth") <= 800  # fits an 800 px frame
    page.close()


def _authorize_params(sandbox, app) -> dict[str, str]:
    session = requests.Session()
    start = session.post(
        f"{app.base}/standalone",
        data={"iss": sandbox.config.fhir_base},
        allow_redirects=False,
        timeout=10,
    )
    assert start.status_code == 302
    from urllib.parse import parse_qsl, urlparse

    return dict(parse_qsl(urlparse(start.headers["Location"]).query)), session


def test_s4_s13_capabilities_decide_v2_and_without_discovery_v1_scopes(sandbox, smart_apps) -> None:
    params, _ = _authorize_params(sandbox, smart_apps["public"])
    assert "patient/Observation.rs" in params["scope"].split()
    sandbox.faults(no_well_known=True)  # CapabilityStatement only: no capabilities advertised
    try:
        params, _ = _authorize_params(sandbox, smart_apps["public"])
    finally:
        sandbox.faults()
    assert "patient/Observation.read" in params["scope"].split()
    assert "offline_access" not in params["scope"].split()


def test_s7_s8_the_exact_registered_redirect_uri_and_aud_are_sent(sandbox, smart_apps) -> None:
    app = smart_apps["public"]
    params, _ = _authorize_params(sandbox, app)
    assert params["redirect_uri"] == f"{app.base}/callback"
    assert params["aud"] == sandbox.config.fhir_base
    assert params["response_type"] == "code" and params["client_id"] == app.client_id


def test_s9_a_fresh_s256_challenge_per_request_with_the_verifier_kept_server_side(
    sandbox, smart_apps
) -> None:
    app = smart_apps["public"]
    first, session = _authorize_params(sandbox, app)
    second, _ = _authorize_params(sandbox, app)
    assert first["code_challenge_method"] == "S256"
    assert first["code_challenge"] != second["code_challenge"]
    assert first["state"] != second["state"] and len(first["state"]) >= 43  # >= 256 bits
    (cookie,) = session.cookies
    stored = app.app.extensions["salvage_db"].execute("SELECT data FROM smart_session")
    assert stored and all(first["code_challenge"] not in row[0] for row in stored)
    assert cookie.value not in first.values()


def test_s14_only_the_minimum_read_scopes_are_asked_for(sandbox, smart_apps) -> None:
    params, _ = _authorize_params(sandbox, smart_apps["public"])
    scopes = params["scope"].split()
    assert {"launch/patient", "openid", "fhirUser"} <= set(scopes)
    assert all(s.endswith((".rs", ".read")) for s in scopes if s.startswith("patient/"))
    assert not any(s.startswith(("user/", "system/")) for s in scopes)


def test_s17_the_symmetric_client_authenticates_with_http_basic(sandbox, smart_apps) -> None:
    app = smart_apps["confidential-symmetric"]
    _, reply = ehr_launch(sandbox, app, "dlbcl-early-relapse")
    assert reply.status_code == 200 and "R-CHOP" in reply.text  # the sandbox accepts only Basic


def test_s20_the_banner_follows_need_patient_banner_and_the_style_is_applied(
    sandbox, smart_apps, browser
) -> None:
    app = smart_apps["public"]
    embedded = browser.new_page()
    embedded.goto(f"{sandbox.config.ehr_base}/launch/{app.client_id}/hiv-blip?frame=1")
    frame = embedded.frame_locator("iframe")
    frame.locator("#lines").wait_for(timeout=20000)
    assert frame.locator("[aria-label=Patient]").count() == 0  # the EHR shows its own banner
    embedded.close()
    session, page = ehr_launch(sandbox, app, "hiv-blip")  # top-level: the EHR asks for one
    assert 'aria-label="Patient"' in page.text
    css = session.get(f"{app.base}/app/style.css", timeout=10).text
    assert "--bg: #f7f7f4" in css and "--accent: #23395d" in css


def test_s24_behind_https_the_session_cookie_works_in_an_iframe(sandbox, tmp_path) -> None:
    from salvage.app import create_app

    clients = tmp_path / "smart.json"
    clients.write_text(
        json.dumps(
            {
                "servers": [
                    {
                        "iss": sandbox.config.fhir_base,
                        "name": "EHR",
                        "client_id": "salvage-public",
                        "client_type": "public",
                    }
                ]
            }
        )
    )
    app = create_app(
        {
            "TESTING": True,
            "BASE_URL": "https://salvage.example.org",
            "SMART_CLIENTS": str(clients),
            "INSTANCE_PATH": str(tmp_path),
        }
    )
    reply = app.test_client().post("/standalone", data={"iss": sandbox.config.fhir_base})
    assert reply.status_code == 302
    cookie = reply.headers["Set-Cookie"]
    assert "SameSite=None" in cookie and "Secure" in cookie and "HttpOnly" in cookie
    assert "redirect_uri=https%3A%2F%2Fsalvage.example.org%2Fcallback" in reply.headers["Location"]


def test_orders_that_reference_a_medication_resource_are_read(sandbox, smart_apps) -> None:
    """Many EHRs name the drug through medicationReference: the app reads those Medications."""
    session, _ = ehr_launch(
        sandbox, smart_apps["public"], "messy-contained-and-referenced-medication"
    )
    patient = session.get(f"{smart_apps['public'].base}/api/summary", timeout=30).json()[
        "patients"
    ][0]
    assert [line["regimen"] for line in patient["lines"]] == ["R-ICE"]
    assert patient["unmapped"] == [] and patient["data_gaps"] == []
