"""The sandbox plays the other side: it imports nothing from the app, the service or the engine."""

from __future__ import annotations

import ast
from pathlib import Path

import sandbox

FORBIDDEN = ("salvage", "smart_app", "cds_hooks")


def test_sandbox_imports_nothing_from_the_product() -> None:
    offenders = []
    for path in Path(sandbox.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else ([node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            )
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []
