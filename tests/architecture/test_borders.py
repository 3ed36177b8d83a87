"""Borders between packages (DESIGN.md): the two web surfaces never import each other, the product
never imports the sandbox EHR, and every surface reaches the engine through salvage.service."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imports_of(package: str) -> set[tuple[str, str]]:
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {(str(path.relative_to(ROOT)), a.name) for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                found.add((str(path.relative_to(ROOT)), node.module))
    return found


def _offenders(package: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{where}: {name}"
        for where, name in imports_of(package)
        if name.split(".")[0] in forbidden or name.startswith(forbidden)
    )


def test_cds_hooks_and_smart_app_never_import_each_other() -> None:
    assert _offenders("cds_hooks", ("smart_app",)) == []
    assert _offenders("smart_app", ("cds_hooks",)) == []


def test_surfaces_reach_the_pipeline_only_through_the_service() -> None:
    """analyse_patient / recommend are composed in salvage/service.py and nowhere else."""
    composed = ("salvage.engine.analysis", "salvage.engine.recommend.recommend")
    offenders = []
    for package in ("cds_hooks", "smart_app", "salvage"):
        for path in (ROOT / package).rglob("*.py"):
            relative = str(path.relative_to(ROOT))
            if relative.startswith(("salvage/engine/", "salvage/service.py")):
                continue
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module:
                    names = {f"{node.module}.{a.name}" for a in node.names}
                    if node.module == "salvage.engine" and any(
                        a.name == "analyse_patient" for a in node.names
                    ):
                        offenders.append(f"{relative}: analyse_patient")
                    if names & set(composed):
                        offenders.append(f"{relative}: {sorted(names & set(composed))}")
    assert offenders == []


def test_the_product_never_imports_the_sandbox() -> None:
    for package in ("salvage", "cds_hooks", "smart_app"):
        assert _offenders(package, ("sandbox",)) == []


def test_error_classes_live_in_salvage_errors_only() -> None:
    """One hierarchy (salvage/errors.py) with its HTTP statuses, turned into responses in one
    place (salvage/app.py); private helper exceptions (leading underscore) may stay local."""
    offenders = []
    for package in ("salvage", "cds_hooks", "smart_app"):
        for path in (ROOT / package).rglob("*.py"):
            if path.name == "errors.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                    bases = {b.id for b in node.bases if isinstance(b, ast.Name)}
                    if bases & {"Exception", "SalvageError", "ValueError", "RuntimeError"}:
                        offenders.append(f"{path.relative_to(ROOT)}: {node.name}")
    assert offenders == []


def test_request_errors_carry_their_http_status() -> None:
    from salvage import errors

    assert errors.BadRequest().status == 400 and errors.Unauthorized().status == 401
    assert errors.PrefetchUnavailable().status == errors.FhirUnavailable().status == 412
    assert errors.TooLarge().status == 413 and errors.DatabaseUnavailable().status == 503
    assert errors.LaunchError("x", 403).status == 403
