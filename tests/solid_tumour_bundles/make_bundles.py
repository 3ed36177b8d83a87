"""Writes the breast and NSCLC biomarker bundles (issue 12 items 5-6) the way EHRs record them:
coded variant results next to text-only NGS reports, HER2 scores written as text, PD-L1 as a
quantity or a sentence, drugs by brand or text only, stale negative results, unrelated problems.
Run: python tests/solid_tumour_bundles/make_bundles.py (the JSON files are committed)."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
_ids = itertools.count(1)


class Patient:
    def __init__(self, pid: str, birth: str, gender: str) -> None:
        self.pid = pid
        self.entries: list[dict[str, Any]] = []
        self.add("Patient", id=pid, gender=gender, birthDate=birth)

    def add(self, rtype: str, **fields: Any) -> str:
        rid = fields.pop("id", f"{self.pid}-{rtype[:3].lower()}-{next(_ids)}")
        resource = {"resourceType": rtype, "id": rid, **fields}
        if rtype != "Patient":
            resource["subject"] = {"reference": f"Patient/{self.pid}"}
        self.entries.append({"fullUrl": f"urn:uuid:{rtype}-{rid}", "resource": resource})
        return f"{rtype}/{rid}"

    def condition(
        self, system: str, code: str, text: str, onset: str, status: str = "active"
    ) -> str:
        return self.add(
            "Condition",
            code={"coding": [{"system": system, "code": code, "display": text}], "text": text},
            clinicalStatus={
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                        "code": status,
                    }
                ]
            },
            onsetDateTime=onset,
            recordedDate=onset,
        )

    def oral(self, text: str, start: str, months: int, code: str | None = None) -> None:
        """Monthly 28-day supplies, as a pharmacy records a continuous oral drug."""
        day = dt.date.fromisoformat(start)
        for _ in range(months):
            concept: dict[str, Any] = {"text": text}
            if code:
                concept["coding"] = [{"system": RXNORM, "code": code, "display": text}]
            self.add(
                "MedicationRequest",
                status="completed",
                intent="order",
                medicationCodeableConcept=concept,
                authoredOn=day.isoformat(),
                dispenseRequest={
                    "expectedSupplyDuration": {"value": 28, "unit": "days", "code": "d"}
                },
            )
            day += dt.timedelta(days=28)

    def infusions(self, texts: list[str], start: str, cycles: int, every: int = 21) -> None:
        day = dt.date.fromisoformat(start)
        for _ in range(cycles):
            for text in texts:
                self.add(
                    "MedicationAdministration",
                    status="completed",
                    medicationCodeableConcept={"text": text},
                    effectiveDateTime=f"{day.isoformat()}T10:00:00Z",
                )
            day += dt.timedelta(days=every)

    def observation(self, code: str | None, text: str, when: str, **value: Any) -> str:
        concept: dict[str, Any] = {"text": text}
        if code:
            concept["coding"] = [{"system": LOINC, "code": code, "display": text}]
        return self.add(
            "Observation", status="final", code=concept, effectiveDateTime=when, **value
        )

    def variant(
        self, gene: str, protein: str, when: str, present: bool = True, note: str = ""
    ) -> str:
        """A coded variant result (HL7 Genomics Reporting: 69548-6 with components)."""
        answer = ("LA9633-4", "Present") if present else ("LA9634-2", "Absent")
        fields: dict[str, Any] = {
            "valueCodeableConcept": {
                "coding": [{"system": LOINC, "code": answer[0], "display": answer[1]}]
            },
            "component": [
                {
                    "code": {
                        "coding": [
                            {"system": LOINC, "code": "48018-6", "display": "Gene studied [ID]"}
                        ]
                    },
                    "valueCodeableConcept": {
                        "coding": [
                            {
                                "system": "http://www.genenames.org/geneId",
                                "code": f"HGNC:{gene}",
                                "display": gene,
                            }
                        ]
                    },
                },
                {
                    "code": {
                        "coding": [
                            {
                                "system": LOINC,
                                "code": "48005-3",
                                "display": "Amino acid change (pHGVS)",
                            }
                        ]
                    },
                    "valueCodeableConcept": {"text": protein},
                },
            ],
        }
        if note:
            fields["note"] = [{"text": note}]
        return self.observation("69548-6", "Genetic variant assessment", when, **fields)

    def progression(self, when: str, condition: str) -> str:
        return self.observation(
            "97509-4",
            "Cancer disease status",
            when,
            valueCodeableConcept={
                "coding": [
                    {
                        "system": SNOMED,
                        "code": "271299001",
                        "display": "Patient's condition worsened",
                    }
                ]
            },
            focus=[{"reference": condition}],
        )

    def ecog(self, when: str, score: int) -> str:
        return self.observation("89247-1", "ECOG performance status", when, valueInteger=score)

    def write(self, name: str) -> None:
        bundle = {"resourceType": "Bundle", "id": name, "type": "collection", "entry": self.entries}
        (HERE / f"{name}.json").write_text(json.dumps(bundle, indent=1) + "\n")


def positive(text: str) -> dict[str, Any]:
    return {
        "valueCodeableConcept": {
            "coding": [{"system": SNOMED, "code": "10828004", "display": "Positive"}],
            "text": text,
        }
    }


def negative(text: str) -> dict[str, Any]:
    return {
        "valueCodeableConcept": {
            "coding": [{"system": SNOMED, "code": "260385009", "display": "Negative"}],
            "text": text,
        }
    }


def breast_esr1_her2_low() -> None:
    """HR+, HER2 1+ written as text; relapse on letrozole + palbociclib; ESR1 Y537S in ctDNA (a
    coded variant), an older ESR1-negative tissue result; hypertension on the problem list."""
    p = Patient("st01", "1961-02-11", "female")
    cond = p.condition(ICD10, "C50.911", "Malignant neoplasm of right female breast", "2022-03-02")
    p.condition(SNOMED, "38341003", "Hypertensive disorder", "2015-06-01")
    p.observation("85337-4", "ER IHC", "2022-03-10", **positive("ER positive, 95 %"))
    p.observation("85339-0", "PR IHC", "2022-03-10", valueString="negative (<1 %)")
    p.observation(
        "85319-2", "HER2 IHC", "2022-03-10", valueString="Score 1+ (HER2-low), ISH not done"
    )
    p.variant("ESR1", "not detected", "2022-04-01", present=False, note="tissue panel at diagnosis")
    p.oral("letrozole 2.5 MG Oral Tablet", "2022-04-15", 30, code="72965")
    p.oral("Ibrance 125 mg capsule", "2022-04-15", 30)
    p.progression("2024-09-20", cond)
    p.variant("ESR1", "p.Tyr537Ser", "2024-10-01", note="Guardant360 ctDNA, VAF 3.1 %")
    p.ecog("2024-10-02", 1)
    p.write("st01-breast-hrpos-her2low-esr1-after-palbociclib")


def breast_pik3ca_text_stale_esr1() -> None:
    """HR+/HER2 0; progression on anastrozole + ribociclib; PIK3CA H1047R in a text-only NGS
    report; ESR1 'not detected' from before the progression (must be retested)."""
    p = Patient("st02", "1957-08-30", "female")
    cond = p.condition(SNOMED, "254837009", "Malignant neoplasm of breast", "2021-11-05")
    p.observation("85337-4", "Estrogen receptor", "2021-11-10", **positive("Positive"))
    p.observation("85319-2", "HER2 IHC", "2021-11-10", **negative("Negative (IHC 0)"))
    p.oral("anastrozole 1 MG Oral Tablet", "2022-01-03", 28, code="84857")
    p.oral("Kisqali 200 mg tablet", "2022-01-03", 28)
    p.observation(
        None,
        "Tumour NGS panel (FoundationOne CDx)",
        "2022-02-14",
        valueString=(
            "PIK3CA p.H1047R mutation detected; AKT1 and PTEN: no alterations; ESR1 not detected"
        ),
    )
    p.progression("2024-03-18", cond)
    p.ecog("2024-03-20", 1)
    p.write("st02-breast-hrpos-pik3ca-text-after-ribociclib")


def breast_tnbc_gbrca_pdl1() -> None:
    """Triple-negative, germline BRCA1 (text result), PD-L1 CPS 15 as a sentence; relapse 14
    months after adjuvant AC then paclitaxel; a treated thyroid cancer in remission."""
    p = Patient("st03", "1979-05-19", "female")
    cond = p.condition(
        ICD10,
        "C50.412",
        "Malignant neoplasm of upper-outer quadrant of left female breast",
        "2021-06-01",
    )
    p.condition(ICD10, "C73", "Papillary thyroid carcinoma", "2012-01-10", status="remission")
    p.observation("85337-4", "ER", "2021-06-05", **negative("Negative (0 %)"))
    p.observation("85339-0", "PR", "2021-06-05", **negative("Negative"))
    p.observation("85319-2", "HER2", "2021-06-05", valueString="HER2 0 (no staining)")
    p.infusions(["doxorubicin 60 mg/m2", "cyclophosphamide 600 mg/m2"], "2021-07-01", 4)
    p.infusions(["paclitaxel 80 mg/m2 weekly"], "2021-09-15", 12, every=7)
    p.observation(
        None,
        "Hereditary breast cancer panel (germline)",
        "2021-08-02",
        valueString="BRCA1 c.68_69del (p.Glu23fs) pathogenic variant detected (germline)",
    )
    p.progression("2023-02-20", cond)
    p.observation("83052-1", "PD-L1 22C3 IHC", "2023-03-01", valueString="PD-L1 (22C3) CPS 15")
    p.ecog("2023-03-02", 0)
    p.write("st03-tnbc-gbrca-pdl1-cps15-after-adjuvant")


def breast_her2_positive_after_tdxd() -> None:
    """HER2 3+; THP first line, then trastuzumab deruxtecan; progression on T-DXd."""
    p = Patient("st04", "1970-12-02", "female")
    cond = p.condition(SNOMED, "254837009", "Breast cancer, metastatic", "2020-09-01")
    p.observation("85337-4", "ER", "2020-09-05", **negative("Negative"))
    p.observation("85319-2", "HER2", "2020-09-05", valueString="3+ (positive)")
    p.infusions(["Herceptin", "Perjeta", "docetaxel"], "2020-10-01", 6)
    p.infusions(["Herceptin", "Perjeta"], "2021-01-21", 20)
    p.progression("2022-04-10", cond)
    p.infusions(["Enhertu 5.4 mg/kg"], "2022-05-01", 24)
    p.progression("2023-11-15", cond)
    p.ecog("2023-11-20", 1)
    p.write("st04-breast-her2pos-progression-on-tdxd")


def breast_her2_ultralow() -> None:
    """HR+, HER2 IHC 0 with faint staining (ultralow); progression on fulvestrant + palbociclib
    after letrozole; no chemotherapy for metastatic disease."""
    p = Patient("st05", "1955-03-14", "female")
    cond = p.condition(SNOMED, "254837009", "Malignant neoplasm of breast", "2020-02-01")
    p.observation("85337-4", "ER", "2020-02-03", **positive("Positive (80 %)"))
    p.observation(
        "85319-2",
        "HER2 IHC",
        "2023-05-02",
        valueString=(
            "IHC 0 with faint incomplete membrane staining in <10 % of cells (HER2-ultralow)"
        ),
    )
    p.oral("letrozole 2.5 MG Oral Tablet", "2020-03-01", 36, code="72965")
    p.progression("2023-03-01", cond)
    p.infusions(["fulvestrant 500 mg IM"], "2023-03-15", 12, every=28)
    p.oral("palbociclib 125 mg", "2023-03-15", 12)
    p.progression("2024-02-10", cond)
    p.ecog("2024-02-12", 1)
    p.write("st05-breast-hrpos-her2-ultralow-after-fulvestrant-palbociclib")


def nsclc_egfr_t790m() -> None:
    """EGFR exon 19 deletion (text) on erlotinib; T790M found in plasma at progression (coded)."""
    p = Patient("st06", "1958-07-07", "female")
    cond = p.condition(SNOMED, "254637007", "Adenocarcinoma of lung, stage IV", "2022-01-10")
    p.observation(
        None,
        "EGFR mutation analysis (cobas)",
        "2022-01-20",
        valueString="Exon 19 deletion DETECTED. T790M not detected.",
    )
    p.oral("Tarceva 150 mg tablet", "2022-02-01", 24)
    p.progression("2023-12-05", cond)
    p.variant("EGFR", "p.Thr790Met", "2023-12-12", note="plasma ctDNA")
    p.ecog("2023-12-12", 1)
    p.write("st06-nsclc-egfr-t790m-after-erlotinib")


def nsclc_egfr_after_osimertinib() -> None:
    """EGFR L858R (coded) on first-line osimertinib; progression; no T790M question."""
    p = Patient("st07", "1963-10-21", "male")
    cond = p.condition(
        ICD10, "C34.11", "Malignant neoplasm of upper lobe, right bronchus or lung", "2022-05-02"
    )
    p.variant("EGFR", "p.Leu858Arg", "2022-05-10")
    p.oral("osimertinib 80 MG Oral Tablet", "2022-05-20", 26)
    p.progression("2024-04-30", cond)
    p.ecog("2024-05-03", 1)
    p.write("st07-nsclc-egfr-l858r-after-osimertinib")


def nsclc_kras_g12c() -> None:
    """KRAS G12C (coded); relapse after carboplatin-pemetrexed-pembrolizumab; squamous? no:
    adenocarcinoma on the problem list; COPD."""
    p = Patient("st08", "1955-01-30", "male")
    cond = p.condition(
        SNOMED, "254637007", "Non-small cell lung cancer (adenocarcinoma)", "2023-01-05"
    )
    p.condition(SNOMED, "13645005", "Chronic obstructive lung disease", "2016-01-01")
    p.variant("KRAS", "p.Gly12Cys", "2023-01-20")
    p.observation(
        None,
        "NGS lung panel",
        "2023-01-20",
        valueString="EGFR, ALK, ROS1, BRAF, MET, RET, ERBB2, NTRK1/2/3: no alterations detected",
    )
    p.observation(
        "83052-1", "PD-L1 22C3", "2023-01-20", valueQuantity={"value": 5, "unit": "%", "code": "%"}
    )
    p.infusions(["carboplatin AUC5", "pemetrexed 500 mg/m2", "Keytruda 200 mg"], "2023-02-01", 4)
    p.infusions(["pemetrexed 500 mg/m2", "Keytruda 200 mg"], "2023-04-05", 10)
    p.progression("2024-01-15", cond)
    p.ecog("2024-01-18", 1)
    p.write("st08-nsclc-kras-g12c-after-chemo-immunotherapy")


def nsclc_io_naive_squamous() -> None:
    """Squamous NSCLC, driver panel negative (text), PD-L1 TPS 60 % as a quantity; progression
    after carboplatin-paclitaxel without immunotherapy."""
    p = Patient("st09", "1950-09-09", "male")
    cond = p.condition(SNOMED, "254637007", "Squamous cell carcinoma of lung", "2023-06-01")
    p.observation(
        None,
        "Lung cancer molecular panel",
        "2023-06-10",
        valueString=(
            "No EGFR mutation; ALK and ROS1 rearrangements not detected; "
            "KRAS, BRAF, MET, RET, ERBB2, NTRK: wild-type"
        ),
    )
    p.observation(
        "83052-1",
        "PD-L1 (22C3) tumour proportion score",
        "2023-06-10",
        valueQuantity={"value": 60, "unit": "%", "code": "%"},
    )
    p.infusions(["carboplatin AUC6", "paclitaxel 200 mg/m2"], "2023-07-01", 4)
    p.progression("2023-11-02", cond)
    p.ecog("2023-11-05", 1)
    p.write("st09-nsclc-squamous-io-naive-pdl1-60")


def nsclc_alk_after_crizotinib() -> None:
    """ALK rearrangement by FISH (text); progression on crizotinib."""
    p = Patient("st10", "1976-04-04", "female")
    cond = p.condition(SNOMED, "254637007", "Lung adenocarcinoma", "2021-03-01")
    p.observation(
        None,
        "ALK (FISH)",
        "2021-03-10",
        valueString="ALK rearrangement POSITIVE (break-apart, 42 % of nuclei)",
    )
    p.oral("Xalkori 250 mg capsule", "2021-04-01", 30)
    p.progression("2023-08-14", cond)
    p.ecog("2023-08-15", 1)
    p.write("st10-nsclc-alk-after-crizotinib")


def nsclc_drivers_not_tested() -> None:
    """Adenocarcinoma; molecular testing failed (insufficient tissue); relapse after
    cisplatin-pemetrexed; ECOG 1."""
    p = Patient("st11", "1960-06-16", "male")
    cond = p.condition(SNOMED, "254637007", "Adenocarcinoma of lung", "2023-09-01")
    p.observation(
        None,
        "EGFR/ALK/ROS1 testing",
        "2023-09-12",
        valueString="Not performed - insufficient tumour tissue",
    )
    p.infusions(["cisplatin 75 mg/m2", "pemetrexed 500 mg/m2"], "2023-10-01", 4)
    p.progression("2024-04-02", cond)
    p.ecog("2024-04-04", 1)
    p.write("st11-nsclc-drivers-not-tested")


AS_OF = {
    "st01-breast-hrpos-her2low-esr1-after-palbociclib": "2024-10-10",
    "st02-breast-hrpos-pik3ca-text-after-ribociclib": "2024-03-25",
    "st03-tnbc-gbrca-pdl1-cps15-after-adjuvant": "2023-03-10",
    "st04-breast-her2pos-progression-on-tdxd": "2023-11-25",
    "st05-breast-hrpos-her2-ultralow-after-fulvestrant-palbociclib": "2024-02-20",
    "st06-nsclc-egfr-t790m-after-erlotinib": "2023-12-20",
    "st07-nsclc-egfr-l858r-after-osimertinib": "2024-05-10",
    "st08-nsclc-kras-g12c-after-chemo-immunotherapy": "2024-01-25",
    "st09-nsclc-squamous-io-naive-pdl1-60": "2023-11-10",
    "st10-nsclc-alk-after-crizotinib": "2023-08-20",
    "st11-nsclc-drivers-not-tested": "2024-04-10",
}


if __name__ == "__main__":
    for make in (
        breast_esr1_her2_low,
        breast_pik3ca_text_stale_esr1,
        breast_tnbc_gbrca_pdl1,
        breast_her2_positive_after_tdxd,
        breast_her2_ultralow,
        nsclc_egfr_t790m,
        nsclc_egfr_after_osimertinib,
        nsclc_kras_g12c,
        nsclc_io_naive_squamous,
        nsclc_alk_after_crizotinib,
        nsclc_drivers_not_tested,
    ):
        make()
    (HERE / "asof.txt").write_text("".join(f"{k}.json {v}\n" for k, v in AS_OF.items()))
