"""A cancer diagnosis written as text only is said on the cards (specialist review finding 12)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cds_hooks.conftest import hook_body, prefetch_from

BUNDLE = (
    Path(__file__).resolve().parents[1]
    / "nsclc_review_bundles"
    / "nr12-adenocarcinoma-text-only-untested-after-carbo-pem.json"
)


def test_the_reminder_says_the_diagnosis_is_not_coded_once(call) -> None:  # type: ignore[no-untyped-def]
    resources = [e["resource"] for e in json.loads(BUNDLE.read_text())["entry"]]
    patient = resources[0]["id"]
    body = hook_body("patient-view", patient, [], prefetch_from(resources))
    reply = call("salvage-patient-view", body)
    (card,) = [
        c for c in reply.get_json()["cards"] if c["source"]["topic"]["code"] == "salvage-delay"
    ]
    detail = card["detail"]
    assert "**Non-small cell lung cancer recognised from text, not coded" in detail
    assert detail.count("recognised from text, not coded") == 1
    assert "Broad molecular testing" in detail
