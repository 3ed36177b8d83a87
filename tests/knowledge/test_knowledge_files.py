"""Knowledge files fit their schema, cross-reference cleanly, and every code names its source."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from salvage.errors import KnowledgeError
from salvage.knowledge import loader


def test_shipped_knowledge_loads_with_a_version(kb) -> None:
    assert kb.version.count(".") == 2
    assert "decision support" in kb.disclaimer


def test_every_regimen_component_is_a_known_drug(kb) -> None:
    for regimen in kb.regimens.values():
        assert regimen.components <= set(kb.drugs), regimen.name


def test_every_rxnorm_code_records_where_it_was_verified() -> None:
    raw = yaml.safe_load((loader.data_dir() / "drugs.yaml").read_text())
    manifest = yaml.safe_load((loader.data_dir() / "manifest.yaml").read_text())
    for name, drug in raw["drugs"].items():
        for code in drug["rxnorm"]:
            assert code["verified"] in manifest["verification_sources"], name


def test_every_line_rule_cites_evidence(kb) -> None:
    assert kb.default_rules.evidence
    for key in kb.default_rules.evidence:
        assert kb.evidence[key].url.startswith("https://")


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(loader.data_dir(), target)
    return target


def test_a_regimen_naming_an_unknown_drug_is_refused(tmp_path: Path) -> None:
    data = _copy(tmp_path)
    path = data / "regimens.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["regimens"]["R-CHOP"]["components"].append("unobtainium")
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(KnowledgeError):
        loader.build(loader.load_raw(data))


def test_an_unknown_field_is_refused(tmp_path: Path) -> None:
    data = _copy(tmp_path)
    path = data / "drugs.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["drugs"]["rituximab"]["colour"] = "blue"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(KnowledgeError):
        loader.load_raw(data)


def test_a_code_without_verification_source_is_refused(tmp_path: Path) -> None:
    data = _copy(tmp_path)
    path = data / "drugs.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["drugs"]["docetaxel"]["rxnorm"] = [{"code": "72962", "tty": "IN", "verified": "memory"}]
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(KnowledgeError):
        loader.build(loader.load_raw(data))


@pytest.mark.parametrize(
    ("stem", "path", "typo"),
    [
        ("failures", ("prostate", "post_prostatectomy"), "threshold_ng_per_mL"),
        ("patient_rules", ("cisplatin",), "min_creatinine_clearance"),
        ("order_checks", ("delay",), "default_day"),
    ],
)
def test_a_misspelt_threshold_fails_at_load_naming_file_and_key(
    tmp_path, stem: str, path: tuple[str, ...], typo: str
) -> None:
    """Every knowledge file is typed (extra='forbid'): a typo is a load error, never a silent
    default at request time."""
    copy = tmp_path / "data"
    shutil.copytree(loader.data_dir(), copy)
    document = yaml.safe_load((copy / f"{stem}.yaml").read_text())
    node = document
    for key in path:
        node = node[key]
    node[typo] = 1
    (copy / f"{stem}.yaml").write_text(yaml.safe_dump(document))
    with pytest.raises(KnowledgeError) as error:
        loader.load_knowledge(str(copy))
    assert f"{stem}.yaml" in str(error.value) and typo in str(error.value)


def _edit(tmp_path: Path, stem: str, change) -> Path:
    data = _copy(tmp_path)
    path = data / f"{stem}.yaml"
    doc = yaml.safe_load(path.read_text())
    change(doc)
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    return data


@pytest.mark.parametrize(
    ("stem", "change", "message"),
    [
        (
            "observations",
            lambda d: d["observations"]["estrogen-receptor"]["verified"].update(
                {"16112-5": "memory"}
            ),
            "not a verification source",
        ),
        (
            "observations",
            lambda d: d["observations"]["estrogen-receptor"]["verified"].update(
                {"40556-3": "hl7-breastcancer-receptor-vs"}
            ),
            "not its LOINC code",
        ),
        (
            "answers",
            lambda d: d["receptor_text"].update({"evidence": ["ASCO-CAP-1999"]}),
            "unknown evidence",
        ),
        (
            "pathways",
            lambda d: next(
                o for o in d["pathways"]["breast"]["options"] if o["id"] == "breast-elacestrant"
            )["biomarker_cautions"][0].update({"biomarker": "esr2"}),
            "unknown biomarker",
        ),
    ],
)
def test_marker_reading_references_must_resolve(tmp_path: Path, stem, change, message) -> None:
    data = _edit(tmp_path, stem, change)
    with pytest.raises(KnowledgeError, match=message):
        loader.build(loader.load_raw(data))
