"""The SMART screen in Chromium shows, next to each option, why it ranks where it does, its evidence
level and its intent; the clinical trial and palliative care end the list; the goals-of-care
prompt appears by its rule (issue 15 items 6 and 7). Inferred facts are checked at a fixed date in
tests/smart_app/test_option_screen.py (the sandbox runs at today's date, where ECOG is stale)."""

from __future__ import annotations

from tests.e2e.test_screen import chromium, open_screen  # noqa: F401 (the shared browser)
from tests.e2e.test_smart_launch import ARTIFACTS


def test_each_option_shows_its_rank_reasons_evidence_level_and_intent(
    sandbox,
    smart_apps,
    chromium,  # noqa: F811
) -> None:
    page = open_screen(sandbox, smart_apps["public"], chromium, "dlbcl-early-relapse")
    options = page.locator("#options article.option")
    count = options.count()
    assert count >= 5
    for i in range(count):
        option = options.nth(i)
        assert option.locator(".tag.intent").inner_text().strip()
        assert option.locator(".tag.level").inner_text().startswith("evidence: ")
        assert option.locator(".rank-reasons").inner_text().startswith(f"Why rank {i + 1}:")
    first = options.nth(0)
    assert "Axicabtagene ciloleucel" in first.locator("h3").inner_text()
    assert first.locator(".tag.intent").inner_text() == "curative intent"
    assert "randomised phase 3" in first.locator(".tag.level").inner_text()
    assert "performance status (not recorded" in first.locator(".not-checked").inner_text()
    titles = [options.nth(i).locator("h3").inner_text() for i in range(count)]
    assert "Clinical trial" in titles[-2] and "Palliative care" in titles[-1]
    page.locator("#options").screenshot(path=str(ARTIFACTS / "screen-options.png"))
    page.close()


def test_option_explanations_fit_a_narrow_side_panel(
    sandbox,
    smart_apps,
    chromium,  # noqa: F811
) -> None:
    page = open_screen(sandbox, smart_apps["public"], chromium, "dlbcl-early-relapse", 360)
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.locator("#options article.option").first.screenshot(
        path=str(ARTIFACTS / "screen-option-360px.png")
    )
    page.close()


def test_the_goals_of_care_prompt_says_why_it_appears(
    sandbox,
    smart_apps,
    chromium,  # noqa: F811
) -> None:
    page = open_screen(sandbox, smart_apps["public"], chromium, "nsclc-maintenance")
    prompt = page.locator("#goals-of-care")
    assert prompt.is_visible()
    text = prompt.inner_text()
    assert "Goals of care:" in text and "no disease-directed option fits" in text
    assert prompt.locator("a").count() == 2  # its two sources
    prompt.screenshot(path=str(ARTIFACTS / "screen-goals-of-care.png"))
    quiet = open_screen(sandbox, smart_apps["public"], chromium, "dlbcl-early-relapse")
    assert quiet.locator("#goals-of-care").count() == 0
    quiet.close()
    page.close()
