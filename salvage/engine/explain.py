"""Why an option is where it is: its intent, the level of its evidence, the reasons for its rank,
the patient facts it rests on, what could not be checked, and the facts inferred from missing
data. Intents, levels and the goals-of-care rule are data (knowledge/data/option_context.yaml);
this module only applies them and words the result."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from salvage.engine import option_rules
from salvage.engine.salvage_context import SalvageContext
from salvage.engine.wording import counted
from salvage.knowledge.model import KnowledgeBase, OptionEntry

if TYPE_CHECKING:  # recommend imports this module; the types only are needed here
    from salvage.engine.recommend import Recommendation

BRANCH_WORDS = {"eligible": "transplant candidate", "ineligible": "not a transplant candidate"}


@dataclass(frozen=True, kw_only=True, slots=True)
class Explanation:
    intent: str | None
    intent_label: str | None
    evidence_level: str | None
    rank_reasons: tuple[str, ...]
    fits_because: tuple[str, ...]
    not_checked: tuple[str, ...]
    inferred: tuple[str, ...]  # facts of the rationale that rest on an assumption


def evidence_level(keys: tuple[str, ...] | list[str], kb: KnowledgeBase) -> str | None:
    """The strongest level among the option's evidence (option_context.yaml evidence_levels)."""
    order = kb.option_context.evidence_levels if kb.option_context else []
    levels = [kb.evidence[k].level for k in keys if k in kb.evidence and kb.evidence[k].level]
    known = [lv for lv in levels if lv in order]
    if known:
        return min(known, key=order.index)
    return levels[0] if levels else None


def intent(option: OptionEntry, disease: str, transplant: str, kb: KnowledgeBase) -> str | None:
    """The option's own intent, else the disease's by option id, kind, branch, or default. An
    option open to both transplant branches follows the patient's candidacy; when that is
    unknown, both intents are named ('curative or palliative')."""
    context = kb.option_context
    if option.intent:
        return option.intent
    if context is None:
        return None
    rule = context.intents.get(disease)
    if rule and option.id in rule.options:
        return rule.options[option.id]
    if option.kind in context.intent_by_kind:
        return context.intent_by_kind[option.kind]
    if rule is None:
        return None
    branch = option.when.transplant
    if branch in rule.by_branch:
        return rule.by_branch[branch]
    if rule.any_branch_follows_patient and rule.by_branch:
        if transplant in rule.by_branch:
            return rule.by_branch[transplant]
        if transplant == "unknown":
            return " or ".join(dict.fromkeys(rule.by_branch.values()))
    return rule.default


def intent_label(value: str | None, kb: KnowledgeBase) -> str | None:
    if value is None or kb.option_context is None:
        return value
    labels = kb.option_context.intent_labels
    parts = value.split(" or ")
    return " or ".join(labels.get(p, p) for p in parts)  # type: ignore[call-overload]


def explain(
    option: OptionEntry,
    *,
    recheck: tuple[str, ...],
    receptor_branch: str | None,
    needs_renal: bool,
    ctx: SalvageContext,
    kb: KnowledgeBase,
) -> Explanation:
    value = intent(option, ctx.disease, ctx.transplant, kb)
    return Explanation(
        intent=value,
        intent_label=intent_label(value, kb),
        evidence_level=evidence_level(option.evidence, kb),
        rank_reasons=_rank_reasons(option, recheck, receptor_branch, ctx, kb),
        fits_because=_fits_because(option, ctx, kb),
        not_checked=_not_checked(option, recheck, receptor_branch, needs_renal, ctx),
        inferred=inferred_facts(ctx),
    )


