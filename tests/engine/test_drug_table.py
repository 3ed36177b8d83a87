"""Issue 11 item 1: every systemic agent of the covered diseases is in the drug table, with its
classes and verified codes; product codes resolve by whole-word display text; combination
products map to every ingredient; a product recognised only in part is reported, never reduced."""

from __future__ import annotations

import json

import pytest

from salvage import cli
from salvage.engine.drugs import normaliser_for
from tests.conftest import FIXTURES, RXNORM, Chart

# The agents issue 11 item 1 names, as drugs.yaml spells them.
ISSUE_11_AGENTS = {
    "nsclc targeted": [
        "osimertinib", "gefitinib", "erlotinib", "afatinib", "dacomitinib", "alectinib",
        "brigatinib", "lorlatinib", "crizotinib", "ceritinib", "entrectinib", "repotrectinib",
        "larotrectinib", "sotorasib", "adagrasib", "dabrafenib", "trametinib", "capmatinib",
        "tepotinib", "selpercatinib", "pralsetinib", "amivantamab", "lazertinib",
        "trastuzumab deruxtecan",
    ],
    "immunotherapy": [
        "nivolumab", "pembrolizumab", "atezolizumab", "durvalumab", "cemiplimab", "ipilimumab",
        "tremelimumab",
    ],
    "chemotherapy and antibodies": [
        "cetuximab", "necitumumab", "bevacizumab", "ramucirumab", "gemcitabine", "vinorelbine",
        "etoposide", "nab-paclitaxel", "irinotecan", "topotecan",
    ],
    "lymphoma": [
        "glofitamab", "epcoritamab", "mosunetuzumab", "loncastuximab tesirine",
        "polatuzumab vedotin", "tafasitamab", "lenalidomide", "ibrutinib", "acalabrutinib",
        "zanubrutinib", "brentuximab vedotin", "bendamustine", "gemcitabine", "oxaliplatin",
        "carmustine", "melphalan", "thiotepa",
    ],
    "breast": [
        "elacestrant", "imlunestrant", "capivasertib", "alpelisib", "everolimus", "olaparib",
        "talazoparib", "sacituzumab govitecan", "datopotamab deruxtecan", "trastuzumab",
        "pertuzumab", "ado-trastuzumab emtansine", "tucatinib", "neratinib", "lapatinib",
        "doxorubicin", "pegylated liposomal doxorubicin", "epirubicin", "daunorubicin",
        "idarubicin", "mitoxantrone",
    ],
    "prostate": [
        "abiraterone", "enzalutamide", "apalutamide", "darolutamide", "leuprolide", "goserelin",
        "degarelix", "relugolix", "docetaxel", "cabazitaxel",
        "lutetium lu 177 vipivotide tetraxetan", "olaparib",
    ],
}  # fmt: skip
EVERY_AGENT = sorted({a for group in ISSUE_11_AGENTS.values() for a in group})


@pytest.mark.parametrize("agent", EVERY_AGENT)
def test_every_agent_of_issue_11_is_an_anticancer_drug_with_classes(kb, agent: str) -> None:
    drug = kb.drugs[agent]
    assert drug.role == "anticancer" and drug.classes


def test_codes_as_they_arrive_in_real_data_map_to_their_ingredient(kb) -> None:
    normaliser = normaliser_for(kb)
    for code, agent in (
        ("318341", "cetuximab"),
        ("1919503", "durvalumab"),
        ("337525", "erlotinib"),
    ):
        concept = {"coding": [{"system": RXNORM, "code": code}]}
        assert normaliser.from_concept(concept) == {agent}


def test_every_rxnorm_code_names_its_verification_source(kb) -> None:
    from salvage.knowledge.loader import load_raw

    raw = load_raw()
    sources = raw["manifest"].verification_sources
    for name, drug in raw["drugs"].drugs.items():
        for code in drug.rxnorm:
            assert code.verified in sources, (name, code)


