"""Salvage options after a failure: ranked, explained, with exclusions and missing data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from salvage.engine import contraindications, factors, fitness, receptors
from salvage.engine.analysis import PatientAnalysis
from salvage.engine.model import Failure
from salvage.knowledge.model import KnowledgeBase, OptionEntry

NO_FAILURE = (
    "no documented treatment failure (refractory disease, relapse, intolerance, "
    "biochemical recurrence or virologic failure): no salvage options are suggested"
)
NOT_ASSESSED = (
    "the absence of a documented treatment failure is not a finding here ({reasons}); no salvage "
    "options are suggested from incomplete data"
)
BRANCH = {"eligible": "if transplant candidate", "ineligible": "if not a transplant candidate"}


@dataclass(frozen=True, kw_only=True)
class Option:
    rank: int
    option_id: str
    regimen: str
    kind: str
    ingredients: tuple[str, ...]
    setting: str
    rationale: tuple[str, ...]
    cautions: tuple[str, ...]
    evidence: tuple[str, ...]
    sources: tuple[str, ...]
    branch: str | None = (
        None  # "if transplant candidate" / "if not ..." when eligibility is unknown
    )
    recheck: tuple[str, ...] = ()  # "re-check X before use (last value ... on ...)"


@dataclass(frozen=True, kw_only=True)
class Exclusion:
    regimen: str
    option_id: str
    reasons: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Recommendation:
    patient: str
    disease: str | None
    failure: Failure | None
    options: tuple[Option, ...]
    excluded: tuple[Exclusion, ...]
    missing_data: tuple[str, ...]
    statement: str | None = None
    facts: tuple[str, ...] = field(default_factory=tuple)
    transplant: fitness.Eligibility | None = None
    not_assessed: tuple[str, ...] = ()


def _disease_for(
    analysis: PatientAnalysis, failure: Failure | None, kb: KnowledgeBase
) -> str | None:
    """The disease whose line failed; without a failure, the first active disease with a
    pathway. A cancer in remission or resolved never drives the pathway."""
    if failure is not None:
        if failure.disease is not None:
            return failure.disease
        line = next((ln for ln in analysis.lines if ln.number == failure.line), None)
        if line is not None and line.domain == "hiv":
            return "hiv"
        if failure.kind == "virologic-failure":
            return "hiv"
    active = analysis.active_diseases or analysis.diseases
    return next(
        (d for d in active if d in kb.pathways and d != "hiv"),
        "hiv" if "hiv" in analysis.diseases else None,
    )


def _driving_failure(analysis: PatientAnalysis) -> tuple[Failure | None, str | None]:
    """The most recent open failure of an active disease, and why others were set aside."""
    candidates = [
        f
        for f in analysis.failures
        if not f.closed_by and (f.disease is None or f.disease in analysis.active_diseases)
    ]
    if candidates:
        return max(candidates, key=lambda f: f.when), None
    if not analysis.failures:
        return None, None
    last = max(analysis.failures, key=lambda f: f.when)
    if last.closed_by:
        why = (
            f"the {last.kind} of line {last.line} on {last.when.isoformat()} was followed by "
            f"remission or improvement on {last.closed_on.isoformat() if last.closed_on else '?'} "
            f"({', '.join(last.closed_by)}): no salvage is indicated now; reassess at progression"
        )
    else:
        why = (
            f"the {last.kind} on {last.when.isoformat()} is of {last.disease}, which is recorded "
            "as in remission or resolved: it does not drive salvage advice now"
        )
    return None, why


def _hbv_caution(hbv: Any, regimen: Any, kb: KnowledgeBase) -> tuple[str, ...]:
    """With HBV co-infection the new antiretroviral regimen keeps HBV-active drugs (DHHS)."""
    if hbv is None or regimen is None:
        return ()
    active = set(kb.patient_rules.antiretroviral.hbv_active_drugs)
    tenofovir = {"tenofovir disoproxil", "tenofovir alafenamide"}
    if regimen.components & tenofovir and regimen.components & (active - tenofovir):
        return ()
    return (
        f"Hepatitis B co-infection ({hbv.source}): add tenofovir (TAF or TDF) with "
        "emtricitabine or lamivudine to this regimen; stopping HBV-active drugs can cause "
        "a hepatitis flare (DHHS)",
    )


def what_failed(
    analysis: PatientAnalysis, domain: str, backbone: frozenset[str]
) -> tuple[dict[str, str], dict[str, str]]:
    """Drugs and regimens that must not be offered again, each with the reason and its sources:
    every drug of a failed line except the disease's backbone drugs, every drug not tolerated."""
    failed_drugs: dict[str, str] = {}
    failed_regimens: dict[str, str] = {}
    for f in analysis.failures:
        line = next(
            (
                ln
                for ln in analysis.lines
                if ln.number == f.line
                and not ln.maintenance
                and ln.domain == domain
                and (f.disease is None or ln.disease is None or ln.disease == f.disease)
            ),
            None,
        )
        if line is None:
            continue
        why = f"{line.regimen} {f.kind} on {f.when.isoformat()} ({', '.join(f.sources)})"
        if f.kind == "intolerance":
            for e in analysis.record.exposures:
                if e.source in f.sources:
                    for drug in e.ingredients:
                        failed_drugs[drug] = (
                            f"{drug} not tolerated on {f.when.isoformat()} ({e.source})"
                        )
            continue
        failed_regimens[line.regimen] = why
        for drug in line.ingredients:
            if drug not in backbone:
                failed_drugs.setdefault(drug, f"{drug} was part of {why}")
    return failed_drugs, failed_regimens


