"""HIV-1 options after virologic failure, conditioned on resistance (DHHS adult ARV guidelines).

Options and thresholds are in knowledge/data/hiv.yaml. In order:
- a genotype (with integrase when the failing regimen has an integrase inhibitor) when none was
  taken on the failing regimen or within the window after stopping it;
- dolutegravir + recycled tenofovir + XTC (NADIA), boosted darunavir + 2 NRTIs, DRV/r + DTG: kept
  unless an anchor drug has reduced activity, or a class taken before was never genotyped, or the
  option cannot reach its number of fully active drugs;
- fostemsavir, ibalizumab, lenacapavir only with documented multiclass resistance, only when no
  standard regimen has two fully active drugs, and always with named fully active companions:
  these are prompts to construct a regimen ("construct"), never a one-drug order.
With hepatitis B every regimen keeps tenofovir with emtricitabine or lamivudine, in the form renal
function allows. Each option counts its fully active drugs and says which are unknown.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta

from salvage.engine import (
    contraindications,
    hiv_adherence,
    hiv_backbone,
    hiv_summary,
    resistance,
)
from salvage.engine.analysis import PatientAnalysis
from salvage.engine.model import Failure, Line
from salvage.engine.recommend import Exclusion, Option, Recommendation
from salvage.engine.resistance import DrugActivity, Susceptibility
from salvage.knowledge.hiv_model import HivOptionRule, HivSetting
from salvage.knowledge.model import KnowledgeBase


@dataclass(frozen=True, kw_only=True)
class HivOption(Option):
    """An HIV option with the activity of each of its antiviral drugs."""

    activity: tuple[DrugActivity, ...] = ()
    fully_active: int = 0
    unknown_activity: int = 0
    min_drugs: int = 0  # a suggestion built from this option must create at least this many drugs
    construct: bool = False  # optimised background: a prompt to build a regimen, never an order
    keeps_hbv_pair: bool = False
    companions: tuple[str, ...] = ()  # the fully active drugs an optimised background names
    # What every output prints: the count of fully active drugs with each drug named, the
    # companions of a construct, and why fewer than two fully active drugs is (or is not) enough.
    summary: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class _Context:
    kb: KnowledgeBase
    analysis: PatientAnalysis
    as_of: date
    susceptibility: Susceptibility
    hbv: hiv_backbone.Hbv | None
    backbone: hiv_backbone.Backbone
    taken_classes: dict[str, int]  # class -> first line number that contained it
    failing_line: int | None  # the number of the failing line
    ever_taken: frozenset[str]  # antiretroviral classes in any exposure, PrEP included
    intolerant: dict[str, str]  # drug -> why
    failing_classes: frozenset[str]  # drug classes of the failing regimen
    facts: tuple[str, ...]
    sources: tuple[str, ...]


def _failing_line(analysis: PatientAnalysis, failure: Failure) -> Line | None:
    return next(
        (
            ln
            for ln in analysis.lines
            if ln.number == failure.line and ln.domain == "hiv" and not ln.maintenance
        ),
        None,
    )


def _taken_classes(analysis: PatientAnalysis, kb: KnowledgeBase) -> dict[str, int]:
    taken: dict[str, int] = {}
    for line in sorted(analysis.lines, key=lambda ln: ln.number):
        if line.domain != "hiv":
            continue
        for drug in line.ingredients:
            for cls in kb.drugs[drug].classes if drug in kb.drugs else ():
                taken.setdefault(cls, line.number)
    return taken


def _intolerant(analysis: PatientAnalysis) -> dict[str, str]:
    found: dict[str, str] = {}
    for f in analysis.failures:
        if f.kind != "intolerance":
            continue
        for e in analysis.record.exposures:
            if e.source in f.sources:
                for drug in e.ingredients:
                    found[drug] = f"{drug} not tolerated on {f.when.isoformat()} ({e.source})"
    return found


def _activity(ctx: _Context, drug: str) -> DrugActivity:
    act = ctx.susceptibility.drugs.get(drug) or DrugActivity(
        drug=drug, level=resistance.UNKNOWN, mutations=(), sources=(), basis="not assessed"
    )
    if act.level == resistance.UNKNOWN and _presumed_active(ctx, drug):
        # Integrase-naive: DTG/BIC need no integrase genotype (DHHS, drug-resistance testing).
        return replace(act, level=resistance.ACTIVE, basis=ctx.kb.hiv.presumed_active.label)
    return act


def _presumed_active(ctx: _Context, drug: str) -> bool:
    rule = ctx.kb.hiv.presumed_active
    sequenced = any(rule.gene in t.genes for t in ctx.susceptibility.tests)
    return drug in rule.drugs and rule.class_never_taken not in ctx.ever_taken and not sequenced


def _presumed_evidence(ctx: _Context, acts: list[DrugActivity]) -> tuple[str, ...]:
    rule = ctx.kb.hiv.presumed_active
    return rule.evidence if any(a.basis == rule.label for a in acts) else ()


def _ever_taken(analysis: PatientAnalysis, kb: KnowledgeBase) -> frozenset[str]:
    return frozenset(
        c
        for e in analysis.record.exposures
        for d in e.ingredients
        if d in kb.drugs and kb.drugs[d].role == "antiretroviral"
        for c in kb.drugs[d].classes
    )


def _antiviral(ctx: _Context, drugs: list[str]) -> list[str]:
    booster = ctx.kb.hiv.booster_class
    return [d for d in drugs if d in ctx.kb.drugs and booster not in ctx.kb.drugs[d].classes]


def _applies(ctx: _Context, setting: HivSetting | None) -> bool:
    return setting is not None and setting.applies(
        ctx.failing_classes, frozenset(ctx.taken_classes), ctx.failing_line
    )


def _rationale(ctx: _Context, rule: HivOptionRule) -> str:
    """The wording that fits this patient's setting (hiv.yaml rationale_variants), else the
    general one: the NADIA wording only after a first-line NNRTI failure, integrase-naive."""
    return next(
        (text for when, text in rule.rationale_variants if _applies(ctx, when)), rule.rationale
    )


def _hbv_caution(ctx: _Context, drugs: list[str]) -> tuple[str, ...]:
    if ctx.hbv is None:
        return ()
    pair = [d for d in drugs if d in ctx.kb.hiv.hbv_tenofovir | ctx.kb.hiv.hbv_partners]
    what = "Possible hepatitis B" if ctx.hbv.possible else "Hepatitis B co-infection"
    return (
        f"{what}, {ctx.hbv.text}: this regimen keeps {' + '.join(pair)}, the "
        "HBV-active pair; never stop them (risk of hepatitis flare)",
    )


def _with_backbone(ctx: _Context, rule: HivOptionRule) -> tuple[list[str], str | None]:
    """The option's drugs with the NRTI backbone (or the HBV pair), or why it cannot have one."""
    drugs = list(rule.anchor)
    needs_pair = rule.nrti_backbone or ctx.hbv is not None
    if not needs_pair:
        return drugs, None
    if ctx.backbone.tenofovir is None:
        return drugs, ctx.backbone.reason
    drugs += [d for d in ctx.backbone.drugs if d not in drugs]
    return drugs, None


