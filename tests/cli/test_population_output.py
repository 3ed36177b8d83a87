"""`salvage lines` and `salvage recommend` print byte for byte the same with the fast path and
patient buckets on disk (SALVAGE_BUCKET_MB) as one pass of the general path, messages included."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from salvage.fhir.reader import ReadResult, iter_resources
from tests.conftest import FIXTURES, ROOT


def _cli(env: dict[str, str], *args: str) -> tuple[int, bytes, bytes]:
    done = subprocess.run(
        [sys.executable, "-m", "salvage.cli", *args, "--as-of", "2026-06-30"],
        capture_output=True,
        timeout=300,
        check=False,
        env={**os.environ, **env},
    )
    return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize("command", [["lines", "--json"], ["lines"], ["recommend", "--json"]])
def test_bucketed_output_is_byte_identical(command: list[str], tmp_path: Path) -> None:
    export = tmp_path / "export.ndjson"
    sources = [
        *sorted(FIXTURES.glob("*.json")),
        *(ROOT / "tests" / "hiv_review_bundles").glob("*.json"),
    ]
    lines = [orjson.dumps(r) for p in sources for r, _ in iter_resources([str(p)], ReadResult())]
    lines.insert(3, b"{broken")
    export.write_bytes(b"\n".join(lines) + b"\n")
    args = [*command, str(export), str(FIXTURES)]
    one_pass = _cli({"SALVAGE_BUCKET_MB": "0"}, *args)
    bucketed = _cli({"SALVAGE_BUCKET_MB": "0.1"}, *args)
    assert one_pass[1] and b"skipped" in one_pass[2]
    assert bucketed == one_pass
