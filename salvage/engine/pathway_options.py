"""One pathway option against one patient: does it answer this failure, and if so, is it excluded
(and why), which cautions and re-checks go with it, and where does it rank."""

from __future__ import annotations

from dataclasses import dataclass

from salvage.engine import biomarkers, contraindications, option_rules
from salvage.engine.salvage_context import SalvageContext
from salvage.knowledge.model import KnowledgeBase, OptionEntry

RECEPTOR_LABEL = {"hormone_receptor": "hormone-receptor", "her2": "HER2"}


@dataclass(frozen=True, kw_only=True)
class Verdict:
    option: OptionEntry
    name: str
    reasons: tuple[str, ...]  # non-empty: excluded
    cautions: tuple[str, ...]
    recheck: tuple[str, ...]
    needs_renal: bool  # contains a drug with a creatinine-clearance limit
    # "if HER2-positive" etc. when the option needs a receptor status the record does not give
    receptor_branch: str | None
    # "if ESR1 mutation detected" when it needs a biomarker result the record does not give
    biomarker_branch: str | None = None
    unknowns: int = 0  # 1 per kind of unknown condition (receptor, biomarker): ranks later
    # biomarkers tested as a panel and not recorded: the option waits on the testing prompt
    withheld_for: tuple[str, ...] = ()
    # renal-limited drugs whose last clearance is stale or cannot be placed (said once, per patient)
    renal_rechecks: tuple[str, ...] = ()
    # reasons that are only a tumour marker or receptor result this option's trial did not
    # enroll: when another option of the same regimen is ranked, they are not named on it
    marker_reasons: tuple[str, ...] = ()


def answers(option: OptionEntry, ctx: SalvageContext) -> bool:
    """The option is written for this kind and timing of failure, branch and history."""
    when = option.when
    return (
        ctx.failure.kind in when.failure
        and (when.timing == "any" or ctx.timing == when.timing)
        and (when.transplant == "any" or ctx.transplant in ("unknown", when.transplant))
        and (not when.after_procedure or bool(ctx.previous_procedures & set(when.after_procedure)))
        and (not when.after_classes or bool(ctx.received_classes & set(when.after_classes)))
        and (not when.min_failed_lines or ctx.failed_lines >= when.min_failed_lines)
        and (
            not when.min_line
            or (ctx.failed_line is not None and ctx.failed_line.number >= when.min_line)
        )
        and (
            when.max_line is None
            or ctx.failed_line is None
            or ctx.failed_line.number <= when.max_line
        )
        and all(
            c in ctx.ruled_out_classes and (ctx.ruled_out_intervals.get(c) or 0) >= months
            for c, months in when.rechallenge_after_months.items()
        )
    )


def alternative_needed(option: OptionEntry, ctx: SalvageContext, kb: KnowledgeBase) -> bool:
    """An option written as the alternative to drugs (when.alternative_to) is shown only when
    every one of them cannot be used: not tolerated, contraindicated, or limited by an old
    abnormal value that needs a re-check. An unknown renal function does not call for it (the
    cisplatin options then rank last with that statement)."""
    drugs = option.when.alternative_to
    if not drugs:
        return True
    findings = contraindications.drug_findings(frozenset(drugs), ctx.analysis.record, kb, ctx.as_of)
    return all(
        d in ctx.failed_drugs
        or any(
            f.severity == "contraindicated" or (bool(f.recheck) and f.abnormal)
            for f in findings
            if f.drug == d
        )
        for d in drugs
    )


