"""Issue 18 on the SMART app against the sandbox EHR: two interleaved launches in one browser keep
their own patient (quirk 18), the EHR's error_description is shown escaped (quirk 2), Epic's
authorize POST for EHR launch (section 1), and frame_ancestors in the CSP."""

from __future__ import annotations

import json
import threading
import urllib.parse

import requests
from werkzeug.serving import make_server

from salvage.app import create_app
from tests.e2e.conftest import start_smart_app
from tests.support_sandbox import free_port


def _to_callback(session: requests.Session, sandbox, app, patient: str) -> str:
    """Follow an EHR launch up to, not into, the app's /callback; returns its URL."""
    url = f"{sandbox.config.ehr_base}/launch/{app.client_id}/{patient}"
    for _ in range(10):
        reply = session.get(url, allow_redirects=False, timeout=30)
        url = urllib.parse.urljoin(url, reply.headers.get("Location", ""))
        if url.startswith(f"{app.base}/callback"):
            return url
    raise AssertionError("the launch never reached /callback")


def _launch_id(reply: requests.Response) -> str:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(reply.url).query))["ctx"]


def test_q18_two_interleaved_launches_each_keep_their_own_patient(sandbox, smart_apps) -> None:
    app = smart_apps["public"]
    browser = requests.Session()  # one browser, one cookie jar, two EHR windows
    first_callback = _to_callback(browser, sandbox, app, "dlbcl-early-relapse")
    second = browser.get(_to_callback(browser, sandbox, app, "hiv-virologic-failure"), timeout=60)
    first = browser.get(first_callback, timeout=60)  # the first window's sign-in completes last
    assert first.status_code == 200 and second.status_code == 200
    first_id, second_id = _launch_id(first), _launch_id(second)
    assert first_id != second_id

    def patient(launch_id: str) -> str:
        summary = browser.get(
            f"{app.base}/api/summary", params={"ctx": launch_id}, timeout=60
        ).json()
        return str(summary["patients"][0]["patient"])

    assert patient(first_id) == "Patient/dlbcl-early-relapse"
    assert patient(second_id) == "Patient/hiv-virologic-failure"
    assert patient(first_id) == "Patient/dlbcl-early-relapse"  # still, after the second was read
    # The page's own links carry its launch, so it never shows the other window's patient.
    page = browser.get(f"{app.base}/app", params={"ctx": first_id}, timeout=60).text
    assert f"/api/summary?ctx={first_id}" in page
    # Without the launch id, or with another browser's cookie, nothing is opened.
    assert browser.get(f"{app.base}/api/summary", timeout=30).status_code == 401
    stranger = requests.Session()
    reply = stranger.get(f"{app.base}/api/summary", params={"ctx": first_id}, timeout=30)
    assert reply.status_code == 401


def test_q2_the_ehr_s_error_description_is_shown_escaped(sandbox, smart_apps) -> None:
    app = smart_apps["public"]
    browser = requests.Session()
    callback = _to_callback(browser, sandbox, app, "dlbcl-early-relapse")
    state = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(callback).query))["state"]
    reply = browser.get(
        f"{app.base}/callback",
        params={
            "error": "invalid_scope",
            "error_description": "Simulated <script>alert(1)</script> invalid scope error",
            "state": state,
        },
        timeout=30,
    )
    assert reply.status_code == 400
    assert "invalid_scope" in reply.text and "Simulated" in reply.text
    assert "<script>alert(1)" not in reply.text and "&lt;script&gt;" in reply.text


def test_authorize_post_for_an_ehr_launch(sandbox, tmp_path) -> None:
    """Epic recommends POST for the EHR launch's authorize request (long launch JWTs)."""
    app, server = start_smart_app(sandbox, tmp_path, "public", suffix="-post")
    clients = json.loads(
        (tmp_path / f"smart-{app.client_id}.json").read_text()
    )  # the registration start_smart_app wrote, now with authorize_method: post
    clients["servers"][0]["authorize_method"] = "post"
    (tmp_path / "post.json").write_text(json.dumps(clients))
    port = int(app.base.rsplit(":", 1)[1])
    server.shutdown()
    post_app = create_app(
        {
            "BASE_URL": app.base,
            "SMART_CLIENTS": str(tmp_path / "post.json"),
            "DATABASE_URL": str(tmp_path / "post.db"),
            "SECRET_KEY": "test-secret-key",
        }
    )
    post_server = make_server("127.0.0.1", port, post_app, threaded=True)
    threading.Thread(target=post_server.serve_forever, daemon=True).start()
    try:
        browser = requests.Session()
        url = f"{sandbox.config.ehr_base}/launch/{app.client_id}/dlbcl-early-relapse"
        page = browser.get(url, timeout=30)  # EHR -> /launch -> the self-submitting form
        assert page.url.startswith(f"{app.base}/launch") and 'method="post"' in page.text
        action = page.text.split('action="', 1)[1].split('"', 1)[0]
        fields = dict(
            (
                part.split('name="', 1)[1].split('"', 1)[0],
                part.split('value="', 1)[1].split('"', 1)[0],
            )
            for part in page.text.split('<input type="hidden"')[1:]
        )
        assert {"launch", "state", "code_challenge", "aud"} <= set(fields)
        assert "launch=" not in action  # the launch token travels in the body
        reply = browser.post(action, data=fields, timeout=60)
        assert reply.status_code == 200 and "ctx=" in reply.url
    finally:
        post_server.shutdown()


def test_frame_ancestors_adds_the_ehr_web_origin(tmp_path) -> None:
    smart = tmp_path / "smart.json"
    smart.write_text(
        json.dumps(
            {
                "servers": [
                    {
                        "iss": "https://fhir.ehr.example/api/FHIR/R4",
                        "client_id": "a",
                        "client_type": "public",
                        "frame_ancestors": ["https://hyperspace.ehr.example"],
                    }
                ]
            }
        )
    )
    app = create_app(
        {
            "TESTING": True,
            "BASE_URL": f"http://127.0.0.1:{free_port()}",
            "SMART_CLIENTS": str(smart),
            "DATABASE_URL": str(tmp_path / "s.db"),
        }
    )
    csp = app.test_client().get("/standalone").headers["Content-Security-Policy"]
    ancestors = csp.split("frame-ancestors", 1)[1]
    assert "https://hyperspace.ehr.example" in ancestors and "https://fhir.ehr.example" in ancestors
