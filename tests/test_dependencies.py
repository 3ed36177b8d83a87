"""Issue 14: a production install holds what the product imports and nothing of the sandbox."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("salvage", "cds_hooks", "smart_app")
OPTIONAL = {"psycopg"}  # PostgreSQL: the postgres extra, imported only for a postgresql:// URL
# Population mode: the cohort extra (salvage cohort) and the spark extra (--spark), imported only
# by those commands, which name the extra when it is missing.
POPULATION = {
    "pyarrow": "cohort",
    "pandas": "cohort",
    "lifelines": "cohort",
    "matplotlib": "cohort",
    "pyspark": "spark",
}
OPTIONAL |= set(POPULATION)


def _declared(names: list[str]) -> set[str]:
    return {re.split(r"[\[=<>~! ;]", n, maxsplit=1)[0].lower() for n in names}


def _project() -> dict:  # type: ignore[type-arg]
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_the_sandbox_fhir_server_is_not_a_runtime_dependency() -> None:
    project = _project()
    assert "sekmet-fhir" not in _declared(project["dependencies"])
    assert "sekmet-fhir" in _declared(project["optional-dependencies"]["demo"])
    assert "hypothesis" in _declared(project["optional-dependencies"]["test"])


def test_every_package_the_product_imports_is_declared() -> None:
    declared = _declared(_project()["dependencies"])
    distributions = packages_distributions()
    imported: set[str] = set()
    for package in PRODUCT:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    imported |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - set(PRODUCT) - {"sandbox"} - OPTIONAL
    missing = {
        name
        for name in third_party
        if not {d.lower() for d in distributions.get(name, [name])} & declared
    }
    assert not missing, f"imported but not declared in pyproject.toml: {sorted(missing)}"


def test_population_packages_are_declared_in_their_extras() -> None:
    extras = _project()["optional-dependencies"]
    for module, extra in POPULATION.items():
        assert module in _declared(extras[extra]), f"{module} missing from the {extra} extra"
    assert "salvage-cds" in _declared(extras["test"])  # the tests install both extras