def _rank_reasons(
    option: OptionEntry,
    recheck: tuple[str, ...],
    receptor_branch: str | None,
    ctx: SalvageContext,
    kb: KnowledgeBase,
) -> tuple[str, ...]:
    """The parts of pathway_options.rank_key that place this option, in its order, in words:
    never a raw preference number, never the evidence level (it does not set the order)."""
    reasons: list[str] = []
    care_first = option_rules.supportive_care_first(ctx.performance, kb)
    first_reason = kb.patient_rules.performance_status.supportive_care_first_reason
    if option.kind == "care":
        reasons.append(
            f"{first_reason} ({ctx.performance.text})"
            if care_first and ctx.performance
            else "supportive care is listed after the disease-directed options"
        )
    elif option.kind == "trial":
        reasons.append("a clinical trial is listed after the standard options")
    elif care_first and ctx.performance:
        reasons.append(f"after supportive care: {ctx.performance.text}")
    eligibility = ctx.eligibility
    leans_against = eligibility is not None and eligibility.leans_not_candidate
    if ctx.transplant == "unknown" and option.when.transplant == "ineligible" and not leans_against:
        reasons.append(
            "after the options of the transplant-candidate branch: transplant eligibility is "
            "unknown, so this branch is shown second"
        )
    if ctx.transplant == "unknown" and option.when.transplant == "eligible" and eligibility:
        if eligibility.leans_not_candidate:
            reasons.append(
                "after the options of the 'not a transplant candidate' branch: eligibility is "
                "unknown and the record leans against transplant (see the transplant line)"
            )
    if receptor_branch:
        reasons.append(f"after options that need no receptor result: holds {receptor_branch}")
    if recheck:
        reasons.append("after options resting on current data: " + "; ".join(recheck))
    rerank = kb.overlay.rerank if kb.overlay else {}
    if option.id in rerank and kb.overlay:
        reasons.append(f"placed by the local pathway of {kb.overlay.institution}")
    elif option.kind not in ("care", "trial") and not reasons:
        reasons.append("in the pathway's order for this failure")
    return tuple(reasons)


def _fits_because(option: OptionEntry, ctx: SalvageContext, kb: KnowledgeBase) -> tuple[str, ...]:
    """The facts of this patient the option's conditions were checked against, and met."""
    when = option.when
    failure = ctx.failure
    fits = [f"{failure.kind.replace('-', ' ')} on {failure.when.isoformat()}" + _line_words(ctx)]
    if when.timing != "any":
        timing = next((f for f in ctx.facts if f.startswith(("relapse ", "primary "))), None)
        fits.append(timing or f"{when.timing} failure")
    if when.primary_refractory is False and not failure.primary:
        fits.append("not primary refractory")
    if when.transplant != "any" and ctx.transplant == when.transplant and ctx.eligibility:
        fits.append(ctx.eligibility.summary())
    if (
        when.max_ecog is not None
        and ctx.performance is not None
        and ctx.performance.value <= when.max_ecog
    ):
        fits.append(f"{ctx.performance.text}: within the trial's limit of ECOG {when.max_ecog}")
    if when.prior_classes:
        fits.append(
            "received before, as in the trial: "
            + ", ".join(map(kb.class_label, when.prior_classes))
        )
    if when.after_procedure and ctx.previous_procedures:
        fits.append("after " + ", ".join(sorted(ctx.previous_procedures)))
    if when.min_line and ctx.failed_line is not None:
        fits.append(f"line {ctx.failed_line.number} failed (option from line {when.min_line})")
    for marker, status in (("hormone_receptor", ctx.receptor_status), ("her2", ctx.her2_status)):
        if getattr(when, marker) != "any" and status is not None and status.value != "unknown":
            fits.append(status.text)
    return tuple(dict.fromkeys(fits))


def _line_words(ctx: SalvageContext) -> str:
    line = ctx.failed_line
    return f" of line {line.number} ({line.regimen})" if line else ""


