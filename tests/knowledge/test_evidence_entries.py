"""Every evidence entry can be found and weighed: a DOI or PMID (or a stated reason why a web-only
guideline, label or standard has none), a year, an evidence level from the knowledge base's own
list, and a note of where the identifier was checked. Entries added later must meet the same bar."""

from __future__ import annotations

import pytest

from salvage.knowledge import loader

RAW = loader.load_raw()
ENTRIES = RAW["evidence"].evidence  # evidence.yaml with hiv.yaml's references merged in
LEVELS = RAW["option_context"].evidence_levels


@pytest.mark.parametrize("key", sorted(ENTRIES))
def test_every_evidence_entry_has_a_doi_or_pmid(key: str) -> None:
    entry = ENTRIES[key]
    assert entry.doi or entry.pmid or entry.no_identifier, f"{key}: no DOI or PMID"
    if entry.no_identifier:  # only sources that are not journal articles may lack one
        assert entry.level in ("guideline", "standard", "consensus"), key


@pytest.mark.parametrize("key", sorted(ENTRIES))
def test_every_evidence_entry_has_a_level_year_and_verification(key: str) -> None:
    entry = ENTRIES[key]
    assert entry.level in LEVELS, f"{key}: level {entry.level!r} is not one of {LEVELS}"
    assert entry.year is not None, f"{key}: no year"
    assert entry.verified, f"{key}: say where the identifier was checked"


@pytest.mark.parametrize("key", sorted(ENTRIES))
def test_no_evidence_link_is_a_search(key: str) -> None:
    assert "?term=" not in ENTRIES[key].url and "search" not in ENTRIES[key].url.split("/")[2]


def test_the_doi_link_matches_the_doi() -> None:
    for key, entry in ENTRIES.items():
        if entry.doi and entry.url.startswith("https://doi.org/"):
            assert entry.url == f"https://doi.org/{entry.doi}", key


def test_outdated_citations_were_replaced() -> None:
    assert "ABC 5" not in ENTRIES["ESMO-ABC5"].label
    assert ENTRIES["ESMO-ABC5"].year >= 2024
    assert "Automated Line-of-Therapy Algorithm" in ENTRIES["Meng2021"].citation