def recommend(analysis: PatientAnalysis, kb: KnowledgeBase, as_of: date) -> Recommendation:
    failure, set_aside = _driving_failure(analysis)
    disease = _disease_for(analysis, failure, kb)
    if disease == "hiv" and failure is not None:
        # HIV options follow resistance (hiv_regimens builds on this module's types).
        from salvage.engine import hiv_regimens

        return hiv_regimens.recommend_hiv(analysis, kb, as_of, failure)
    if failure is None or disease is None or disease not in kb.pathways:
        if failure is None and not analysis.failure_assessable:
            statement = NOT_ASSESSED.format(reasons="; ".join(analysis.not_assessed))
        elif failure is None:
            hiv_said = analysis.statement if disease in (None, "hiv") else None  # PrEP
            statement = set_aside or hiv_said or NO_FAILURE
        else:
            statement = (
                f"no salvage pathway in knowledge base {kb.version} for this patient's disease"
            )
        return Recommendation(
            patient=analysis.patient,
            disease=disease,
            failure=failure,
            options=(),
            excluded=(),
            missing_data=(),
            statement=statement,
            not_assessed=analysis.not_assessed,
        )
    record = analysis.record
    rules = kb.patient_rules
    pathway = kb.pathways[disease]
    domain = "hiv" if disease == "hiv" else "oncology"
    failed_line = next(
        (
            ln
            for ln in analysis.lines
            if ln.number == failure.line
            and ln.domain == domain
            and not ln.maintenance
            and (failure.disease is None or ln.disease is None or ln.disease == failure.disease)
        ),
        None,
    )
    facts: list[str] = [failure.detail]
    sources: list[str] = list(failure.sources)
    missing: list[str] = []
    facts += list(analysis.not_assessed)

    # Timing: early = refractory, or relapse within early_relapse_months (ZUMA-7, TRANSFORM).
    early_months = float(kb.failures.oncology.early_relapse_months)
    if failure.kind == "relapse" and failure.relapse_interval_months is not None:
        timing = "early" if failure.relapse_interval_months <= early_months else "late"
        facts.append(
            f"relapse {failure.relapse_interval_months} months after the line ended: "
            f"{'within' if timing == 'early' else 'more than'} {early_months:g} months"
        )
    elif failure.kind == "refractory":
        timing = "early"
        if failure.primary:
            facts.append("primary refractory: the first line never controlled the disease")
    else:
        timing = "any"

    performance = factors.ecog(record, kb, as_of)
    odd_performance = factors.unreadable_performance(record, as_of)
    clearance = factors.creatinine_clearance(record, kb, as_of)
    if domain == "oncology":
        if odd_performance is not None:
            missing.append(
                f"performance status recorded as '{odd_performance.raw}' on "
                f"{odd_performance.when.isoformat()} ({odd_performance.source}) cannot be read: "
                "record it as ECOG 0-5 or Karnofsky; fitness is not assumed"
            )
        elif performance is None:
            missing.append(
                "no ECOG or Karnofsky performance status on record: fitness for the options is "
                "unknown, not assumed"
            )
        else:
            facts.append(performance.text)
            sources += performance.sources
            if performance.stale:
                missing.append(
                    f"re-check performance status before use (last value {performance.text})"
                )

    eligibility = fitness.transplant(record, kb, disease, as_of) if domain == "oncology" else None
    transplant = "any"
    if eligibility is not None:
        transplant = {"candidate": "eligible", "not-candidate": "ineligible"}.get(
            eligibility.status, "unknown"
        )
        facts.append(eligibility.summary())
        sources += [x for x in eligibility.sources if x not in sources]
        if eligibility.status == "unknown":
            missing.append(
                "transplant eligibility unknown ("
                + "; ".join(eligibility.reasons)
                + "): options for both branches are shown, each labelled"
            )
        missing += [
            f"{m} not recorded: needed for transplant eligibility"
            for m in eligibility.missing
            if "ECOG" not in m
        ]
        missing += [r for r in eligibility.rechecks if r not in missing]
        if eligibility.not_checked and eligibility.status != "not-candidate":
            missing.append(
                "not checked for transplant eligibility (no value on record): "
                + ", ".join(eligibility.not_checked)
            )

    total = factors.cumulative_anthracycline(record, kb, as_of)
    caution_level = float(rules.anthracycline.caution_cumulative_doxorubicin_mg_m2)
    if total is not None and total.value >= caution_level:
        facts.append(
            f"{total.text}: at or above the caution level of {caution_level:g} mg/m2 (Swain 2003)"
        )
        sources += [x for x in total.sources[:3] if x not in sources]

    failed_drugs, failed_regimens = what_failed(analysis, domain, pathway.backbone_drugs)

    overlay = kb.overlay
    rerank: dict[str, int] = overlay.rerank if overlay else {}
    disabled = overlay.disable if overlay else frozenset()
    failed_lines = len(
        {
            f.line
            for f in analysis.failures
            if f.kind == failure.kind and f.disease == failure.disease
        }
    )
    # The local therapy that failed decides the prostate pathway (prostatectomy vs radiotherapy).
    previous_procedures = (
        {failed_line.procedure} if failed_line and failed_line.procedure else set()
    )

    # Lines begun after the failure are the salvage already chosen: not offered again as new.
    started_after = [
        ln
        for ln in analysis.lines
        if ln.domain == domain
        and not ln.maintenance
        and ln.start > failure.when
        and (failure.disease is None or ln.disease is None or ln.disease == failure.disease)
    ]
    given_after = frozenset(d for ln in started_after for d in ln.ingredients)
    if started_after:
        facts.append(
            "after this failure, "
            + "; ".join(
                f"line {ln.number} ({ln.regimen}) started {ln.start.isoformat()}"
                for ln in started_after
            )
        )
    receptor_status = receptors.hormone_receptor(record, kb)
    her2_status = receptors.her2(record, kb)
    receptor_unknown = False
    chosen: list[tuple[tuple[int, int, int], OptionEntry, tuple[str, ...], tuple[str, ...]]] = []
    excluded: list[Exclusion] = []
    needs_renal = False
    renal_rules = set(contraindications.renal_drugs(kb))
    for option in pathway.options:
        when = option.when
        if failure.kind not in when.failure:
            continue
        if when.timing != "any" and timing != when.timing:
            continue
        if when.transplant != "any" and transplant not in ("unknown", when.transplant):
            continue
        if when.after_procedure and not previous_procedures & set(when.after_procedure):
            continue
        if when.min_failed_lines and failed_lines < when.min_failed_lines:
            continue
        regimen = kb.regimens.get(option.regimen or "")
        name = option.regimen or option.label or option.id
        components = regimen.components if regimen else frozenset()
        reasons: list[str] = []
        if when.primary_refractory is False and failure.primary:
            reasons.append(
                "not for primary refractory disease: the trial behind it excluded it "
                f"({', '.join(option.evidence)})"
            )
        if option.id in disabled:
            reasons.append(
                f"disabled by the local pathway of {overlay.institution if overlay else '?'}"
            )
        if name in failed_regimens:
            reasons.append(f"this regimen already failed: {failed_regimens[name]}")
        given = next(
            (
                ln
                for ln in started_after
                if ln.regimen == name
                or (components and components <= given_after)
                or (option.procedure and ln.procedure == option.procedure)
            ),
            None,
        )
        if given is not None:
            reasons.append(
                f"already given after this failure: line {given.number} "
                f"({given.regimen}) from {given.start.isoformat()} "
                f"({', '.join(given.sources[:3])})"
            )
        reasons += [failed_drugs[d] for d in sorted(components) if d in failed_drugs]
        needs_renal = needs_renal or bool(components & renal_rules)
        findings = contraindications.drug_findings(components, record, kb, as_of)
        reasons += [f.text for f in findings if f.severity == "contraindicated"]
        cautions = tuple(
            f.text for f in findings if f.severity == "caution" and f.basis != "unknown"
        )
        recheck = tuple(dict.fromkeys(f.recheck for f in findings if f.recheck))
        for marker, status in (("hormone_receptor", receptor_status), ("her2", her2_status)):
            needed = getattr(when, marker)
            if needed == "any":
                continue
            if status.value == "unknown":
                receptor_unknown = True
            elif status.value != needed:
                label = "hormone-receptor" if marker == "hormone_receptor" else "HER2"
                reasons.append(
                    f"needs {label}-{needed} disease: {status.text} ({', '.join(status.sources)})"
                )
        if reasons:
            excluded.append(Exclusion(regimen=name, option_id=option.id, reasons=tuple(reasons)))
            continue
        branch_order = 1 if transplant == "unknown" and when.transplant == "ineligible" else 0
        # An option that depends on a stale or unknown value ranks after those that do not.
        key = (branch_order, 1 if recheck else 0, rerank.get(option.id, option.rank))
        chosen.append((key, option, cautions, recheck))

    if receptor_unknown:
        missing.append(
            "no recent ER/PR or HER2 result: options that need hormone-receptor-"
            "positive, HER2-negative disease are shown; confirm the receptor status"
        )
    if needs_renal and clearance is None:
        missing.append(
            "no creatinine with weight and age, and no eGFR, on record: creatinine clearance "
            "unknown, so options with cisplatin or tenofovir are not checked against renal "
            "function and rank after the others"
        )
    elif clearance is not None:
        facts.append(clearance.text)
    hbv = contraindications.hbv_coinfection(record, kb) if disease == "hiv" else None
    if disease == "hiv" and hbv is None:
        missing.append(
            "no hepatitis B co-infection is recorded: confirm HBV status before "
            "changing tenofovir, emtricitabine or lamivudine"
        )
    if disease == "hiv":
        missing.append(
            "HIV-1 genotypic resistance results are not read by this version: "
            "check for a genotype since the failure and document drug-class resistance"
        )

    options: list[Option] = []
    for rank, (_, option, cautions, recheck) in enumerate(
        sorted(chosen, key=lambda item: item[0]), start=1
    ):
        regimen = kb.regimens.get(option.regimen or "")
        branch = BRANCH.get(option.when.transplant) if transplant == "unknown" else None
        options.append(
            Option(
                rank=rank,
                option_id=option.id,
                regimen=option.regimen or option.label or option.id,
                kind=option.kind,
                ingredients=tuple(sorted(regimen.components)) if regimen else (),
                setting=regimen.setting
                if regimen
                else ("local-salvage-procedure" if option.kind == "procedure" else "test"),
                rationale=(" ".join(option.rationale.split()), *facts),
                cautions=tuple(option.cautions) + cautions + _hbv_caution(hbv, regimen, kb),
                evidence=tuple(option.evidence),
                sources=tuple(dict.fromkeys(sources)),
                branch=branch,
                recheck=recheck,
            )
        )
    no_option: str | None = None
    if not options:
        no_option = (
            f"no option of knowledge base {kb.version} fits this {failure.kind}"
            + (" once exclusions are applied" if excluded else "")
            + ": discuss at a multidisciplinary meeting"
        )
    return Recommendation(
        patient=analysis.patient,
        disease=disease,
        failure=failure,
        options=tuple(options),
        excluded=tuple(excluded),
        missing_data=tuple(dict.fromkeys(missing)),
        facts=tuple(facts),
        statement=no_option,
        transplant=eligibility,
        not_assessed=analysis.not_assessed,
    )
