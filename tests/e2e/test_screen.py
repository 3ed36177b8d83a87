"""The SMART app screen in Chromium: adaptive date axes, labels inside the charts, narrow panels,
print, the loading state under FHIR latency, and axe-core accessibility checks (issue 15)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_smart_launch import ARTIFACTS, CHROMIUM_ARGS

AXE = Path(__file__).with_name("assets") / "axe.min.js"  # axe-core 4.14.1 from npm (MPL-2.0)


@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


# Every text box of every chart, against the chart's own viewBox.
CLIPPED = """() => {
  const out = [];
  for (const svg of document.querySelectorAll('svg.chart')) {
    const vb = svg.viewBox.baseVal;
    for (const t of svg.querySelectorAll('text')) {
      const b = t.getBBox();
      if (b.x < vb.x - 0.5 || b.y < vb.y - 0.5 || b.x + b.width > vb.x + vb.width + 0.5 ||
          b.y + b.height > vb.y + vb.height + 0.5) out.push(t.textContent);
    }
  }
  return out;
}"""

# Pairs of axis, failure and threshold labels whose boxes overlap.
OVERLAPS = """() => {
  const hit = (p, q) =>
    p.x < q.x + q.width && q.x < p.x + p.width && p.y < q.y + q.height && q.y < p.y + p.height;
  const out = [];
  for (const svg of document.querySelectorAll('svg.chart')) {
    const boxes = [...svg.querySelectorAll('text.tick, text.failure-label, text.threshold-label')]
      .map(t => [t.textContent, t.getBBox()]);
    for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
      const [a, p] = boxes[i], [b, q] = boxes[j];
      if (hit(p, q)) out.push(a + ' / ' + b);
    }
    for (const t of svg.querySelectorAll('text.threshold-label, text.failure-label')) {
      const p = t.getBBox();
      for (const c of svg.querySelectorAll('circle')) {
        if (hit(p, c.getBBox())) out.push(t.textContent + ' / point');
      }
    }
  }
  return out;
}"""


def open_screen(sandbox, app, chromium, patient: str, width: int = 1000):
    page = chromium.new_page(viewport={"width": width, "height": 1000})
    page.goto(f"{sandbox.config.ehr_base}/launch/{app.client_id}/{patient}")
    page.locator("#result").wait_for(timeout=30000)
    return page


@pytest.mark.parametrize(
    ("patient", "expected"),
    [
        ("nsclc-maintenance", ["Feb 2022", "Apr", "Jul", "Sep"]),  # within one year: months
        ("prostate-rt-recurrence", ["Jan 2018", "Jan 2019", "Jan 2020"]),  # several years
        ("dlbcl-early-relapse", []),
        ("hiv-virologic-failure", []),
        ("prostate-rp-recurrence", []),
    ],
)
def test_every_chart_has_a_date_axis_and_no_label_is_clipped_or_overlapping(
    sandbox, smart_apps, chromium, patient, expected
) -> None:
    page = open_screen(sandbox, smart_apps["public"], chromium, patient)
    labels = page.locator("svg#timeline text.tick").all_text_contents()
    assert len(labels) >= 3, labels
    assert all(label in labels for label in expected), labels
    for marker in page.locator("svg.marker").all():  # markers share the timeline's time axis
        assert marker.locator("text.tick").all_text_contents()[: len(labels)] != []
        ticks = marker.evaluate(
            "s => [...s.querySelectorAll('line.gridline')].map(l => l.getAttribute('x1'))"
        )
        timeline_ticks = page.evaluate(
            "() => [...document.querySelectorAll('svg#timeline line.gridline')]"
            ".map(l => l.getAttribute('x1'))"
        )
        assert set(timeline_ticks) <= set(ticks)
    assert page.evaluate(CLIPPED) == []
    assert page.evaluate(OVERLAPS) == []
    assert page.locator(".legend li").count() >= 2
    page.screenshot(path=str(ARTIFACTS / f"screen-{patient}.png"), full_page=True)
    page.close()


def test_the_radiotherapy_course_is_drawn_for_the_post_radiotherapy_patient(
    sandbox, smart_apps, chromium
) -> None:
    page = open_screen(sandbox, smart_apps["public"], chromium, "prostate-rt-recurrence")
    assert page.locator("svg#timeline rect.bar.procedure").count() == 1
    psa = page.locator("svg.marker").first
    labels = psa.locator("text.threshold-label").all_text_contents()
    assert any("Phoenix" in x for x in labels) and not any("prostatectomy" in x for x in labels)
    assert psa.locator("rect.nadir-point").count() == 1  # the nadir the Phoenix line rests on
    assert psa.locator("circle.confirming").count() == 1  # Phoenix needs one value >= nadir + 2
    page.close()


@pytest.mark.parametrize("width", [360, 768])
def test_no_horizontal_overflow_on_narrow_panels(sandbox, smart_apps, chromium, width) -> None:
    page = open_screen(sandbox, smart_apps["public"], chromium, "dlbcl-early-relapse", width)
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    dates = page.locator("#lines td.nowrap").all()
    assert all(d.evaluate("e => e.getClientRects().length") == 1 for d in dates)  # no mid-date wrap
    page.screenshot(path=str(ARTIFACTS / f"screen-{width}px.png"), full_page=True)
    page.close()


def test_print_shows_the_patient_identity_and_the_disclaimer(sandbox, smart_apps, chromium) -> None:
    page = open_screen(sandbox, smart_apps["public"], chromium, "prostate-rt-recurrence")
    assert not page.locator("#print-identity").is_visible()
    page.emulate_media(media="print")
    identity = page.locator("#print-identity")
    assert identity.is_visible()
    text = identity.inner_text()
    assert "Prostate Synthetic" in text and "1960-05-01" in text
    assert "knowledge base" in text and "Analysed" in text and "decision support" in text.lower()
    assert not page.locator("#print").is_visible()
    page.screenshot(path=str(ARTIFACTS / "screen-print.png"), full_page=True)
    page.pdf(path=str(ARTIFACTS / "screen-print.pdf"), format="A4")
    page.close()


def test_the_loading_state_shows_what_is_read_under_fhir_latency(
    sandbox, smart_apps, chromium
) -> None:
    page = open_screen(sandbox, smart_apps["public"], chromium, "dlbcl-early-relapse")
    sandbox.faults(latency_ms=1500)
    try:
        page.reload(wait_until="commit")
        loading = page.locator("#loading")
        loading.wait_for(state="visible", timeout=3000)
        assert "medication orders" in loading.inner_text()
        assert page.locator("#result").count() == 0
        page.screenshot(path=str(ARTIFACTS / "screen-loading.png"))
        first_paint = page.evaluate(
            "performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1"
        )
        page.locator("#result").wait_for(timeout=30000)
    finally:
        sandbox.faults()
    print(f"first contentful paint {first_paint:.0f} ms under 1500 ms FHIR latency")
    # the loading state is painted before any FHIR read returns (target 200 ms; the margin is
    # for a loaded CI machine, the reads themselves take more than 1.5 s)
    assert 0 <= first_paint < 1000, first_paint
    assert not loading.is_visible()
    page.close()


@pytest.mark.parametrize("patient", ["dlbcl-early-relapse", "prostate-rt-recurrence"])
def test_axe_core_finds_no_accessibility_violation(sandbox, smart_apps, chromium, patient) -> None:
    app = smart_apps["public"]
    context = chromium.new_context(bypass_csp=True)  # to inject the checker, not the app's code
    page = context.new_page()
    page.goto(f"{sandbox.config.ehr_base}/launch/{app.client_id}/{patient}")
    page.locator("#result").wait_for(timeout=30000)
    page.add_script_tag(content=AXE.read_text())
    result = page.evaluate("async () => await axe.run(document)")
    violations = [(v["id"], [n["target"] for n in v["nodes"]][:3]) for v in result["violations"]]
    assert violations == []
    context.close()


def test_unreadable_data_says_what_could_not_be_assessed(
    sandbox, smart_apps, chromium, tmp_path
) -> None:
    from tests.e2e.conftest import start_smart_app

    narrow, server = start_smart_app(
        sandbox,
        tmp_path,
        "public",
        suffix="-screen-narrow",
        scope="launch openid fhirUser patient/Patient.rs patient/MedicationAdministration.rs",
    )
    try:
        page = open_screen(sandbox, narrow, chromium, "dlbcl-early-relapse")
        gaps = page.locator("#data-gaps").inner_text()
        assert "Observation could not be read" in gaps and "Not assessed:" in gaps
        assert "Condition could not be read" in gaps
        not_assessed = page.locator("#failures-not-assessed").inner_text()
        assert "Observation" in not_assessed and "No treatment failure" not in page.inner_text(
            "body"
        )
        page.screenshot(path=str(ARTIFACTS / "screen-unreadable-data.png"), full_page=True)
        page.close()
    finally:
        server.shutdown()
