"""What the pathway rules need to know about a patient at a failure, gathered once: timing of the
failure, performance status, renal function, transplant candidacy, what already failed and what
was given since. Every fact shown to the clinician is collected here with its sources, and every
missing or stale input is listed (fitness is never assumed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from salvage.engine import (
    anthracycline,
    biomarkers,
    contraindications,
    factors,
    fitness,
    option_rules,
    receptors,
)
from salvage.engine.analysis import PatientAnalysis
from salvage.engine.model import Failure, Line
from salvage.knowledge.model import KnowledgeBase, Pathway


@dataclass(kw_only=True)
class SalvageContext:
    analysis: PatientAnalysis
    failure: Failure
    disease: str
    pathway: Pathway
    domain: str
    as_of: date
    timing: str = "any"  # early | late | any (ZUMA-7 / TRANSFORM boundary)
    transplant: str = "any"  # eligible | ineligible | unknown | any
    eligibility: fitness.Eligibility | None = None
    performance: factors.Fact | None = None
    performance_unreadable: bool = False  # the latest performance status could not be read
    clearance: factors.Fact | None = None
    facts: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    failed_line: Line | None = None
    failed_lines: int = 0
    started_after: list[Line] = field(default_factory=list)
    given_after: frozenset[str] = frozenset()
    failed_drugs: dict[str, str] = field(default_factory=dict)
    failed_regimens: dict[str, str] = field(default_factory=dict)
    ruled_out_classes: dict[str, str] = field(default_factory=dict)
    ruled_out_intervals: dict[str, float | None] = field(default_factory=dict)  # class -> months
    received_classes: frozenset[str] = frozenset()
    # drug -> "line 2 (Pola-BR) from ...": every drug given for the disease, for sequencing cautions
    received_drugs: dict[str, str] = field(default_factory=dict)
    psa_ng_ml: float | None = None  # PSA at a biochemical recurrence, in ng/mL
    received_by_class: dict[str, str] = field(default_factory=dict)  # class -> drug and line
    renal_drugs: frozenset[str] = frozenset()  # drugs with a creatinine-clearance limit
    receptor_status: receptors.Status | None = None
    her2_status: receptors.Status | None = None
    biomarkers: dict[str, biomarkers.BiomarkerStatus] = field(default_factory=dict)

    @property
    def failed_line_drugs(self) -> frozenset[str]:
        return frozenset(self.failed_line.ingredients) if self.failed_line else frozenset()

    @property
    def previous_procedures(self) -> set[str]:
        """The local therapy that failed decides the prostate pathway (prostatectomy vs RT)."""
        line = self.failed_line
        return {line.procedure} if line and line.procedure else set()


def _same_disease(line: Line, failure: Failure) -> bool:
    return failure.disease is None or line.disease is None or line.disease == failure.disease


def build_context(
    analysis: PatientAnalysis,
    failure: Failure,
    disease: str,
    kb: KnowledgeBase,
    as_of: date,
    what_failed: tuple[dict[str, str], dict[str, str]],
) -> SalvageContext:
    domain = "hiv" if disease == "hiv" else "oncology"
    ctx = SalvageContext(
        analysis=analysis,
        failure=failure,
        disease=disease,
        pathway=kb.pathways[disease],
        domain=domain,
        as_of=as_of,
        facts=[failure.detail, *analysis.not_assessed],
        sources=list(failure.sources),
    )
    ctx.failed_line = next(
        (
            ln
            for ln in analysis.lines
            if ln.number == failure.line
            and ln.domain == domain
            and not ln.maintenance
            and _same_disease(ln, failure)
        ),
        None,
    )
    ctx.failed_lines = len(
        {
            f.line
            for f in analysis.failures
            if f.kind == failure.kind and f.disease == failure.disease
        }
    )
    ctx.failed_drugs, ctx.failed_regimens = what_failed
    ctx.ruled_out_classes = option_rules.failed_classes(analysis, failure, kb, domain)
    ctx.ruled_out_intervals = option_rules.failed_class_intervals(analysis, failure, kb, domain)
    ctx.received_classes = option_rules.received_classes(analysis, failure, kb)
    ctx.received_drugs = _received_drugs(analysis, failure)
    ctx.received_by_class = option_rules.received_by_class(analysis, failure, kb)
    ctx.renal_drugs = frozenset(contraindications.renal_drugs(kb))
    ctx.receptor_status = receptors.hormone_receptor(analysis.record, kb)
    ctx.her2_status = receptors.her2(analysis.record, kb)
    _biomarkers(ctx, kb)
    _timing(ctx, kb)
    _after_failed_salvage(ctx, kb)
    _performance(ctx, kb)
    _eligibility(ctx, kb)
    _anthracycline(ctx, kb)
    _given_after(ctx)
    _psa(ctx)
    ctx.clearance = factors.creatinine_clearance(analysis.record, kb, as_of)
    return ctx


def _received_drugs(analysis: PatientAnalysis, failure: Failure) -> dict[str, str]:
    """Every drug given for the failing disease, with the first line that gave it."""
    found: dict[str, str] = {}
    for line in sorted(analysis.lines, key=lambda ln: ln.start):
        if not _same_disease(line, failure):
            continue
        for drug in sorted(line.ingredients):
            found.setdefault(
                drug, f"line {line.number} ({line.regimen}) from {line.start.isoformat()}"
            )
    return found


def _biomarkers(ctx: SalvageContext, kb: KnowledgeBase) -> None:
    """Tumour biomarkers of this disease; a HER2 level (IHC 1+) also settles HER2 status when no
    coded positive/negative answer does."""
    ctx.biomarkers = biomarkers.statuses(ctx.analysis.record, kb, ctx.disease, ctx.failure.when)
    for status in ctx.biomarkers.values():
        implied = biomarkers.her2_receptor(status, kb)
        if implied and (ctx.her2_status is None or ctx.her2_status.value == "unknown"):
            ctx.her2_status = receptors.Status(implied, status.sources, status.text)
    known = [s.text for s in ctx.biomarkers.values() if s.result != biomarkers.UNKNOWN]
    if known:
        ctx.facts.append("biomarkers: " + "; ".join(known))
        ctx.sources += [
            x
            for s in ctx.biomarkers.values()
            if s.result != biomarkers.UNKNOWN
            for x in s.sources
            if x not in ctx.sources
        ]


def _timing(ctx: SalvageContext, kb: KnowledgeBase) -> None:
    """Early = refractory, or relapse within early_relapse_months (ZUMA-7, TRANSFORM)."""
    failure = ctx.failure
    early_months = float(kb.failures.oncology.early_relapse_months)
    if failure.kind == "relapse" and failure.relapse_interval_months is not None:
        ctx.timing = "early" if failure.relapse_interval_months <= early_months else "late"
        ctx.facts.append(
            f"relapse {failure.relapse_interval_months} months after the line ended: "
            f"{'within' if ctx.timing == 'early' else 'more than'} {early_months:g} months"
        )
    elif failure.kind == "refractory":
        ctx.timing = "early"
        if failure.primary:
            ctx.facts.append("primary refractory: the first line never controlled the disease")


def _after_failed_salvage(ctx: SalvageContext, kb: KnowledgeBase) -> None:
    """A failure of salvage chemotherapy in DLBCL or Hodgkin lymphoma is chemorefractory disease:
    the options for early or refractory failure apply, never another salvage of the same kind
    (line_rules.yaml response.salvage_diseases; CORAL: poor outcome after failed salvage)."""
    rules = kb.response_rules
    line = ctx.failed_line
    regimen = kb.regimens.get(line.regimen) if line else None
    if (
        rules is None
        or line is None
        or regimen is None
        or regimen.setting != "salvage"
        or ctx.disease not in rules.salvage_diseases
        or ctx.timing == "early"
    ):
        return
    ctx.timing = "early"
    ctx.facts.append(
        f"{ctx.failure.kind.replace('-', ' ')} after salvage therapy "
        f"(line {line.number}, {line.regimen}): "
        "chemorefractory disease, so the options for refractory disease apply"
    )


def _performance(ctx: SalvageContext, kb: KnowledgeBase) -> None:
    record = ctx.analysis.record
    ctx.performance = factors.ecog(record, kb, ctx.as_of)
    if ctx.domain != "oncology":
        return
    odd = factors.unreadable_performance(record, ctx.as_of)
    if odd is not None:
        # The latest entry is unreadable ("ECOG 1-2", "poor PS"): an older readable score is not
        # used in its place, so no option is shown as fitting a performance status it may not.
        ctx.performance = None
        ctx.performance_unreadable = True
        ctx.missing.append(
            f"performance status recorded as '{odd.raw}' on {odd.when.isoformat()} "
            f"({odd.source}) cannot be read: record it as an ECOG grade or a Karnofsky score; "
            "fitness is not assumed"
        )
    elif ctx.performance is None:
        ctx.missing.append(
            "no ECOG or Karnofsky performance status on record: fitness for the options is "
            "unknown, not assumed"
        )
    else:
        ctx.facts.append(ctx.performance.text)
        ctx.sources += ctx.performance.sources
        if ctx.performance.stale:
            ctx.missing.append(
                f"re-check performance status before use (last value {ctx.performance.text})"
            )


def _eligibility(ctx: SalvageContext, kb: KnowledgeBase) -> None:
    if ctx.domain != "oncology":
        return
    eligibility = fitness.transplant(ctx.analysis.record, kb, ctx.disease, ctx.as_of)
    ctx.eligibility = eligibility
    if eligibility is None:
        return
    ctx.transplant = {"candidate": "eligible", "not-candidate": "ineligible"}.get(
        eligibility.status, "unknown"
    )
    ctx.facts.append(eligibility.summary())
    ctx.sources += [x for x in eligibility.sources if x not in ctx.sources]
    if eligibility.status == "unknown":
        ctx.missing.append(
            "transplant eligibility unknown ("
            + "; ".join(eligibility.reasons)
            + "): options for both branches are shown, each labelled"
        )
    ctx.missing += [
        f"{m} not recorded: needed for transplant eligibility"
        for m in eligibility.missing
        if "ECOG" not in m
    ]
    ctx.missing += [r for r in eligibility.rechecks if r not in ctx.missing]
    if eligibility.not_checked and eligibility.status != "not-candidate":
        ctx.missing.append(
            "not checked for transplant eligibility (no value on record): "
            + ", ".join(eligibility.not_checked)
        )


def _anthracycline(ctx: SalvageContext, kb: KnowledgeBase) -> None:
    rule = kb.patient_rules.anthracycline
    doses = anthracycline.cumulative(ctx.analysis.record, kb, ctx.as_of)
    if doses is not None and ctx.domain == "oncology" and doses.at_least:
        # Missing data, not zero: the total is unknown, or a lower bound (issue 12 item 10).
        ctx.missing.append(
            anthracycline.describe(doses, kb)
            + ": document the doses (with height and weight) before another anthracycline"
        )
    total = factors.cumulative_anthracycline(ctx.analysis.record, kb, ctx.as_of)
    caution_level = float(rule.caution_cumulative_doxorubicin_mg_m2)
    if total is not None and total.value >= caution_level:
        ctx.facts.append(
            f"{total.text}: at or above the caution level of {caution_level:g} mg/m2 "
            f"({contraindications.cite(kb, rule.evidence)})"
        )
        ctx.sources += [x for x in total.sources[:3] if x not in ctx.sources]


def _psa(ctx: SalvageContext) -> None:
    """The PSA that confirmed a biochemical recurrence, in ng/mL: it ranks the salvage options
    (RTOG 9601 secondary analysis, Dess 2020)."""
    if ctx.failure.kind != "biochemical-recurrence":
        return
    by_source = {
        m.source: m
        for m in ctx.analysis.record.measurements
        if m.kind == "psa" and m.value is not None
    }
    confirming = [by_source[s] for s in ctx.failure.sources if s in by_source]
    if confirming:
        last = max(confirming, key=lambda m: m.when)
        ctx.psa_ng_ml = last.value
        ctx.facts.append(
            f"PSA at recurrence {last.value:g} ng/mL on {last.when.isoformat()} ({last.source})"
        )


def _given_after(ctx: SalvageContext) -> None:
    """Lines begun after the failure are the salvage already chosen: not offered again as new."""
    failure = ctx.failure
    ctx.started_after = [
        ln
        for ln in ctx.analysis.lines
        if ln.domain == ctx.domain
        and not ln.maintenance
        and ln.start > failure.when
        and _same_disease(ln, failure)
    ]
    ctx.given_after = frozenset(d for ln in ctx.started_after for d in ln.ingredients)
    if ctx.started_after:
        ctx.facts.append(
            "after this failure, "
            + "; ".join(
                f"line {ln.number} ({ln.regimen}) started {ln.start.isoformat()}"
                for ln in ctx.started_after
            )
        )


def current_plan(ctx: SalvageContext, kb: KnowledgeBase) -> tuple[Line, str] | None:
    """The latest line begun after the failure answers it, unless a later failure followed it
    (then that failure drives advice). While it runs, or until its response is assessed, no new
    line is offered; after salvage chemotherapy in DLBCL or Hodgkin a chemosensitive response
    leads to consolidation with autologous transplant, a chemorefractory one to the options for
    refractory disease (line_rules.yaml response: Lugano 2014, CORAL, PARMA)."""
    if ctx.domain != "oncology" or not ctx.started_after:
        return None
    line = max(ctx.started_after, key=lambda ln: ln.start)
    rules = kb.response_rules
    regimen = kb.regimens.get(line.regimen)
    cycle = timedelta(
        days=max(
            kb.cycle_days(line.regimen),
            kb.cycle_days(line.consolidation_regimen) if line.consolidation_regimen else 0,
        )
    )
    running = line.end is None or ctx.as_of - line.last_active <= cycle
    what = f"line {line.number} ({line.regimen}) from {line.start.isoformat()}"
    if line.best_response in ("stable", "progression"):
        # Chemorefractory: the options for refractory disease apply (ZUMA-7 enrolled it).
        ctx.timing = "early"
        ctx.facts.append(
            f"best response to {what}: {line.best_response} "
            f"({', '.join(line.response_sources)}): chemorefractory disease"
        )
        return None
    if running and line.best_response == "unknown":
        return line, (
            f"salvage line in progress: assess response ({what}); no new line is offered until "
            "the response is known or the disease progresses"
        )
    sensitive = rules is not None and line.best_response in rules.chemosensitive
    if (
        sensitive
        and rules is not None
        and ctx.disease in rules.salvage_diseases
        and regimen is not None
        and regimen.setting == "salvage"
        and line.consolidation is None
        and ctx.transplant != "ineligible"
    ):
        return line, (
            f"{rules.sensitive_next} ({line.best_response} response to {what}: "
            f"{', '.join(line.response_sources)})"
        )
    if line.best_response == "complete":
        return line, (
            f"{what} answered this {ctx.failure.kind.replace('-', ' ')} with a complete response "
            f"({', '.join(line.response_sources)}): no new line is indicated now; reassess at "
            "progression"
        )
    return None