def _not_checked(
    option: OptionEntry,
    recheck: tuple[str, ...],
    receptor_branch: str | None,
    needs_renal: bool,
    ctx: SalvageContext,
) -> tuple[str, ...]:
    """Conditions of the option the record could not confirm."""
    when = option.when
    missing: list[str] = []
    if when.max_ecog is not None and ctx.performance is None and ctx.domain == "oncology":
        state = "recorded but unreadable" if ctx.performance_unreadable else "not recorded"
        missing.append(f"performance status ({state}; the trial enrolled ECOG 0-{when.max_ecog})")
    if when.transplant != "any" and ctx.transplant == "unknown":
        missing.append(
            f"transplant eligibility (unknown; the option is for: {BRANCH_WORDS[when.transplant]})"
        )
    if when.transplant == "eligible" and ctx.eligibility and ctx.eligibility.not_checked:
        missing.append("organ function for transplant: " + ", ".join(ctx.eligibility.not_checked))
    if receptor_branch:
        missing.append(f"receptor status (the option holds {receptor_branch})")
    if needs_renal and ctx.clearance is None:
        missing.append("renal function (no creatinine clearance or eGFR on record)")
    missing += list(recheck)
    return tuple(dict.fromkeys(missing))


def inferred_facts(ctx: SalvageContext) -> tuple[str, ...]:
    """Facts stated as known although part of what they rest on is missing: a transplant
    candidate whose organ function is not on record is a candidate only as far as the record
    goes. Each is returned as 'fact: assumed, X not recorded'."""
    eligibility = ctx.eligibility
    if eligibility is None or eligibility.status != "candidate" or not eligibility.not_checked:
        return ()
    return ("transplant candidate: assumed, not on record: " + ", ".join(eligibility.not_checked),)


def goals_of_care(
    ctx: SalvageContext, disease_directed: int, kb: KnowledgeBase
) -> tuple[str, tuple[str, ...]] | None:
    """The goals-of-care prompt and why it appears (option_context.yaml goals_of_care): after the
    set number of failed lines of the disease, when no disease-directed option fits, or when
    performance status is poor."""
    context = kb.option_context
    if context is None or ctx.domain != "oncology":
        return None
    rule = context.goals_of_care
    if ctx.failure.kind not in rule.failure_kinds:
        return None
    failed_lines = sorted(
        {
            f.line
            for f in ctx.analysis.failures
            if f.line is not None and f.disease == ctx.failure.disease and f.kind != "intolerance"
        }
    )
    why: list[str] = []
    if len(failed_lines) >= rule.after_failed_lines:
        why.append(
            f"{counted(len(failed_lines), 'line')} "
            f"{'has' if len(failed_lines) == 1 else 'have'} failed "
            f"({'line' if len(failed_lines) == 1 else 'lines'} "
            f"{', '.join(map(str, failed_lines))}); the prompt appears from "
            f"{rule.after_failed_lines}"
        )
    if disease_directed == 0:
        why.append("no disease-directed option fits")
    if option_rules.supportive_care_first(ctx.performance, kb) and ctx.performance:
        why.append(f"poor performance status: {ctx.performance.text}")
    if not why:
        return None
    return " ".join(rule.text.split()), tuple(why)


def hiv(rec: Recommendation, kb: KnowledgeBase) -> Recommendation:
    """HIV options (hiv.yaml) get the same explanation: intent, evidence level, rank reasons."""
    rerank = kb.overlay.rerank if kb.overlay else {}
    rules = {r.id: r for r in kb.hiv.options}
    context = kb.option_context
    options = []
    for option in rec.options:
        value = (context.intent_by_kind.get(option.kind) if context else None) or (
            context.intents["hiv"].default if context and "hiv" in context.intents else None
        )
        reasons = []
        rule = rules.get(option.option_id)
        preference = rule.rank if rule is not None else None
        # No raw preference numbers and no evidence level: neither tells a clinician why the
        # option is where it is (the level is shown with the option).
        if option.option_id in rerank and kb.overlay:
            reasons.append(f"placed by the local pathway of {kb.overlay.institution}")
        elif preference is not None:
            reasons.append("in the pathway's order for this virologic failure")
        options.append(
            replace(
                option,
                intent=value,
                intent_label=intent_label(value, kb),
                evidence_level=evidence_level(option.evidence, kb),
                rank_reasons=tuple(reasons),
            )
        )
    return replace(rec, options=tuple(options))