def _reasons(ctx: _Context, drugs: list[str], anchors: list[str]) -> list[str]:
    reasons: list[str] = []
    for drug in anchors:
        act = _activity(ctx, drug)
        if act.level in (resistance.PARTIAL, resistance.INACTIVE):
            reasons.append(f"{act.text}: this option needs it fully active")
        elif act.level == resistance.UNKNOWN:
            taken = [
                (cls, ctx.taken_classes[cls])
                for cls in sorted(ctx.kb.drugs[drug].classes)
                if cls in ctx.taken_classes
            ]
            if taken:
                cls, line = taken[0]
                reasons.append(
                    f"{drug}: activity unknown ({act.basis}) although {cls} drugs were taken "
                    f"in line {line}: genotype that gene before relying on it"
                )
    reasons += [ctx.intolerant[d] for d in drugs if d in ctx.intolerant]
    reasons += [
        why
        for _, why in contraindications.drug_contraindications(
            frozenset(drugs), ctx.analysis.record, ctx.kb, ctx.as_of
        )
    ]
    return reasons


def _regimen_option(ctx: _Context, rule: HivOptionRule) -> HivOption | Exclusion:
    drugs, problem = _with_backbone(ctx, rule)
    if problem is not None:
        return Exclusion(regimen=rule.label, option_id=rule.id, reasons=(problem,))
    antiviral = _antiviral(ctx, drugs)
    reasons = _reasons(ctx, drugs, _antiviral(ctx, list(rule.anchor)))
    acts = [_activity(ctx, d) for d in antiviral]
    fully, unknown, sentence = hiv_summary.count_sentence(acts)
    two = ctx.kb.order_checks.single_active_drug.min_new_active_drugs
    needed = rule.min_fully_active
    recycled = _applies(ctx, rule.recycled_backbone_when)
    if rule.recycled_backbone_when is not None and not recycled:
        needed = max(needed, two)
    if fully + unknown < needed:
        reasons.append(f"{sentence}; this option needs at least {needed} fully active")
    if reasons:
        return Exclusion(regimen=rule.label, option_id=rule.id, reasons=tuple(reasons))
    cautions = list(rule.cautions) + list(_hbv_caution(ctx, drugs))
    if ctx.backbone.tenofovir in drugs:
        cautions.append(f"Tenofovir form: {ctx.backbone.reason}")
    # Offered on unknown activity only: the choice must wait for a genotype (DHHS).
    recheck = (ctx.kb.hiv.no_active_drug_recheck,) if fully == 0 else ()
    return HivOption(
        rank=rule.rank,
        option_id=rule.id,
        regimen=rule.label,
        kind="regimen",
        ingredients=tuple(sorted(drugs)),
        setting="salvage",
        rationale=(_rationale(ctx, rule), sentence, *ctx.facts),
        cautions=tuple(cautions),
        recheck=recheck,
        evidence=tuple(
            dict.fromkeys(
                rule.evidence + ctx.susceptibility.evidence + _presumed_evidence(ctx, acts)
            )
        ),
        sources=ctx.sources,
        activity=tuple(acts),
        fully_active=fully,
        unknown_activity=unknown,
        min_drugs=len(drugs),
        keeps_hbv_pair=hiv_backbone.has_hbv_pair(set(drugs), ctx.kb),
        summary=hiv_summary.summary(
            acts,
            [],
            two,
            rule.recycled_backbone_note if recycled else None,
            rule.min_fully_active,
        ),
    )