@pytest.mark.parametrize(
    ("agent", "cls"),
    [
        ("durvalumab", "anti-PD-L1"),
        ("cemiplimab", "anti-PD-1"),
        ("cabazitaxel", "taxane"),
        ("mitoxantrone", "anthracycline"),
        ("pegylated liposomal doxorubicin", "anthracycline"),
        ("loncastuximab tesirine", "anti-CD19"),
        ("mosunetuzumab", "cd20xcd3-bispecific"),
        ("ado-trastuzumab emtansine", "anti-HER2"),
    ],
)
def test_agents_carry_the_classes_the_exclusions_use(kb, agent: str, cls: str) -> None:
    assert cls in kb.drugs[agent].classes


@pytest.mark.parametrize(
    ("display", "expected"),
    [
        ("erlotinib 25 MG Oral Tablet", {"erlotinib"}),
        ("osimertinib 80 MG Oral Tablet [Tagrisso]", {"osimertinib"}),
        ("cisplatin 1 MG/ML Injectable Solution", {"cisplatin"}),
        ("carboplatin 10 MG/ML Injectable Solution", {"carboplatin"}),
        ("platin 10 MG/ML Injectable Solution", set()),  # a fragment is not a drug
        ("paclitaxel protein-bound particles 100 MG", {"nab-paclitaxel"}),
        ("paclitaxel 6 MG/ML Injectable Solution", {"paclitaxel"}),
        ("doxorubicin hydrochloride 2 MG/ML Injectable Suspension, Liposomal", {
            "pegylated liposomal doxorubicin"
        }),
        ("doxorubicin hydrochloride 2 MG/ML Injectable Solution", {"doxorubicin"}),
        ("darunavir 600 MG Oral Tablet [Prezista]", {"darunavir"}),
        ("Lupron Depot 22.5 MG Kit", {"leuprolide"}),
        ("ribociclib 200 MG / letrozole 2.5 MG [Kisqali Femara Co-Pack]",
         {"ribociclib", "letrozole"}),
    ],
)  # fmt: skip
def test_a_product_code_we_do_not_hold_resolves_by_whole_words_of_its_display(
    kb, display: str, expected: set[str]
) -> None:
    concept = {"coding": [{"system": RXNORM, "code": "999999001", "display": display}]}
    assert normaliser_for(kb).from_concept(concept) == expected


def test_liposomal_doxorubicin_coded_with_the_doxorubicin_ingredient_stays_its_own_agent(
    kb,
) -> None:
    concept = {"coding": [{"system": RXNORM, "code": "3639"}], "text": "Doxil 40 mg/m2 IV"}
    assert normaliser_for(kb).from_concept(concept) == {"pegylated liposomal doxorubicin"}


def test_a_combination_product_maps_to_every_ingredient(kb) -> None:
    concept = {"text": "Phesgo 1,200 mg/600 mg/30,000 units SC"}
    assert normaliser_for(kb).from_concept(concept) == {
        "pertuzumab",
        "trastuzumab",
        "hyaluronidase",
    }


def test_hyaluronidase_of_a_subcutaneous_product_is_no_drug_of_the_line(kb) -> None:
    chart = Chart(disease_snomed="254837009")
    for day in ("2024-01-08", "2024-01-29"):
        chart.give("Herceptin Hylecta 600 mg/10,000 units SC", day)
    (line,) = chart.analyse(kb).lines
    assert set(line.ingredients) == {"trastuzumab"}


def test_a_medication_listing_an_unknown_ingredient_is_reported_as_partly_recognised(kb) -> None:
    chart = Chart(disease_snomed="254637007")
    chart.resources.append(
        {
            "resourceType": "Medication",
            "id": "combo",
            "ingredient": [
                {"itemCodeableConcept": {"coding": [{"system": RXNORM, "code": "1597876"}]}},
                {"itemCodeableConcept": {"text": "Zorbalimab (investigational)"}},
            ],
        }
    )
    chart.add(
        "MedicationAdministration",
        status="completed",
        medicationReference={"reference": "Medication/combo"},
        effectiveDateTime="2024-03-04",
    )
    analysis = chart.analyse(kb)
    (part,) = analysis.record.partly_recognised
    assert part.recognised == ("nivolumab",)
    assert part.not_recognised == ("Zorbalimab (investigational)",)
    assert [set(line.ingredients) for line in analysis.lines] == [{"nivolumab"}]


