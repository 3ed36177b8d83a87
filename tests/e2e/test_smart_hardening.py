"""Issue 14 on the SMART app: token-endpoint refusals ask for a new launch (never a 500), and
the session id changes at login (session fixation)."""

from __future__ import annotations

import urllib.parse

import requests

from tests.e2e.conftest import ehr_launch

PATIENT = "dlbcl-early-relapse"


def _to_callback(sandbox, app) -> tuple[requests.Session, str]:
    """Follow the EHR launch up to, not into, the app's /callback; returns its URL."""
    session = requests.Session()
    url = f"{sandbox.config.ehr_base}/launch/{app.client_id}/{PATIENT}"
    for _ in range(10):
        reply = session.get(url, allow_redirects=False, timeout=30)
        url = urllib.parse.urljoin(url, reply.headers.get("Location", ""))
        if url.startswith(f"{app.base}/callback"):
            return session, url
    raise AssertionError("the launch never reached /callback")


def _with_code(url: str, code: str) -> str:
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query))
    query["code"] = code
    return parts._replace(query=urllib.parse.urlencode(query)).geturl()


def test_a_bogus_code_with_a_valid_state_asks_to_relaunch(sandbox, smart_apps) -> None:
    app = smart_apps["public"]
    session, callback = _to_callback(sandbox, app)
    reply = session.get(_with_code(callback, "bogus-code"), allow_redirects=False, timeout=30)
    assert reply.status_code == 401
    assert "Launch the app again" in reply.text


def test_a_reused_code_asks_to_relaunch(sandbox, smart_apps) -> None:
    app = smart_apps["confidential-symmetric"]
    first, callback = _to_callback(sandbox, app)
    code = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(callback).query))["code"]
    assert first.get(callback, allow_redirects=False, timeout=30).status_code == 303
    second, callback = _to_callback(sandbox, app)  # a fresh, valid state
    reply = second.get(_with_code(callback, code), allow_redirects=False, timeout=30)
    assert reply.status_code == 401 and "Launch the app again" in reply.text


def test_a_refresh_token_the_ehr_rejects_asks_to_relaunch(sandbox, smart_apps) -> None:
    app = smart_apps["confidential-symmetric"]
    session, _ = ehr_launch(sandbox, app, PATIENT)
    store = sandbox.state.store
    store._conn().execute("UPDATE token SET expires = 0")  # every access token expires
    store._conn().execute("UPDATE refresh SET revoked = 1")  # and no refresh is honoured
    reply = session.get(f"{app.base}/api/summary", timeout=30)
    assert reply.status_code == 401
    assert "Launch the app again" in reply.json()["error"]
    page = session.get(f"{app.base}/app", timeout=30)
    # The screen is streamed (the loading state goes out before the FHIR reads), so its status
    # line is already 200 when the EHR refuses the refresh: the page ends with the relaunch
    # message instead of the analysis.
    assert "Launch the app again" in page.text and 'id="options"' not in page.text


def test_the_session_id_changes_at_login(sandbox, smart_apps) -> None:
    app = smart_apps["public"]
    session, callback = _to_callback(sandbox, app)
    before = session.cookies.get("salvage_sid")
    reply = session.get(callback, allow_redirects=False, timeout=30)
    assert reply.status_code == 303
    after = session.cookies.get("salvage_sid")
    assert before and after and before != after
    query = urllib.parse.urlsplit(reply.headers["Location"]).query
    session.params = dict(urllib.parse.parse_qsl(query))  # the launch id (quirk 18)
    planted = requests.Session()
    planted.params = session.params
    planted.cookies.set("salvage_sid", before)
    assert planted.get(f"{app.base}/api/summary", timeout=30).status_code == 401
    assert session.get(f"{app.base}/api/summary", timeout=30).status_code == 200