def _construct_option(
    ctx: _Context, rule: HivOptionRule, standard: list[HivOption]
) -> HivOption | Exclusion:
    hiv = ctx.kb.hiv
    reduced = ctx.susceptibility.reduced_classes(ctx.kb, hiv.multiclass_classes)
    reasons: list[str] = []
    if len(reduced) < hiv.multiclass_min:
        reasons.append(
            f"needs documented resistance in at least {hiv.multiclass_min} of "
            f"{', '.join(sorted(hiv.multiclass_classes))}; reduced activity found in: "
            f"{', '.join(reduced) or 'none'}"
        )
    if reasons:  # without documented multiclass resistance nothing else matters
        return Exclusion(regimen=rule.label, option_id=rule.id, reasons=tuple(reasons))
    two_active = [o for o in standard if o.fully_active >= 2]
    if two_active:
        reasons.append(
            f"a standard regimen with {two_active[0].fully_active} fully active drugs fits: "
            f"{two_active[0].regimen}"
        )
    for drug in rule.anchor:
        act = _activity(ctx, drug)
        if act.level in (resistance.PARTIAL, resistance.INACTIVE):
            reasons.append(f"{act.text}")
    companions: list[str] = []
    for d in hiv.companion_preference:  # at most one drug per class, at most two drugs
        classes = ctx.kb.drugs[d].classes
        if (
            len(companions) < 2
            and d not in rule.anchor
            and d not in ctx.intolerant
            and _activity(ctx, d).level == resistance.ACTIVE
            and not any(classes & ctx.kb.drugs[c].classes for c in companions)
        ):
            companions.append(d)
    if not companions:
        reasons.append(
            "no fully active companion drug is documented: an optimised background needs at "
            "least one, preferably two (DHHS)"
        )
    if reasons:
        return Exclusion(regimen=rule.label, option_id=rule.id, reasons=tuple(reasons))
    drugs = list(rule.anchor) + companions
    drugs += [hiv.boosters[d] for d in companions if d in hiv.boosters]
    if ctx.hbv is not None and ctx.backbone.tenofovir is not None:
        drugs += [d for d in ctx.backbone.drugs if d not in drugs]
    acts = [_activity(ctx, d) for d in _antiviral(ctx, drugs)]
    fully, unknown, sentence = hiv_summary.count_sentence(acts)
    agent = "; ".join(_activity(ctx, d).text for d in rule.anchor)
    prompt = (
        f"Construct the regimen: {' + '.join(rule.anchor)} with the fully active companions "
        f"{', '.join(companions)} (multiclass resistance: {', '.join(reduced)}); agent: {agent}"
    )
    return HivOption(
        rank=rule.rank,
        option_id=rule.id,
        regimen=rule.label,
        kind="construct",
        ingredients=tuple(sorted(drugs)),
        setting="salvage",
        rationale=(_rationale(ctx, rule), prompt, sentence, *ctx.facts),
        cautions=tuple(rule.cautions) + _hbv_caution(ctx, drugs),
        evidence=tuple(
            dict.fromkeys(rule.evidence + hiv.multiclass_evidence + _presumed_evidence(ctx, acts))
        ),
        sources=ctx.sources,
        activity=tuple(acts),
        fully_active=fully,
        unknown_activity=unknown,
        min_drugs=len(drugs),
        construct=True,
        keeps_hbv_pair=hiv_backbone.has_hbv_pair(set(drugs), ctx.kb),
        companions=tuple(companions),
        summary=hiv_summary.summary(
            acts, companions, ctx.kb.order_checks.single_active_drug.min_new_active_drugs
        ),
    )


