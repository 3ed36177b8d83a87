"""`salvage lines --json` and `recommend --json` write each patient as it is reached (issue 16):
the streamed bytes must be exactly the document the commands built in memory before."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import orjson
import pytest

from salvage import cli, output, service
from salvage.fhir.reader import ReadResult, iter_resources
from salvage.json_stream import document_chunks
from tests.conftest import FIXTURES, ROOT

AS_OF = "2026-06-30"


def _inputs(tmp_path: Path) -> list[str]:
    """Every fixture and HIV review bundle, plus an NDJSON export with a broken line (skipped)."""
    export = tmp_path / "export.ndjson"
    sources = sorted((ROOT / "tests" / "hiv_review_bundles").glob("*.json"))
    lines = [orjson.dumps(r) for p in sources for r, _ in iter_resources([str(p)], ReadResult())]
    lines.insert(3, b"{broken")
    export.write_bytes(b"\n".join(lines) + b"\n")
    return [str(export), str(FIXTURES)]


def _in_memory(command: str, paths: list[str]) -> bytes:
    """The document as the commands built it before streaming (one dict, one dumps)."""
    kb = service.knowledge_base()
    reports, _read, skipped = cli.analyse_paths(paths, date.fromisoformat(AS_OF))
    if command == "lines":
        document = {
            "kb_version": kb.version,
            "as_of": AS_OF,
            "patients": [output.patient_lines_json(r.analysis) for r in reports],
            "skipped": output.skipped_json(skipped),
            "skipped_count": len(skipped),
        }
    else:
        document = {
            "kb_version": kb.version,
            "as_of": AS_OF,
            "patients": [output.recommendation_json(r.recommendation, kb) for r in reports],
            "skipped_count": len(skipped),
        }
    return orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n"


@pytest.mark.parametrize("command", ["lines", "recommend"])
def test_streamed_json_is_byte_identical_to_the_in_memory_document(
    command: str, tmp_path: Path, capfdbinary
) -> None:
    paths = _inputs(tmp_path)
    expected = _in_memory(command, paths)
    capfdbinary.readouterr()
    cli.main([command, "--json", *paths, "--as-of", AS_OF])
    streamed = capfdbinary.readouterr().out
    assert len(orjson.loads(streamed)["patients"]) > 50
    assert orjson.loads(streamed)["skipped_count"] >= 1
    assert streamed == expected


@pytest.mark.parametrize(
    "document",
    [
        {},
        {"patients": []},
        {"a": "line\nbreak", "patients": [{}, [], {"x": [1, {"y": []}], "z": {}}], "t": {"u": 1}},
        {"patients": [None, "s", 1.5, {"deep": {"e": [{"f": "g"}]}}], "skipped": []},
    ],
)
def test_the_writer_matches_orjson_on_edge_shapes(document: dict) -> None:
    streamed = b"".join(document_chunks(iter(document.items()), streamed="patients"))
    assert streamed == orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n"
