"""The sandbox EHR's order-entry flow in Chromium, as a clinician clicks through it: accept then
sign completes, override (with a reason chosen, none preselected) then sign completes, and
opening the chart fires patient-view (issue 15, items 12-14)."""

from __future__ import annotations

import pytest

from tests.e2e.test_screen import AXE, chromium  # noqa: F401 (fixture)
from tests.e2e.test_smart_launch import ARTIFACTS

PATIENT = "dlbcl-early-relapse"


@pytest.fixture
def orders(service, sandbox, chromium):  # noqa: F811 (fixture)
    page = chromium.new_page(viewport={"width": 1000, "height": 1200})
    page.goto(f"{sandbox.config.ehr_base}/orders/{PATIENT}")
    page.click("text=Clear")
    yield page
    page.close()


def _select(page, item: str) -> None:
    page.select_option("#item", item)
    page.click("#add")
    page.locator("section.card").first.wait_for(timeout=20000)


def test_accept_then_sign_completes(orders) -> None:
    _select(orders, "regimen:R-CHOP")
    warning = orders.locator("section.card.warning").first
    warning.locator("button.accept").first.click()
    notice = orders.locator("#notice").inner_text()
    assert notice.startswith("Accepted") and "Sign to complete" in notice
    drafts = orders.locator("#drafts li").all_inner_texts()
    assert drafts and not any("rituximab" in d for d in drafts)
    orders.click("#sign")
    if orders.locator("section.card.warning").count():  # a warning on the proposals: override it
        card = orders.locator("section.card.warning").first
        card.locator("select[name=reason]").select_option(index=1)
        card.locator("button.override").click()
    assert orders.locator("#notice").inner_text().count("Signed") == 1
    assert orders.locator("#drafts li").count() == 0
    assert orders.locator("#signed li").count() == len(drafts)
    orders.screenshot(path=str(ARTIFACTS / "order-entry-accept-sign.png"), full_page=True)


def test_override_then_sign_completes_and_the_warning_is_not_shown_again(orders) -> None:
    _select(orders, "regimen:R-CHOP")
    card = orders.locator("section.card.warning").first
    select = card.locator("select[name=reason]")
    assert select.input_value() == ""  # no reason preselected
    card.locator("button.override").click()  # the browser asks for a reason (required)
    assert select.evaluate("s => s.validity.valueMissing") is True
    select.select_option(index=1)
    card.locator("button.override").click()
    assert orders.locator("#notice").inner_text().startswith("Overridden")
    orders.click("#sign")
    notice = orders.locator("#notice").inner_text()
    assert notice.startswith("Signed 5 orders"), notice
    assert orders.locator("section.card.warning").count() == 0
    assert orders.locator("#signed li").count() == 5
    orders.screenshot(path=str(ARTIFACTS / "order-entry-override-sign.png"), full_page=True)


def test_an_unacknowledged_warning_blocks_signing_and_says_why(orders) -> None:
    _select(orders, "regimen:R-CHOP")
    orders.click("#sign")
    assert orders.locator("#notice").inner_text().startswith("Not signed yet")
    assert orders.locator("#drafts li").count() == 5
    card = orders.locator("section.card.warning").first  # the order-sign warning
    card.locator("select[name=reason]").select_option(index=1)
    card.locator("button.override").click()
    assert "Signed 5 orders" in orders.locator("#notice").inner_text()


def test_opening_the_chart_fires_patient_view(service, sandbox, chromium) -> None:  # noqa: F811
    page = chromium.new_page()
    page.goto(f"{sandbox.config.ehr_base}/")
    page.locator(f"a[href='/chart/{PATIENT}']").click()
    assert "(patient-view)" in page.locator("h2").first.inner_text()
    assert page.locator("section.card, #no-cards").count() >= 1
    page.screenshot(path=str(ARTIFACTS / "ehr-chart-patient-view.png"), full_page=True)
    page.close()


@pytest.mark.parametrize("path", [f"/orders/{PATIENT}", f"/chart/{PATIENT}"])
def test_axe_core_finds_no_violation_on_the_ehr_screens(service, sandbox, chromium, path) -> None:  # noqa: F811
    page = chromium.new_page()
    page.goto(f"{sandbox.config.ehr_base}/orders/{PATIENT}")
    page.click("text=Clear")
    _select(page, "regimen:R-CHOP")
    page.goto(f"{sandbox.config.ehr_base}{path}")
    page.add_script_tag(content=AXE.read_text())
    result = page.evaluate("async () => await axe.run(document)")
    violations = [(v["id"], [n["target"] for n in v["nodes"]][:3]) for v in result["violations"]]
    assert violations == []
    page.close()