def _no_resistance(susceptibility: Susceptibility, kb: KnowledgeBase, failing: Line) -> bool:
    """Every antiviral drug of the failing regimen is fully active on the genotype."""
    booster = kb.hiv.booster_class
    drugs = [d for d in failing.ingredients if d in kb.drugs and booster not in kb.drugs[d].classes]
    return bool(drugs) and all(susceptibility.level(d) == resistance.ACTIVE for d in drugs)


def _continue_option(
    ctx: _Context, rule: HivOptionRule, failing: Line, found: hiv_adherence.Causes
) -> HivOption:
    """Fix adherence or the interaction and keep the regimen: a plan, not an order."""
    genotype = (
        f"the genotype shows no resistance to {', '.join(failing.ingredients)} (the failing "
        f"{failing.regimen})"
    )
    return HivOption(
        rank=rule.rank,
        option_id=rule.id,
        regimen=f"{rule.label} ({failing.regimen})",
        kind="continue",
        ingredients=(),
        setting="continue",
        rationale=(rule.rationale, genotype, *found.adherence, *found.interactions, *ctx.facts),
        cautions=rule.cautions,
        evidence=tuple(dict.fromkeys(rule.evidence + ctx.kb.hiv.adherence_evidence)),
        sources=tuple(dict.fromkeys(ctx.sources + found.sources)),
        summary=(
            f"Correctable cause: {'; '.join((*found.adherence, *found.interactions))}",
            f"No switch needed now: {genotype}",
        ),
    )


def _genotype_state(
    ctx_tests: Susceptibility, kb: KnowledgeBase, failing: Line | None
) -> tuple[bool, bool, list[str]]:
    """(genotype needed, integrase needed, facts about the genotypes in the record)."""
    hiv = kb.hiv
    integrase_genes = {
        g.name for g in hiv.reading.genes.values() if g.classes & hiv.integrase_classes
    }
    failing_classes = {
        c
        for d in (failing.ingredients if failing else ())
        if d in kb.drugs
        for c in kb.drugs[d].classes
    }
    needs_integrase = bool(failing_classes & hiv.integrase_classes)
    recent = []
    if failing is not None:
        last = failing.end + timedelta(days=hiv.genotype_window_days) if failing.end else None
        recent = [
            t
            for t in ctx_tests.tests
            if t.when is not None and t.when >= failing.start and (last is None or t.when <= last)
        ]
    facts = [t.label for t in ctx_tests.tests]
    if len(ctx_tests.tests) > len(recent) and ctx_tests.tests:
        facts.append("resistance on every earlier genotype still counts (archived resistance)")
    integrase_done = any(t.genes & integrase_genes for t in recent)
    if needs_integrase and failing is not None:
        drugs = [
            d
            for d in failing.ingredients
            if d in kb.drugs and kb.drugs[d].classes & hiv.integrase_classes
        ]
        facts.append(
            f"the failing regimen {failing.regimen} contains {', '.join(drugs)}: an integrase "
            + ("genotype is in the record" if integrase_done else "genotype is needed (DHHS)")
        )
    needed = not recent or (needs_integrase and not integrase_done)
    return needed, needs_integrase, facts