def judge(option: OptionEntry, ctx: SalvageContext, kb: KnowledgeBase) -> Verdict:
    regimen = kb.regimens.get(option.regimen or "")
    name = option.regimen or option.label or option.id
    components = regimen.components if regimen else frozenset()
    # A re-challenge (answered only after a long enough interval) gives the failed drugs of its
    # class again, on purpose.
    rechallenged = frozenset(
        d
        for d in components
        if d in kb.drugs and kb.drugs[d].classes & set(option.when.rechallenge_after_months)
    )
    reasons = _history_reasons(option, name, components, ctx, kb, rechallenged)
    by_class = option_rules.class_fit(option, components, ctx.ruled_out_classes, kb)
    by_history = option_rules.prior_class_fit(option, ctx.received_classes, kb)
    by_naive = option_rules.naive_class_fit(option, ctx.received_by_class, kb)
    by_performance = option_rules.performance_fit(option, ctx.performance, kb)
    # One account of what the patient already had (specialist review: a failure said three
    # times): the class failure names the drug, its line and the failure, and that the evidence
    # is in patients without it, so it replaces the drug's own failure; receipt of a class the
    # trial excluded is said only when neither failure is.
    drug_failures = {ctx.failed_drugs[d] for d in components if d in ctx.failed_drugs}
    if by_class.reasons:
        reasons = [r for r in reasons if r not in drug_failures] + list(by_class.reasons)
    elif not drug_failures & set(reasons):
        reasons += by_naive.reasons
    reasons += [*by_history.reasons, *by_performance.reasons]
    sequencing = option_rules.sequencing_fit(components, ctx.received_drugs, kb)
    findings = contraindications.drug_findings(components, ctx.analysis.record, kb, ctx.as_of)
    reasons += [f.text for f in findings if f.severity == "contraindicated"]
    receptor_reasons, receptor_branch = _receptor_reasons(option, ctx)
    marker_reasons, marker_branches, withheld = _biomarker_reasons(option, ctx, kb)
    # The receptor subtype is the decisive reason when it does not fit: it is named first.
    reasons = [*receptor_reasons, *marker_reasons, *reasons]
    # A substitution within the regimen keeps its other drugs by design: no backbone note.
    reused = (
        []
        if option.setting == "substitution-within-regimen"
        else sorted(components & ctx.pathway.backbone_drugs & ctx.failed_line_drugs)
    )
    own = ctx.pathway.backbone_reasons
    shared = [d for d in reused if d not in own]
    backbone_note = tuple(
        f"reuses {d} from the failed line: {own[d]}" for d in reused if d in own
    ) + (
        (f"reuses {', '.join(shared)} from the failed line: {ctx.pathway.backbone_reason}",)
        if shared and ctx.pathway.backbone_reason
        else ()
    )
    return Verdict(
        option=option,
        name=name,
        reasons=tuple(dict.fromkeys(reasons)),
        # An unknown value that asks for a check before use is said once, as a re-check (and
        # ranks the option later); an unknown without one (an undocumented dose) is a caution.
        cautions=tuple(
            f.option_text or f.text
            for f in findings
            if f.severity == "caution" and (f.basis != "unknown" or f.recheck is None)
        )
        + by_performance.cautions
        + sequencing.cautions
        + _biomarker_cautions(option, ctx)
        + backbone_note,
        recheck=tuple(
            dict.fromkeys([*(f.recheck for f in findings if f.recheck), *by_performance.recheck])
        ),
        needs_renal=bool(components & ctx.renal_drugs),
        renal_rechecks=tuple(
            f.drug
            for f in findings
            if f.drug in ctx.renal_drugs and f.basis in ("stale", "indeterminate")
        ),
        receptor_branch=receptor_branch,
        biomarker_branch=" and ".join(marker_branches) or None,
        unknowns=(1 if receptor_branch else 0) + (1 if marker_branches else 0),
        withheld_for=withheld,
        marker_reasons=tuple(receptor_reasons) + tuple(marker_reasons),
    )


def _history_reasons(
    option: OptionEntry,
    name: str,
    components: frozenset[str],
    ctx: SalvageContext,
    kb: KnowledgeBase,
    rechallenged: frozenset[str] = frozenset(),
) -> list[str]:
    """Reasons from the trial population, the local pathway, and what was already given."""
    reasons: list[str] = []
    if option.when.primary_refractory is False and ctx.failure.primary:
        reasons.append(
            "not for primary refractory disease: the trial behind it excluded it "
            f"({', '.join(option.evidence)})"
        )
    if kb.overlay and option.id in kb.overlay.disable:
        reasons.append(f"disabled by the local pathway of {kb.overlay.institution}")
    if name in ctx.failed_regimens and not (components and components <= rechallenged):
        reasons.append(f"this regimen already failed: {ctx.failed_regimens[name]}")
    given = next(
        (
            ln
            for ln in ctx.started_after
            if ln.regimen == name
            or (components and components <= ctx.given_after)
            or (option.procedure and ln.procedure == option.procedure)
        ),
        None,
    )
    if given is None and option.kind == "test" and ctx.started_after:
        given = ctx.started_after[0]  # a staging test before salvage is moot once salvage began
    if given is not None:
        reasons.append(
            f"already given after this failure: line {given.number} "
            f"({given.regimen}) from {given.start.isoformat()} "
            f"({', '.join(given.sources[:3])})"
        )
    reasons += [
        ctx.failed_drugs[d]
        for d in sorted(components)
        if d in ctx.failed_drugs and d not in rechallenged
    ]
    return reasons


