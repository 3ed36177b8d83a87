"""Checks of draft orders and of the time since a failure: pure rules returning typed findings.

The CDS Hooks service renders findings as cards and the SMART app can show them; neither decides
anything itself. Rules (thresholds and sources in knowledge/data/order_checks.yaml):
- a draft repeats a failed or not-tolerated drug or regimen (warning);
- a draft contains a drug the patient's data contraindicates (warning);
- in virologic failure, a draft adds a single antiretroviral to the failing regimen (warning);
- a draft matches a fitting salvage option that needs monitoring (info);
- HIV: a draft regimen that drops the hepatitis-B-active pair in HBV co-infection (warning), and a
  draft that combines a booster with a vinca alkaloid or an MMAE conjugate, or lenacapavir with a
  strong CYP3A inducer, with the other drug drafted or active (warning; hiv.yaml interactions);
- after a failure, no new line within the disease's delay threshold (info, patient-view).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from salvage.engine import contraindications, factors, hiv_backbone, resistance
from salvage.engine.analysis import PatientAnalysis
from salvage.engine.model import Failure
from salvage.engine.recommend import Option, Recommendation, what_failed
from salvage.engine.wording import counted
from salvage.knowledge.model import KnowledgeBase


@dataclass(frozen=True, kw_only=True, slots=True)
class DraftOrder:
    """A medication order not yet signed, normalised to ingredients."""

    resource_id: str | None  # "MedicationRequest/<id>"; None when the draft has no id
    ingredients: frozenset[str]
    text: str


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderFinding:
    """One problem with the drafts (or with the time since a failure), ready to show."""

    kind: str  # repeats-failed-therapy | contraindicated-drug | single-active-drug | ...
    severity: str  # warning | info
    summary: str
    facts: tuple[str, ...]  # sentences from the record, each naming its sources
    bullet_facts: bool = False
    failure: Failure | None = None
    options_heading: str | None = None  # list the fitting options under this heading
    avoid: frozenset[str] = frozenset()  # options containing these drugs are not offered
    replacements: tuple[Option, ...] = ()  # options to offer in place of the drafts
    suggest_genotype: bool = False
    evidence: tuple[str, ...] = ()  # knowledge evidence keys backing the rule
    missing_data: tuple[str, ...] = ()
    option: Option | None = None  # the fitting option a draft matches (monitoring note)
    # patient-view reminder: days waited, the threshold and why it is that long
    waited_days: int | None = None
    threshold_days: int | None = None
    threshold_note: str | None = None


def _domain(rec: Recommendation) -> str:
    return "hiv" if rec.disease == "hiv" else "oncology"


def failure_of_repeat(
    analysis: PatientAnalysis, domain: str, regimen: str | None, drugs: set[str]
) -> Failure | None:
    """The most recent failure of a line that the order repeats (by regimen, else by drug)."""
    for failure in sorted(analysis.failures, key=lambda f: f.when, reverse=True):
        line = next(
            (
                ln
                for ln in analysis.lines
                if ln.number == failure.line
                and ln.domain == domain
                and ln.disease == failure.disease  # numbering is per disease
                and not ln.maintenance
            ),
            None,
        )
        if line is None or failure.closed_by:
            continue
        if failure.kind == "intolerance":
            stopped = {
                d
                for e in analysis.record.exposures
                if e.source in failure.sources
                for d in e.ingredients
            }
            if regimen is None and drugs & stopped:
                return failure
            continue
        if line.regimen == regimen or (regimen is None and drugs & set(line.ingredients)):
            return failure
    return None


def _regimen_options(
    kb: KnowledgeBase, analysis: PatientAnalysis, rec: Recommendation, avoid: set[str]
) -> tuple[Option, ...]:
    """Options a card may offer to order in place of the drafts. Only complete regimens: never a
    test or an optimised-background prompt ("construct"), and with hepatitis B never a regimen
    without the HBV-active pair."""
    hbv = rec.disease == "hiv" and hiv_backbone.hbv_status(analysis.record, kb) is not None
    return tuple(
        o
        for o in rec.options
        if o.kind == "regimen"
        and not set(o.ingredients) & avoid
        and not (hbv and not hiv_backbone.has_hbv_pair(set(o.ingredients), kb))
    )


def _hiv_repeat_finding(
    kb: KnowledgeBase,
    analysis: PatientAnalysis,
    rec: Recommendation,
    repeats: list[str],
    reason: str,
    f: Failure,
) -> OrderFinding:
    """In HIV a drug of a failed regimen may be reused when the genotype allows (NADIA recycles
    tenofovir and lamivudine): the card asks for the genotype instead of calling the drug failed."""
    what = ", ".join(repeats)
    verb = "was" if len(repeats) == 1 else "were"
    activity = resistance.assess(analysis.record, kb)
    levels = [activity.drugs[d] for d in repeats if d in activity.drugs]
    facts = [f"Evidence in the record: {reason}.", f"Failure: {f.detail}."]
    facts += [f"Genotype: {a.text}." for a in levels]
    confirmed = bool(levels) and all(a.level == resistance.ACTIVE for a in levels)
    return OrderFinding(
        kind="repeats-failed-therapy",
        severity="info" if confirmed else "warning",
        summary=f"{what} {verb} part of a regimen with virologic failure; check the genotype "
        "before reusing it",
        facts=tuple(facts),
        failure=f,
        options_heading="Options that fit this patient:" if rec.options else None,
        replacements=_regimen_options(kb, analysis, rec, set()),
        suggest_genotype=not activity.tests,
        evidence=activity.evidence,
    )


def _repeat_finding(
    kb: KnowledgeBase, analysis: PatientAnalysis, rec: Recommendation, draft_drugs: frozenset[str]
) -> OrderFinding | None:
    domain = _domain(rec)
    pathway = kb.pathways.get(rec.disease or "")
    backbone = pathway.backbone_drugs if pathway else frozenset()
    failed_drugs, failed_regimens = what_failed(analysis, domain, backbone)
    named = kb.regimen_named(draft_drugs)
    repeats = sorted(d for d in draft_drugs if d in failed_drugs)
    if not repeats and not (named and named in failed_regimens):
        return None
    repeated_regimen = named if named and named in failed_regimens else None
    what = repeated_regimen or ", ".join(repeats)
    reason = failed_regimens.get(named or "") or failed_drugs[repeats[0]]
    f = failure_of_repeat(analysis, domain, repeated_regimen, set(repeats)) or rec.failure
    if domain == "hiv" and f is not None and f.kind == "virologic-failure":
        drugs = repeats or sorted(draft_drugs & set(failed_drugs))
        return _hiv_repeat_finding(kb, analysis, rec, drugs or sorted(draft_drugs), reason, f)
    if f is None:
        summary = f"This order repeats {what}, which failed before"
    elif f.kind == "intolerance":
        summary = f"This order repeats {what}, which was not tolerated ({f.when.isoformat()})"
    else:
        summary = f"This order repeats {what}, which failed ({f.kind}, {f.when.isoformat()})"
    facts = [f"Evidence in the record: {reason}."]
    if f is not None:
        facts.append(f"Failure: {f.detail}.")
    has_options = any(o.kind == "regimen" for o in rec.options)
    return OrderFinding(
        kind="repeats-failed-therapy",
        severity="warning",
        summary=summary,
        facts=tuple(facts),
        failure=f,
        options_heading="Salvage options that fit this patient:" if has_options else None,
        avoid=frozenset(repeats),
        replacements=_regimen_options(kb, analysis, rec, set(repeats)),
        suggest_genotype=rec.disease == "hiv" and f is not None and f.kind == "virologic-failure",
    )


def _contraindication_finding(
    kb: KnowledgeBase,
    analysis: PatientAnalysis,
    rec: Recommendation,
    draft_drugs: frozenset[str],
    as_of: date,
) -> OrderFinding | None:
    found = contraindications.drug_contraindications(draft_drugs, analysis.record, kb, as_of)
    if not found:
        return None
    drugs = sorted({drug for drug, _ in found})
    alternatives = _regimen_options(kb, analysis, rec, set(drugs))
    return OrderFinding(
        kind="contraindicated-drug",
        severity="warning",
        summary=f"{', '.join(drugs)}: contraindicated by this patient's data",
        facts=tuple(why for _, why in found),
        bullet_facts=True,
        options_heading="Alternatives without these drugs:" if alternatives else None,
        avoid=frozenset(drugs),
        replacements=alternatives,
    )


def _recheck_finding(
    kb: KnowledgeBase, analysis: PatientAnalysis, draft_drugs: frozenset[str], as_of: date
) -> OrderFinding | None:
    """A drug whose safety rule rests on a value that is unknown, too old or indeterminate: the
    order is not shown as safe; the value is re-checked first (a stale abnormal value is already a
    contraindication warning)."""
    found = [
        f
        for f in contraindications.drug_findings(draft_drugs, analysis.record, kb, as_of)
        if f.basis in ("unknown", "stale", "indeterminate") and not f.abnormal
    ]
    if not found:
        return None
    drugs = sorted({f.drug for f in found})
    return OrderFinding(
        kind="recheck-before-use",
        severity="warning",
        summary=f"Re-check before {', '.join(drugs)}: the value its safety rule needs is "
        "missing or out of date",
        # a stale or unplaceable value is named with its date; an unknown one by what to do
        facts=tuple(
            f.text if f.basis in ("stale", "indeterminate") else (f.recheck or f.text)
            for f in found
        ),
        bullet_facts=True,
    )


def _not_assessed_finding(analysis: PatientAnalysis) -> OrderFinding | None:
    """Data a failure rule needs could not be read: say so instead of implying no failure."""
    if analysis.failure_assessable:
        return None
    return OrderFinding(
        kind="not-assessed",
        severity="info",
        summary="Treatment failure could not be assessed: part of the record could not be read",
        facts=analysis.not_assessed or tuple(sorted(analysis.unreadable)),
        bullet_facts=True,
    )


def _single_drug_finding(
    kb: KnowledgeBase, analysis: PatientAnalysis, rec: Recommendation, draft_drugs: frozenset[str]
) -> OrderFinding | None:
    rule = kb.order_checks.single_active_drug
    if rec.disease != "hiv" or rec.failure is None or rec.failure.kind != "virologic-failure":
        return None
    arvs = {d for d in draft_drugs if d in kb.drugs and kb.drugs[d].role == "antiretroviral"}
    current = next((ln for ln in analysis.lines if ln.domain == "hiv" and ln.end is None), None)
    if len(arvs) >= rule.min_new_active_drugs or not arvs or current is None:
        return None
    summary = "Adding one drug to a failing antiretroviral regimen risks more resistance"
    return OrderFinding(
        kind="single-active-drug",
        severity="warning",
        summary=summary,
        facts=(
            f"Virologic failure on {current.regimen}: {rec.failure.detail}.",
            f"Build a new regimen with at least {rule.min_new_active_drugs} fully active drugs, "
            "one with a high resistance barrier, guided by a genotype.",
        ),
        suggest_genotype=True,
        evidence=rule.evidence,
    )


def _hbv_pair_finding(
    kb: KnowledgeBase,
    analysis: PatientAnalysis,
    rec: Recommendation,
    draft_drugs: frozenset[str],
    as_of: date,
) -> OrderFinding | None:
    """With hepatitis B, a drafted antiretroviral regimen (two drugs or more) must keep tenofovir
    with emtricitabine or lamivudine: stopping them can cause a hepatitis flare (DHHS)."""
    arvs = {d for d in draft_drugs if d in kb.drugs and kb.drugs[d].role == "antiretroviral"}
    if rec.disease != "hiv" or len(arvs) < 2 or hiv_backbone.has_hbv_pair(set(draft_drugs), kb):
        return None
    hbv = hiv_backbone.hbv_status(analysis.record, kb)
    if hbv is None:
        return None
    bb = hiv_backbone.backbone(analysis.record, kb, as_of)
    pair = " + ".join(bb.drugs) or "an HBV-active pair chosen with a specialist"
    return OrderFinding(
        kind="hbv-pair-dropped",
        severity="warning",
        summary="Hepatitis B co-infection: this antiretroviral regimen lacks the HBV-active pair",
        facts=(
            f"{hbv.text}.",
            f"Keep {pair} in the regimen ({bb.reason}); stopping HBV-active drugs can cause a "
            "hepatitis flare.",
        ),
        bullet_facts=True,
        replacements=_regimen_options(kb, analysis, rec, set()),
        options_heading="Options that keep the HBV-active pair:" if rec.options else None,
        evidence=kb.hiv.hbv_evidence,
    )


def _interaction_findings(
    kb: KnowledgeBase, analysis: PatientAnalysis, draft_drugs: frozenset[str], as_of: date
) -> list[OrderFinding]:
    """A drafted drug that interacts with another drafted or currently active drug."""
    active = {
        d
        for e in analysis.record.exposures
        if e.start <= as_of and (e.end is None or e.end >= as_of)
        for d in e.ingredients
    }
    present = set(draft_drugs) | active
    found: list[OrderFinding] = []
    for rule in kb.hiv.interactions:
        first, second = rule.first & present, rule.second & present
        if not first or not second or not (first | second) & draft_drugs:
            continue
        found.append(
            OrderFinding(
                kind="drug-interaction",
                severity="warning",
                summary=f"Interaction: {', '.join(sorted(first))} with {', '.join(sorted(second))}",
                facts=(rule.text,),
                evidence=rule.evidence,
            )
        )
    return found


def _monitoring_finding(
    kb: KnowledgeBase, rec: Recommendation, draft_drugs: frozenset[str]
) -> OrderFinding | None:
    companions = kb.order_checks.companion_drugs
    matching = next(
        (
            o
            for o in rec.options
            if o.ingredients
            and set(o.ingredients) <= draft_drugs | companions
            and draft_drugs <= set(o.ingredients)
        ),
        None,
    )
    if matching is None or not matching.cautions:
        return None
    return OrderFinding(
        kind="salvage-monitoring",
        severity="info",
        summary=f"{matching.regimen}: arrange the monitoring it needs",
        facts=matching.cautions,
        bullet_facts=True,
        evidence=matching.evidence,
        option=matching,
    )


def check_orders(
    kb: KnowledgeBase,
    analysis: PatientAnalysis,
    rec: Recommendation,
    drafts: tuple[DraftOrder, ...],
    as_of: date,
) -> tuple[OrderFinding, ...]:
    """Warnings about the drafts; when there is none, at most one monitoring note."""
    if not drafts:
        return ()
    draft_drugs = frozenset().union(*(d.ingredients for d in drafts))
    repeat = _repeat_finding(kb, analysis, rec, draft_drugs)
    warnings = [
        finding
        for finding in (
            repeat,
            _contraindication_finding(kb, analysis, rec, draft_drugs, as_of),
            _recheck_finding(kb, analysis, draft_drugs, as_of),
            None if repeat else _single_drug_finding(kb, analysis, rec, draft_drugs),
            _hbv_pair_finding(kb, analysis, rec, draft_drugs, as_of),
            *_interaction_findings(kb, analysis, draft_drugs, as_of),
        )
        if finding is not None
    ]
    unknown = _not_assessed_finding(analysis)
    if warnings:
        return (*warnings, *((unknown,) if unknown else ()))
    if unknown:
        return (unknown,)  # no monitoring note implying fit when the record is incomplete
    monitoring = _monitoring_finding(kb, rec, draft_drugs)
    return (monitoring,) if monitoring else ()


def check_delay(
    kb: KnowledgeBase, analysis: PatientAnalysis, rec: Recommendation, as_of: date
) -> tuple[OrderFinding, ...]:
    """A failure with options but no new line within the disease's delay threshold; when the
    record could not be read, that is said instead."""
    unknown = _not_assessed_finding(analysis)
    if unknown:
        return (unknown,)
    failure = rec.failure
    if failure is None or not rec.options:
        return ()
    rule = kb.order_checks.delay
    threshold = rule.days_by_disease.get(rec.disease or "", rule.default_days)
    note = None
    cellular = [
        o.regimen
        for o in rec.options
        if any(rule.cellular_classes & kb.drugs[d].classes for d in o.ingredients if d in kb.drugs)
    ]
    if cellular and rule.cellular_days > threshold:
        # a CAR-T referral may be under way: manufacturing and bridging leave no new line
        threshold = rule.cellular_days
        note = (
            f"waits {counted(threshold, 'day')} because {' and '.join(cellular)} may be planned: "
            "referral, cell collection, manufacturing and bridging take weeks"
        )
    started_after = any(
        line.start > failure.when and not line.maintenance and line.disease == failure.disease
        for line in analysis.lines
    )
    waited = (as_of - failure.when).days
    if started_after or waited <= threshold:
        return ()
    # The CAR-T wait cites its trials and the HIV threshold DHHS; the others are local defaults.
    cited = rule.cellular_evidence if note else rule.evidence if rec.disease == "hiv" else ()
    return (
        OrderFinding(
            kind="salvage-delay",
            severity="info",
            summary=(
                f"No new line of therapy recorded since the {failure.kind.replace('-', ' ')} on "
                f"{failure.when.isoformat()} ({factors.age_text(waited).removesuffix(' old')} ago)"
            ),
            facts=(f"{failure.detail}.",),
            failure=failure,
            options_heading="Salvage options that fit this patient:",
            suggest_genotype=rec.disease == "hiv" and failure.kind == "virologic-failure",
            missing_data=rec.missing_data,
            evidence=cited,
            waited_days=waited,
            threshold_days=threshold,
            threshold_note=note,
        ),
    )