def recommend_hiv(
    analysis: PatientAnalysis, kb: KnowledgeBase, as_of: date, failure: Failure
) -> Recommendation:
    """Resistance-conditioned HIV options for the most recent failure."""
    hiv = kb.hiv
    record = analysis.record
    susceptibility = resistance.assess(record, kb)
    failing = _failing_line(analysis, failure)
    needed, needs_integrase, genotype_facts = _genotype_state(susceptibility, kb, failing)
    hbv = hiv_backbone.hbv_status(record, kb)
    bb = hiv_backbone.backbone(record, kb, as_of)
    facts = [failure.detail, *genotype_facts]
    missing = list(susceptibility.unreadable)
    negative = hiv_backbone.hbsag_negative(record, kb) if hbv is None else None
    if hbv is not None:
        facts.append(f"{hbv.text}: every option keeps the HBV-active pair")
    elif negative is not None:
        facts.append(negative)
    else:
        missing.append(
            "no hepatitis B diagnosis or HBsAg result in the record: confirm HBV status before "
            f"changing {', '.join(sorted(hiv.hbv_tenofovir | hiv.hbv_partners))}"
        )
    if bb.renal_unknown:
        missing.append(bb.reason)
    else:
        facts.append(bb.reason)
    if not susceptibility.tests:
        # A report the EHR did not let us read (a gap) may exist: the record is not said to have
        # no genotype, only that none could be read.
        missing.append(hiv.no_genotype_missing)
    found = hiv_adherence.causes(record, kb, failing, failure) if failing else None
    correctable = found is not None and found.any
    unresisted = failing is not None and not needed and _no_resistance(susceptibility, kb, failing)
    if found is not None and correctable:
        facts += [*found.adherence, *found.interactions]
        if not unresisted:
            facts.append(
                "a correctable cause is recorded, but the genotype on the failing regimen is "
                + ("missing" if needed else "not free of resistance to it")
                + ": address it, and choose the regimen by the genotype"
            )
    ctx = _Context(
        kb=kb,
        analysis=analysis,
        as_of=as_of,
        susceptibility=susceptibility,
        hbv=hbv,
        backbone=bb,
        taken_classes=_taken_classes(analysis, kb),
        failing_line=failing.number if failing else None,
        ever_taken=_ever_taken(analysis, kb),
        intolerant=_intolerant(analysis),
        failing_classes=frozenset(
            c
            for d in (failing.ingredients if failing else ())
            if d in kb.drugs
            for c in kb.drugs[d].classes
        ),
        facts=tuple(facts),
        sources=tuple(
            dict.fromkeys(
                [
                    *failure.sources,
                    *(s for t in susceptibility.tests for s in t.sources),
                    *bb.sources,
                    *([hbv.source] if hbv else []),
                ]
            )
        ),
    )
    overlay = kb.overlay
    disabled = overlay.disable if overlay else frozenset()
    rerank: dict[str, int] = overlay.rerank if overlay else {}
    chosen: list[HivOption] = []
    excluded: list[Exclusion] = []
    rules = sorted(hiv.options, key=lambda r: r.rank)
    for rule in rules:
        if rule.id in disabled:
            excluded.append(
                Exclusion(
                    regimen=rule.label,
                    option_id=rule.id,
                    reasons=(
                        "disabled by the local pathway of "
                        f"{overlay.institution if overlay else 'the institution'}",
                    ),
                )
            )
            continue
        if rule.kind == "continue":
            if correctable and unresisted and found is not None and failing is not None:
                chosen.append(_continue_option(ctx, rule, failing, found))
            continue
        if rule.kind == "test":
            if needed:
                chosen.append(
                    HivOption(
                        rank=rule.rank,
                        option_id=rule.id,
                        regimen=(rule.label_integrase or rule.label)
                        if needs_integrase
                        else rule.label,
                        kind="test",
                        ingredients=(),
                        setting="test",
                        rationale=(rule.rationale, *ctx.facts),
                        cautions=rule.cautions,
                        evidence=rule.evidence,
                        sources=ctx.sources,
                    )
                )
            continue
        if rule.kind == "regimen":
            result = _regimen_option(ctx, rule)
        else:
            result = _construct_option(ctx, rule, [o for o in chosen if o.kind == "regimen"])
        if isinstance(result, HivOption):
            chosen.append(result)
        else:
            excluded.append(result)
    ordered = sorted(chosen, key=lambda o: rerank.get(o.option_id, o.rank))
    options = tuple(replace(o, rank=rank) for rank, o in enumerate(ordered, start=1))
    statement = None
    if not options:
        statement = (
            f"no option of knowledge base {kb.version} fits this virologic failure once "
            "exclusions are applied: discuss with an HIV resistance specialist"
        )
    return Recommendation(
        patient=analysis.patient,
        disease="hiv",
        failure=failure,
        options=options,
        excluded=tuple(excluded),
        missing_data=tuple(missing),
        facts=tuple(facts),
        statement=statement,
    )
