"""Salvage options after a failure: ranked, explained, with exclusions and missing data."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date

from salvage.engine import (
    biomarkers,
    explain,
    failure_age,
    failures,
    fitness,
    pathway_options,
    salvage_context,
    substitution,
)
from salvage.engine.analysis import PatientAnalysis
from salvage.engine.model import Failure, Line
from salvage.engine.salvage_context import SalvageContext, build_context
from salvage.knowledge.model import KnowledgeBase

NO_FAILURE = (
    "no documented treatment failure (refractory disease, relapse, intolerance, "
    "biochemical recurrence or virologic failure): no salvage options are suggested"
)
NOT_ASSESSED = (
    "the absence of a documented treatment failure is not a finding here ({reasons}); no salvage "
    "options are suggested from incomplete data"
)
SETTING_OF_KIND = {
    "procedure": "local-salvage-procedure",
    "test": "test",
    "care": "supportive-care",
}
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
    # Why it is offered and where it ranks (engine/explain.py, option_context.yaml).
    intent: str | None = None  # curative | palliative | supportive | ... ("x or y" when unknown)
    intent_label: str | None = None
    evidence_level: str | None = None  # the strongest level among its evidence
    rank_reasons: tuple[str, ...] = ()
    fits_because: tuple[str, ...] = ()  # patient facts its conditions were checked against
    not_checked: tuple[str, ...] = ()  # its conditions the record could not confirm
    inferred: tuple[str, ...] = ()  # facts it rests on that assume what is not recorded
    # Other evidence for the same regimen that does not describe this patient, with why: the
    # regimen is shown once, ranked on the evidence that fits, not also in the ruled-out list.
    set_aside: tuple[str, ...] = ()


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
    # A prompt to discuss goals of care, with why it appears (option_context.yaml goals_of_care).
    goals_of_care: str | None = None
    # The driving failure is older than the institution's limit: confirm the disease status.
    stale_failure: str | None = None
    goals_of_care_because: tuple[str, ...] = ()
    goals_of_care_evidence: tuple[str, ...] = ()
    inferred: tuple[str, ...] = ()  # facts stated as known that assume what is not recorded
    # The salvage line already answering this failure (running, or awaiting its response
    # assessment, or chemosensitive awaiting consolidation): shown as the current plan.
    current_plan: Line | None = None
    # Steps given after a responding salvage regimen (autologous transplant consolidation): shown
    # after the options, not ranked against them.
    after_salvage: tuple[Option, ...] = ()


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
            f"the {last.kind.replace('-', ' ')} of line {last.line} on {last.when.isoformat()} "
            "was followed by "
            f"remission or improvement on {last.closed_on.isoformat() if last.closed_on else '?'} "
            f"({', '.join(last.closed_by)}): no salvage is indicated now; reassess at progression"
        )
    else:
        why = (
            f"the {last.kind} on {last.when.isoformat()} is of {last.disease}, which is recorded "
            "as in remission or resolved: it does not drive salvage advice now"
        )
    return None, why


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
        why = (
            f"line {line.number} ({line.regimen}), {f.kind} on {f.when.isoformat()} "
            f"({', '.join(f.sources)})"
        )
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
                # a single-drug line is named once ("axicabtagene ciloleucel: line 2, relapse
                # on ..."), not "axicabtagene ciloleucel was part of Axicabtagene ciloleucel"
                alone = line.regimen.casefold() == drug.casefold()
                failed_drugs.setdefault(
                    drug, f"{drug}: {why}" if alone else f"{drug} was part of {why}"
                )
    return failed_drugs, failed_regimens


def recommend(analysis: PatientAnalysis, kb: KnowledgeBase, as_of: date) -> Recommendation:
    """Ranked, explained options for the failure that drives advice now, with the options ruled
    out (and why) and the data that is missing or stale, the failure itself included."""
    rec = _recommend(analysis, kb, as_of)
    stale = failure_age.stale_failure(rec.failure, kb, as_of)
    if stale is None:
        return rec
    return replace(
        rec, stale_failure=stale, missing_data=tuple(dict.fromkeys((stale, *rec.missing_data)))
    )


def _recommend(analysis: PatientAnalysis, kb: KnowledgeBase, as_of: date) -> Recommendation:
    failure, set_aside = _driving_failure(analysis)
    disease = _disease_for(analysis, failure, kb)
    swaps = (
        substitution.swaps(analysis, failure, disease, kb)
        if failure is not None and disease is not None
        else []
    )
    if disease == "hiv" and failure is not None and not swaps and failure.kind != "intolerance":
        # HIV options follow resistance (hiv_regimens builds on this module's types).
        from salvage.engine import hiv_regimens

        return explain.hiv(hiv_regimens.recommend_hiv(analysis, kb, as_of, failure), kb)
    if failure is None or disease is None or disease not in kb.pathways:
        return _without_options(analysis, failure, disease, set_aside, kb)
    domain = "hiv" if disease == "hiv" else "oncology"
    backbone = kb.pathways[disease].backbone_drugs
    judged_as, intolerance_note = _intolerance_plan(analysis, failure, swaps)
    ctx = build_context(
        analysis, judged_as, disease, kb, as_of, what_failed(analysis, domain, backbone)
    )
    if intolerance_note:
        ctx.facts.append(intolerance_note)
    if swaps:
        # each substitution removes its own drug; the drugs it keeps were stopped only because
        # they were in the same order or fixed-dose product
        kept = substitution.not_tolerated(analysis, failure) - {x.drug for x in swaps}
        ctx.failed_drugs = {d: why for d, why in ctx.failed_drugs.items() if d not in kept}
    plan = salvage_context.current_plan(ctx, kb)
    if plan is not None:
        line, statement = plan
        return Recommendation(
            patient=analysis.patient,
            disease=disease,
            failure=failure,
            options=(),
            excluded=(),
            missing_data=tuple(dict.fromkeys(ctx.missing)),
            facts=tuple(ctx.facts),
            statement=statement,
            transplant=ctx.eligibility,
            not_assessed=analysis.not_assessed,
            current_plan=line,
            inferred=explain.inferred_facts(ctx),
        )
    candidates = [s.option for s in swaps] or [
        option
        for option in ctx.pathway.options
        if pathway_options.answers(option, ctx)
        and pathway_options.alternative_needed(option, ctx, kb)
    ]
    judged = [pathway_options.judge(option, ctx, kb) for option in candidates]
    # Options waiting on an untested panel biomarker are named by the testing prompt only.
    verdicts = [v for v in judged if not v.withheld_for]
    chosen = sorted(
        (v for v in verdicts if not v.reasons),
        key=lambda v: pathway_options.rank_key(v, ctx, kb),
    )
    # A regimen one branch keeps is shown once, ranked; the evidence that did not fit is named on
    # it instead of listing the same regimen as ruled out too.
    ranked_names = {v.name for v in chosen}
    excluded = [
        Exclusion(regimen=v.name, option_id=v.option.id, reasons=v.reasons)
        for v in verdicts
        if v.reasons and v.name not in ranked_names
    ]
    other_evidence: dict[str, list[str]] = {}
    for v in verdicts:
        # evidence for another tumour subtype (a biomarker or receptor result that does not fit)
        # is not 'other evidence' for this patient: the ranked entry rests on the subtype that
        # does, so it is not named (specialist review wording 17)
        if v.reasons and v.name in ranked_names and not v.marker_reasons:
            other_evidence.setdefault(v.name, []).extend(v.reasons)
    _after_judging(verdicts, ctx, kb)
    ctx.missing += biomarker_prompts(judged, ctx, kb)
    steps = [v for v in chosen if v.option.follows_salvage]
    chosen = [v for v in chosen if not v.option.follows_salvage]
    options = tuple(
        replace(
            _option(rank, v, ctx, kb),
            set_aside=tuple(dict.fromkeys(other_evidence.get(v.name, ()))),
        )
        for rank, v in enumerate(chosen, start=1)
    )
    # A consolidation step follows a salvage regimen: without one left to respond, none is shown.
    after_salvage = (
        tuple(
            replace(_option(0, v, ctx, kb), rank_reasons=(v.option.follows_salvage or "",))
            for v in steps
        )
        if any(o.kind == "regimen" for o in options)
        else ()
    )
    no_option: str | None = None
    disease_directed = sum(o.kind not in ("care", "trial") for o in options)
    prompt = explain.goals_of_care(ctx, disease_directed, kb)
    if failure.kind == "intolerance" and not options and swaps:
        # The sourced substitution exists but is ruled out (usually: already given since).
        no_option = (
            f"{', '.join(sorted(substitution.not_tolerated(analysis, failure))) or 'a drug'} "
            f"not tolerated in line {failure.line}: the sourced substitution "
            f"({', '.join(s.option.regimen or s.option.id for s in swaps)}) cannot be offered "
            "(see ruled out); salvage options apply at progression"
        )
    elif failure.kind == "intolerance" and not options:
        no_option = (
            f"{', '.join(sorted(substitution.not_tolerated(analysis, failure))) or 'a drug'} "
            f"not tolerated in line {failure.line}: no sourced substitution within the regimen "
            f"or class is in knowledge base {kb.version}; adjust or omit the drug as the regimen "
            "allows (salvage options apply at progression)"
        )
    elif not disease_directed:
        no_option = (
            f"no anticancer option of knowledge base {kb.version} fits this {failure.kind}"
            + (" once exclusions are applied" if excluded else "")
            + ": discuss at a multidisciplinary meeting, including clinical trial eligibility"
        )
    return Recommendation(
        patient=analysis.patient,
        disease=disease,
        failure=failure,
        options=options,
        excluded=tuple(excluded),
        missing_data=tuple(dict.fromkeys(ctx.missing)),
        facts=tuple(ctx.facts),
        statement=no_option,
        transplant=ctx.eligibility,
        not_assessed=analysis.not_assessed,
        goals_of_care=prompt[0] if prompt else None,
        goals_of_care_because=prompt[1] if prompt else (),
        goals_of_care_evidence=(
            tuple(kb.option_context.goals_of_care.evidence) if prompt and kb.option_context else ()
        ),
        inferred=explain.inferred_facts(ctx),
        after_salvage=after_salvage,
    )


def _intolerance_plan(
    analysis: PatientAnalysis, failure: Failure, swaps: list[substitution.Swap]
) -> tuple[Failure, str | None]:
    """Intolerance leads to a sourced substitution within the regimen when one exists; otherwise,
    after a salvage line (line 2 or later), to the options after that line, judged as if it had
    failed (the drugs not tolerated stay excluded). After a first line without a substitution the
    options stay empty with a statement: salvage options are for progression."""
    if failure.kind != "intolerance":
        return failure, None
    stopped = ", ".join(sorted(substitution.not_tolerated(analysis, failure))) or "a drug"
    if swaps:
        return failure, (
            f"{stopped} not tolerated: a substitution within the regimen is offered "
            "(class_rules.yaml substitutions)"
        )
    line = substitution.intolerant_line(analysis, failure)
    if line is not None and line.number >= 2 and line.domain == "oncology":
        return replace(failure, kind="relapse", relapse_interval_months=None), (
            f"{stopped} not tolerated in line {line.number} ({line.regimen}) and no sourced "
            "substitution within the regimen is on file: the options after this line are shown, "
            "without the drugs not tolerated"
        )
    return failure, None


def _without_options(
    analysis: PatientAnalysis,
    failure: Failure | None,
    disease: str | None,
    set_aside: str | None,
    kb: KnowledgeBase,
) -> Recommendation:
    """No failure drives advice (or no pathway exists): say why, never imply 'no failure' from
    incomplete data."""
    missing: tuple[str, ...] = ()
    if failure is None and not analysis.failure_assessable:
        statement = NOT_ASSESSED.format(reasons="; ".join(analysis.not_assessed))
    elif failure is None:
        hiv_said = analysis.statement if disease in (None, "hiv") else None  # PrEP
        statement = set_aside or hiv_said or NO_FAILURE
        pending = failures.unconfirmed_psa_rise(analysis.record, list(analysis.lines), kb)
        if pending and statement == NO_FAILURE:
            statement = f"{NO_FAILURE} yet; {pending}"
            missing = (pending,)
    else:
        statement = f"no salvage pathway in knowledge base {kb.version} for this patient's disease"
    return Recommendation(
        patient=analysis.patient,
        disease=disease,
        failure=failure,
        options=(),
        excluded=(),
        missing_data=missing,
        statement=statement,
        not_assessed=analysis.not_assessed,
    )


def _after_judging(
    verdicts: list[pathway_options.Verdict], ctx: SalvageContext, kb: KnowledgeBase
) -> None:
    """Missing data found while judging the options, and the renal fact when it is known."""
    if any(v.receptor_branch for v in verdicts if not v.reasons):
        ctx.missing.append(
            "no recent ER/PR or HER2 result: the options that need a receptor status are shown "
            "for each status, each labelled; confirm the receptor status"
        )
    renal = sorted(ctx.renal_drugs)
    if any(v.needs_renal for v in verdicts) and ctx.clearance is None:
        ctx.missing.append(
            "no creatinine with weight and age, and no eGFR, on record: creatinine clearance "
            f"unknown, so options with {' or '.join(renal)} are not checked "
            "against renal function and rank after the others"
        )
    elif ctx.clearance is not None:
        ctx.facts.append(ctx.clearance.text)
        # An old value is named once for the patient, not on every option that needs it.
        needing = sorted({d for v in verdicts if v.needs_renal for d in v.renal_rechecks})
        said = any(ctx.clearance.text in m for m in ctx.missing)
        if needing and not said:
            ctx.missing.append(
                f"re-check creatinine clearance before {' or '.join(needing)}: last value "
                f"{ctx.clearance.text}"
            )


def biomarker_prompts(
    verdicts: list[pathway_options.Verdict], ctx: SalvageContext, kb: KnowledgeBase
) -> list[str]:
    """One testing prompt per test that would settle an unknown biomarker, naming the options
    that wait on it (options otherwise fit for this patient only); never a silent 'negative'."""
    markers = kb.biomarkers
    if markers is None:
        return []
    groups: dict[str, tuple[list[str], list[str], list[str]]] = {}  # test -> texts, options, refs
    # A driver found by a panel settles the panel: its other targets are not asked for again.
    settled = {
        markers.biomarkers[m].test
        for m, status in ctx.biomarkers.items()
        if status.result == biomarkers.DETECTED and markers.biomarkers[m].when_unknown == "prompt"
    }
    for marker_id, status in ctx.biomarkers.items():
        if status.result != biomarkers.UNKNOWN or markers.biomarkers[marker_id].test in settled:
            continue
        waiting = list(
            dict.fromkeys(
                v.name for v in verdicts if marker_id in v.option.when.biomarkers and not v.reasons
            )
        )
        if not waiting:
            continue
        entry = markers.biomarkers[marker_id]
        texts, names, refs = groups.setdefault(entry.test, ([], [], []))
        texts.append(status.text)
        names += [w for w in waiting if w not in names]
        refs += [e for e in entry.evidence if e not in refs]
    return [
        f"{'; '.join(texts)}: {test} ({', '.join(refs)}); options that wait on the result: "
        f"{', '.join(names)}; not assumed negative"
        for test, (texts, names, refs) in groups.items()
    ]


def _option(
    rank: int, verdict: pathway_options.Verdict, ctx: SalvageContext, kb: KnowledgeBase
) -> Option:
    option = verdict.option
    regimen = kb.regimens.get(option.regimen or "")
    _, psa_reason = pathway_options.psa_rank(option, ctx)
    setting = option.setting or (
        regimen.setting if regimen else SETTING_OF_KIND.get(option.kind, option.kind)
    )
    why = explain.explain(
        option,
        recheck=verdict.recheck,
        receptor_branch=verdict.receptor_branch,
        needs_renal=verdict.needs_renal,
        ctx=ctx,
        kb=kb,
    )
    return Option(
        rank=rank,
        option_id=option.id,
        regimen=verdict.name,
        kind=option.kind,
        ingredients=tuple(sorted(regimen.components)) if regimen else (),
        setting=setting,
        rationale=(
            " ".join(option.rationale.split()),
            *((f"ranked by PSA: {psa_reason}",) if psa_reason else ()),
            *ctx.facts,
        ),
        cautions=tuple(option.cautions) + verdict.cautions,
        evidence=tuple(option.evidence),
        sources=tuple(dict.fromkeys(ctx.sources)),
        branch="; ".join(
            b
            for b in (
                BRANCH.get(option.when.transplant) if ctx.transplant == "unknown" else None,
                verdict.receptor_branch,
                verdict.biomarker_branch,
            )
            if b
        )
        or None,
        recheck=verdict.recheck,
        intent=why.intent,
        intent_label=why.intent_label,
        evidence_level=why.evidence_level,
        rank_reasons=why.rank_reasons,
        fits_because=why.fits_because,
        not_checked=why.not_checked,
        inferred=why.inferred,
    )
