"""No "1 lines", "1 failures", "1 years" in what people read (ux finding 5): the CLI text, the
JSON, the SMART screen and the CDS cards of every fixture are rendered and searched."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from salvage.app import create_app
from salvage.knowledge import load_knowledge
from smart_app.summary import summarise
from tests.cds_hooks.conftest import app, call, fixture_prefetch, hook_body  # noqa: F401
from tests.support_screen import screen_html

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = sorted(
    p for p in (ROOT / "fixtures").glob("*.json") if not p.name.endswith(".expected.json")
)
AS_OF = date(2026, 6, 30)
# "1 lines", but not "1 mutations/plus"-style words that are not plural nouns after a count.
ONE_PLURAL = re.compile(r"(?<![\d.,/-])\b1 (?!(?:is|was|has|plus|minus|as|us)\b)([a-z]+s)\b")
SINGULAR_ENDING_IN_S = frozenset({"status", "virus", "nucleus", "bus", "basis", "diagnosis"})


def _mistakes(text: str) -> list[str]:
    found = []
    for match in ONE_PLURAL.finditer(text):
        word = match.group(1)
        if word in SINGULAR_ENDING_IN_S or word.endswith(("ss", "us", "is")):
            continue
        found.append(text[max(0, match.start() - 40) : match.end() + 10])
    return found


def _patient_ids(path: Path) -> list[str]:
    bundle = json.loads(path.read_text())
    return [
        e["resource"]["id"]
        for e in bundle.get("entry", [])
        if e.get("resource", {}).get("resourceType") == "Patient"
    ]


@pytest.fixture(scope="module")
def kb():  # type: ignore[no-untyped-def]
    return load_knowledge()


def test_the_cli_text_and_json_have_no_singular_count_with_a_plural_noun() -> None:
    paths = [str(p) for p in FIXTURES]
    found = []
    for command in (["lines"], ["recommend"], ["recommend", "--json"]):
        out = subprocess.run(
            [sys.executable, "-m", "salvage.cli", *command, *paths, "--as-of", AS_OF.isoformat()],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
        )
        found += _mistakes(out.stdout)
    assert found == []


def test_the_screen_has_no_singular_count_with_a_plural_noun(kb, tmp_path: Path) -> None:
    screen_app = create_app({"TESTING": True, "DATABASE_URL": str(tmp_path / "d.db")})
    found = []
    for path in FIXTURES:
        bundle = json.loads(path.read_text())
        resources = [e["resource"] for e in bundle.get("entry", [])]
        for patient_id in _patient_ids(path):
            summary = summarise(resources, patient_id, kb, [], AS_OF)
            (patient,) = summary["patients"]
            html = screen_html(screen_app, summary, patient, AS_OF)
            found += [f"{path.name}: {m}" for m in _mistakes(re.sub(r"<[^>]+>", " ", html))]
    assert found == []


def test_the_cards_have_no_singular_count_with_a_plural_noun(call) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    found = []
    for path in FIXTURES:
        ids = _patient_ids(path)
        if len(ids) != 1:
            continue
        prefetch = fixture_prefetch(path.stem)
        for hook, service in (("patient-view", "salvage-patient-view"),):
            reply = call(service, hook_body(hook, ids[0], [], prefetch))
            for card in reply.get_json().get("cards", []):
                text = card["summary"] + "\n" + (card.get("detail") or "")
                found += [f"{path.name}: {m}" for m in _mistakes(text)]
    assert found == []


def test_the_check_catches_what_it_is_for() -> None:
    assert _mistakes("1 lines have failed") and _mistakes("after 1 failures")
    assert not _mistakes("2 lines; 1 line; 1 status; 0.1 units; 21 days; 1 is enough")
