"""The engine and the FHIR-to-record converter stay pure: no I/O, no clock, no web framework or
HTTP client (DESIGN.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import salvage.engine
import salvage.fhir.records

ENGINE = Path(salvage.engine.__file__).parent
FORBIDDEN_MODULES = {
    "flask",
    "requests",
    "httpx",
    "urllib",
    "http",
    "socket",
    "authlib",
    "fhirclient",
    "sqlite3",
    "os",
    "pathlib",
    "io",
    "subprocess",
    "time",
    "yaml",
    "orjson",
    "json",
    "logging",
    "threading",
    "asyncio",
}
ALLOWED_SALVAGE = (
    "salvage.engine",
    "salvage.knowledge.model",
    "salvage.knowledge.hiv_model",
    "salvage.errors",
    "salvage.fhir.genotypes",  # the pure converters, checked here too
    "salvage.fhir.record_base",
    "salvage.fhir.medication_records",
    "salvage.fhir.observation_records",
    "salvage.fhir.condition_records",
    "salvage.fhir.biomarker_records",
    "salvage.fhir.performance_records",
    "salvage.fhir.queries",  # constants and URL building only; the types the converter reads
)
FORBIDDEN_CALLS = {"open", "print", "input"}
CLOCK_ATTRIBUTES = {"today", "now", "utcnow"}


PURE_CONVERTERS = [
    Path(salvage.fhir.records.__file__).with_name(name)
    for name in (
        "records.py",
        "record_base.py",
        "medication_records.py",
        "observation_records.py",
        "condition_records.py",
        "genotypes.py",
        "biomarker_records.py",
        "performance_records.py",
    )
]


def _engine_files() -> list[Path]:
    return sorted(ENGINE.rglob("*.py")) + PURE_CONVERTERS


def test_engine_imports_nothing_that_does_io() -> None:
    offenders = []
    for path in _engine_files():
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top in FORBIDDEN_MODULES:
                    offenders.append(f"{path.name}: import {name}")
                if top == "salvage" and not name.startswith(ALLOWED_SALVAGE):
                    offenders.append(f"{path.name}: import {name}")
    assert offenders == []


def test_engine_reads_no_clock_and_opens_no_file() -> None:
    offenders = []
    for path in _engine_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                func = node.func
                if isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS:
                    offenders.append(f"{path.name}:{node.lineno} {func.id}()")
                if isinstance(func, ast.Attribute) and func.attr in CLOCK_ATTRIBUTES:
                    offenders.append(f"{path.name}:{node.lineno} .{func.attr}()")
    assert offenders == []
