"""The sandbox's order entry screen puts the patient's order sets first (ux finding 4)."""

from __future__ import annotations

import re


def _optgroups(page: str) -> list[str]:
    return re.findall(r'<optgroup label="([^"]+)"', page)


def test_a_lymphoma_patient_sees_the_lymphoma_set_first(browser) -> None:
    page = browser.get("/orders/dlbcl-early-relapse")
    assert _optgroups(page) == ["Lymphoma", "Other orders"]


def test_an_hiv_patient_sees_the_hiv_set_first(browser) -> None:
    page = browser.get("/orders/hiv-virologic-failure")
    assert _optgroups(page)[0] == "HIV" and _optgroups(page)[-1] == "Other orders"
