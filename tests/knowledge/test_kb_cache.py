"""The validated knowledge base is cached on disk and built again whenever a data file, the
overlay or the code changes; a damaged or foreign cache file is never trusted."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from salvage.knowledge import loader


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(loader.CACHE_VARIABLE, str(folder))
    loader.load_knowledge.cache_clear()
    yield folder
    loader.load_knowledge.cache_clear()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    copy = tmp_path / "data"
    shutil.copytree(loader.data_dir(), copy)
    return copy


def _fresh(directory: Path, overlay: str | None = None) -> loader.KnowledgeBase:
    loader.load_knowledge.cache_clear()  # the in-process cache: only the disk cache is tested
    return loader.load_knowledge(str(directory), overlay)


def _no_build(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object) -> None:
        raise AssertionError("the knowledge base was built again")

    monkeypatch.setattr(loader, "load_raw", refuse)


def test_second_process_reads_the_validated_cache(
    cache: Path, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = _fresh(data)
    assert len(list(cache.glob("kb-*.pickle"))) == 1
    _no_build(monkeypatch)
    assert _fresh(data) == built


def test_a_changed_data_file_is_built_and_validated_again(cache: Path, data: Path) -> None:
    before = _fresh(data)
    manifest = data / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace(before.version, "9999.0.0"))
    assert _fresh(data).version == "9999.0.0"
    manifest.write_text(manifest.read_text().replace("kb_version", "kb_versoin"))
    with pytest.raises(loader.KnowledgeError):
        _fresh(data)  # still validated: a broken file is an error, not an old cache


def test_a_changed_overlay_is_merged_again(cache: Path, data: Path, tmp_path: Path) -> None:
    overlay = tmp_path / "overlay.json"
    overlay.write_text(json.dumps({"institution": "A", "disable": []}))
    first = _fresh(data, str(overlay))
    overlay.write_text(json.dumps({"institution": "B", "disable": []}))
    second = _fresh(data, str(overlay))
    assert first != second
    assert len(list(cache.glob("kb-*.pickle"))) == 2


def test_damaged_or_foreign_cache_files_are_not_trusted(
    cache: Path, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = _fresh(data)
    (stored,) = cache.glob("kb-*.pickle")
    stored.write_bytes(b"not a pickle")
    assert _fresh(data) == built  # built again, and stored again
    stored.chmod(0o666)  # anyone may write it: not read
    _no_build(monkeypatch)
    with pytest.raises(AssertionError, match="built again"):
        _fresh(data)


def test_cache_off(cache: Path, data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(loader.CACHE_VARIABLE, "off")
    _fresh(data)
    assert not cache.exists()
