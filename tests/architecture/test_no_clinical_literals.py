"""No clinical literal lives in Python: codes, drug names and thresholds come from the knowledge
data (salvage/knowledge/data), so a change of evidence is a reviewed data change, never a code
edit, and two copies cannot drift apart (the HLA-B*57:01 LA6576-8 bug came from such a copy)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from salvage.knowledge import load_knowledge

ROOT = Path(__file__).resolve().parents[2]
EXEMPT = ("salvage/knowledge/", "tests/", "fixtures/", "bench/", ".venv/", "build/")
CODE_SHAPES = {
    "LOINC code": re.compile(r"\d{1,5}-\d"),
    "LOINC answer": re.compile(r"LA\d{3,5}-\d"),
    "SNOMED or RxNorm code": re.compile(r"\d{6,18}"),
    "ICD-10 code": re.compile(r"[A-TV-Z]\d\d(\.\d{1,4})?"),
}


def product_files() -> list[Path]:
    return sorted(
        p
        for p in ROOT.rglob("*.py")
        if not str(p.relative_to(ROOT)).startswith(EXEMPT) and p.name != "dev.py"
    )


def _strings(tree: ast.AST) -> list[tuple[int, str]]:
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def test_no_code_shaped_string_in_product_code() -> None:
    offenders = []
    for path in product_files():
        for line, text in _strings(ast.parse(path.read_text())):
            for pieces in (text, *re.split(r"[|,\s/=&?]+", text)):
                for what, shape in CODE_SHAPES.items():
                    if pieces and shape.fullmatch(pieces):
                        offenders.append(f"{path.relative_to(ROOT)}:{line} {what} {pieces!r}")
    assert offenders == []


def test_no_drug_name_in_product_code() -> None:
    kb = load_knowledge()
    names = {n for n in kb.name_index if len(n) >= 5}
    pattern = re.compile(
        r"\b(" + "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True)) + r")\b",
        re.IGNORECASE,
    )
    offenders = [
        f"{path.relative_to(ROOT)}:{line} {match.group(0)!r}"
        for path in product_files()
        for line, text in _strings(ast.parse(path.read_text()))
        for match in [pattern.search(text)]
        if match
    ]
    assert offenders == []


def test_the_checks_catch_what_they_are_for() -> None:
    """The scanner itself: a planted literal of each kind is found."""
    planted = ast.parse('x = "LA6576-8"\ny = "2160-0"\nz = "cisplatin avoided"\n"""doc 1234-5"""')
    texts = [t for _, t in _strings(planted)]
    assert "LA6576-8" in texts and "2160-0" in texts and "cisplatin avoided" in texts
    assert CODE_SHAPES["LOINC answer"].fullmatch("LA6576-8")
    assert CODE_SHAPES["ICD-10 code"].fullmatch("B20")


def test_no_citation_in_product_code() -> None:
    """Citations come from evidence.yaml (salvage.engine.contraindications.cite and the option
    evidence keys), so a corrected reference changes everywhere at once."""
    kb = load_knowledge()
    labels = {e.label.split(" (")[0] for e in kb.evidence.values()} | set(kb.evidence)
    labels = {x for x in labels if len(x) >= 6 and any(ch.isdigit() for ch in x)}
    offenders = [
        f"{path.relative_to(ROOT)}:{line} {label!r}"
        for path in product_files()
        for line, text in _strings(ast.parse(path.read_text()))
        for label in labels
        if label in text
    ]
    assert offenders == []