def _receptor_reasons(option: OptionEntry, ctx: SalvageContext) -> tuple[list[str], str | None]:
    """Exclusions by a known receptor status; for an unknown one, the branch the option needs
    ("if HER2-positive"), shown like the transplant branches: never assumed either way."""
    reasons: list[str] = []
    branches: list[str] = []
    for marker, status in (("hormone_receptor", ctx.receptor_status), ("her2", ctx.her2_status)):
        needed = getattr(option.when, marker)
        if needed == "any" or status is None:
            continue
        if status.value == "unknown":
            branches.append(f"if {RECEPTOR_LABEL[marker]}-{needed}")
        elif status.value != needed:
            reasons.append(
                f"needs {RECEPTOR_LABEL[marker]}-{needed} disease: {status.text} "
                f"({', '.join(status.sources)})"
            )
    return reasons, " and ".join(branches) or None


def _biomarker_reasons(
    option: OptionEntry, ctx: SalvageContext, kb: KnowledgeBase
) -> tuple[list[str], list[str], tuple[str, ...]]:
    """A known other biomarker result excludes the option; an unknown one makes it a labelled
    branch ("if ESR1 mutation detected") or, for targets tested as a panel (the NSCLC drivers),
    withholds it behind one testing prompt. Never assumed negative."""
    reasons: list[str] = []
    branches: list[str] = []
    withheld: list[str] = []
    markers = kb.biomarkers
    for marker_id, accepted in option.when.biomarkers.items():
        status = ctx.biomarkers.get(marker_id)
        entry = markers.biomarkers.get(marker_id) if markers else None
        if status is None or entry is None or status.result in accepted:
            continue
        wanted = f"{entry.label} {' or '.join(a.replace('-', ' ') for a in accepted)}"
        if status.result != biomarkers.UNKNOWN:
            ruled_out = set(accepted) == {biomarkers.NOT_DETECTED, biomarkers.UNKNOWN}
            reasons.append(
                (f"not for disease with {entry.label}" if ruled_out else f"needs {wanted}")
                + f": {status.text}"
                + (f" ({', '.join(status.sources)})" if status.sources else "")
            )
        elif entry.when_unknown == "branch":
            branches.append(f"if {wanted}")
        else:
            withheld.append(marker_id)
    return reasons, branches, tuple(withheld)


def _biomarker_cautions(option: OptionEntry, ctx: SalvageContext) -> tuple[str, ...]:
    """The option's cautions that hold for the biomarker's current result (unknown when the
    record gives none)."""
    return tuple(
        c.text
        for c in option.biomarker_cautions
        if (
            ctx.biomarkers[c.biomarker].result
            if c.biomarker in ctx.biomarkers
            else biomarkers.UNKNOWN
        )
        in c.results
    )


def rank_key(verdict: Verdict, ctx: SalvageContext, kb: KnowledgeBase) -> tuple[int, ...]:
    """Palliative care first at poor performance status, otherwise after every anticancer
    option and the clinical-trial prompt (which follows the anticancer options); then the known
    branch before the 'if not a transplant candidate' branch; options resting on a stale or
    unknown value after those that do not; then the pathway (or local) rank."""
    option = verdict.option
    care_first = option_rules.supportive_care_first(ctx.performance, kb)
    # Poor ECOG: care first. A staging test before salvage (PSMA PET) comes before the therapies
    # it informs; supportive care and the clinical-trial prompt end the list.
    if option.kind == "care":
        leads = 0 if care_first else 3
    elif option.kind == "test":
        leads = 1
    else:
        leads = 3 if option.kind == "trial" else 2
    # With candidacy unknown the candidate branch comes first, unless the record leans against
    # transplant (stale exclusion, age above the trials): then the other branch leads.
    later = (
        "eligible"
        if ctx.eligibility is not None and ctx.eligibility.leans_not_candidate
        else "ineligible"
    )
    branch = 1 if ctx.transplant == "unknown" and option.when.transplant == later else 0
    branch += verdict.unknowns
    rerank = kb.overlay.rerank if kb.overlay else {}
    rank = rerank.get(option.id, psa_rank(option, ctx)[0])
    return (leads, branch, 1 if verdict.recheck else 0, rank)


def psa_rank(option: OptionEntry, ctx: SalvageContext) -> tuple[int, str | None]:
    """The option's rank by the PSA at recurrence (pathways.yaml psa_ranks), with the reason."""
    if ctx.psa_ng_ml is None:
        return option.rank, None
    for row in option.psa_ranks:
        if ctx.psa_ng_ml > float(row.above_ng_per_ml):
            return row.rank, row.reason
    return option.rank, None