def test_the_json_reports_a_product_recognised_only_in_part(capsys) -> None:
    path = FIXTURES / "breast-combination-products.json"
    assert cli.main(["lines", str(path), "--json", "--as-of", "2026-06-30"]) == 0
    (patient,) = json.loads(capsys.readouterr().out)["patients"]
    assert {p["source"] for p in patient["partly_recognised"]} == {
        f"MedicationAdministration/breast-combination-products-ma-{n}" for n in (14, 15, 16)
    }
    assert all(p["recognised"] == ["trastuzumab"] for p in patient["partly_recognised"])
    assert patient["unmapped"] == []


def test_an_erlotinib_only_patient_has_a_line(capsys) -> None:
    path = FIXTURES / "nsclc-erlotinib-only.json"
    assert cli.main(["lines", str(path), "--json", "--as-of", "2026-06-30"]) == 0
    (patient,) = json.loads(capsys.readouterr().out)["patients"]
    assert [(ln["number"], ln["ingredients"]) for ln in patient["lines"]] == [(1, ["erlotinib"])]
    assert patient["unmapped"] == []


def test_every_name_and_synonym_finds_its_own_ingredients(kb) -> None:
    normaliser = normaliser_for(kb)
    for name, ingredients in kb.name_index.items():
        assert normaliser.from_text(f"{name} 10 mg IV") == set(ingredients), name


def test_the_trie_pattern_matches_as_a_longest_first_alternation(kb) -> None:
    import re

    names = sorted(kb.name_index, key=len, reverse=True)
    flat = re.compile(r"(?<![\w-])(" + "|".join(re.escape(n) for n in names) + r")(?![\w-])")
    pattern = normaliser_for(kb)._pattern
    texts = [f"{a} / {b}-x {a}s" for a, b in zip(names, reversed(names), strict=True)]
    for text in texts:
        assert [m.group(1) for m in pattern.finditer(text)] == [
            m.group(1) for m in flat.finditer(text)
        ], text


def _knowledge_copy(tmp_path):
    import shutil

    from salvage.knowledge import loader

    target = tmp_path / "data"
    shutil.copytree(loader.data_dir(), target)
    return target


@pytest.mark.parametrize(
    "change",
    [
        # one code for two drugs would silently map the first drug's records to the second
        lambda doc: doc["drugs"]["gefitinib"]["rxnorm"].append(
            {"code": "337525", "tty": "IN", "verified": "issue-11"}
        ),
        # a synonym naming another drug would silently steal its records
        lambda doc: doc["drugs"]["erlotinib"]["synonyms"].append("iressa"),
        # a product synonym equal to a drug name would turn the drug into the product
        lambda doc: doc["products"][-1]["synonyms"].append("ribociclib"),
        # an equivalence ratio must name its basis (evidence key or "assumed")
        lambda doc: doc["drugs"]["daunorubicin"].pop("anthracycline_equivalence_basis"),
        # a formulation must name known drugs
        lambda doc: doc["formulations"].append(
            {"drug": "doxorubicin", "words": ["x"], "becomes": "doxorubicin-ultra"}
        ),
    ],
)
def test_an_ambiguous_drug_table_is_refused(tmp_path, change) -> None:
    import yaml

    from salvage.errors import KnowledgeError
    from salvage.knowledge import loader

    data = _knowledge_copy(tmp_path)
    path = data / "drugs.yaml"
    doc = yaml.safe_load(path.read_text())
    change(doc)
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(KnowledgeError):
        loader.build(loader.load_raw(data))
