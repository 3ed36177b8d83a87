"""Transplant candidacy from a cited, data-driven rule (patient_rules.yaml transplant_eligibility).

Any 'not a candidate' criterion met by a current value -> not a candidate. Every candidate criterion
known, current and met, and none of the others -> candidate (organ-function inputs that are not
recorded are listed as not checked). Anything else -> unknown: the inputs that are missing,
unreadable or stale are named and the recommender shows both branches. Fitness is never assumed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from salvage.engine import factors
from salvage.engine.measures import exceeds, side
from salvage.engine.model import PatientRecord
from salvage.knowledge.model import KnowledgeBase


@dataclass(frozen=True, kw_only=True)
class Eligibility:
    status: str  # candidate | not-candidate | unknown
    reasons: tuple[str, ...] = ()  # criteria met (not-candidate) or why it is unknown
    missing: tuple[str, ...] = ()  # inputs with no value on record
    unreadable: tuple[str, ...] = ()  # inputs recorded but unreadable
    rechecks: tuple[str, ...] = ()  # stale inputs: re-check before use
    not_checked: tuple[str, ...] = ()  # organ-function inputs not on record (candidate branch)
    # Unknown, but what is on record points away from transplant (a 'not a candidate' criterion
    # met by a value too old to decide on but within patient_rules.yaml recency.leaning_days, e.g.
    # a creatinine clearance below the limit 40 days ago): the 'not a transplant candidate' branch
    # is shown first. Never the other way round: a
    # fit patient is not assumed. (An age above the trials' range alone does not lean: Hodgkin
    # patients above HD-R1's 60 are transplanted when fit.)
    leans_not_candidate: bool = False
    sources: tuple[str, ...] = ()
    evidence: tuple[str, ...] = field(default_factory=tuple)

    def summary(self) -> str:
        cited = ", ".join(self.evidence)
        if self.status == "candidate":
            text = f"transplant candidate ({cited})"
            if self.not_checked:  # inferred as far as the record goes: say so (issue 15.7)
                text += "; assumed, not on record: " + ", ".join(self.not_checked)
            return text
        if self.status == "not-candidate":
            return f"not a transplant candidate: {'; '.join(self.reasons)} ({cited})"
        leaning = ", the record leans against transplant" if self.leans_not_candidate else ""
        return f"transplant eligibility unknown{leaning}: {'; '.join(self.reasons)} ({cited})"


def transplant(
    record: PatientRecord, kb: KnowledgeBase, disease: str, as_of: date
) -> Eligibility | None:
    rule = kb.transplant_rules.get(disease)
    if rule is None:
        return None
    met: list[str] = []  # current values meeting a not-candidate criterion
    stale_met: list[str] = []  # stale values meeting one: keep the caution, ask to re-check
    # stale values meeting one that are still recent enough to lean on (recency.leaning_days)
    leaning: list[str] = []
    lean_days = kb.patient_rules.recency.leaning_days
    unknown: list[str] = []
    missing: list[str] = []
    unreadable: list[str] = []
    rechecks: list[str] = []
    not_checked: list[str] = []
    sources: list[str] = []
    decision_evidence: tuple[str, ...] = ()

    age = factors.age_years(record, as_of)
    if age is None:
        missing.append("age (no birth date)")
        unknown.append("age unknown (no birth date)")
    elif rule.age_at_least is not None and age >= rule.age_at_least:
        met.append(f"age {age} >= {rule.age_at_least}")
    elif age > rule.age_at_most:
        unknown.append(
            f"age {age} is above {rule.age_at_most}, outside the trial evidence: "
            "a clinical decision"
        )
    elif rule.decision_from_age is not None and age >= rule.decision_from_age:
        unknown.append(f"age {age}: {rule.decision_reason}")
        decision_evidence = rule.decision_evidence

    performance = factors.ecog(record, kb, as_of)
    odd = factors.unreadable_performance(record, as_of)
    if odd is not None:
        unreadable.append(
            f"performance status recorded as '{odd.raw}' on {odd.when.isoformat()} "
            f"({odd.source}) cannot be read"
        )
        unknown.append("performance status recorded but unreadable")
        sources.append(odd.source)
    elif performance is None:
        missing.append("ECOG performance status")
        unknown.append("no ECOG performance status recorded")
    else:
        sources += performance.sources
        if rule.ecog_at_least is not None and performance.value >= rule.ecog_at_least:
            (stale_met if performance.stale else met).append(performance.text)
            if performance.stale and (performance.age_days or 0) <= lean_days:
                leaning.append(performance.text)
        elif performance.value > rule.ecog_at_most:
            unknown.append(f"{performance.text} is above the trial entry limit {rule.ecog_at_most}")
        elif performance.stale:
            unknown.append(f"{performance.text}: too old to show current fitness")
        if performance.stale:
            rechecks.append(
                f"re-check performance status before use (last value {performance.text})"
            )

    def organ_check(
        fact: factors.Fact | None, label: str, verdict: bool | None, rule_text: str
    ) -> None:
        if fact is None:
            not_checked.append(label)
            return
        sources.extend(fact.sources)
        if verdict is None:
            unknown.append(f"{fact.text} cannot be compared with {rule_text}")
            return
        if fact.stale:
            rechecks.append(f"re-check {label} before use (last value {fact.text})")
        if verdict:
            (stale_met if fact.stale else met).append(f"{fact.text} ({rule_text})")
            if fact.stale and (fact.age_days or 0) <= lean_days:
                leaning.append(fact.text)

    if rule.creatinine_clearance_below is not None:
        clearance = factors.creatinine_clearance(record, kb, as_of)
        verdict = None
        if clearance is not None:
            placed = side(clearance.value, clearance.comparator, rule.creatinine_clearance_below)
            verdict = None if placed == "indeterminate" else placed == "below"
        organ_check(
            clearance,
            "creatinine clearance",
            verdict,
            f"< {rule.creatinine_clearance_below:g} mL/min",
        )
    if rule.lvef_below is not None:
        lvef = factors.organ(record, kb, "lvef", "LVEF", as_of)
        verdict = None
        if lvef is not None:
            placed = side(lvef.value, lvef.comparator, rule.lvef_below)
            verdict = None if placed == "indeterminate" else placed == "below"
        organ_check(lvef, "LVEF", verdict, f"< {rule.lvef_below:g} %")
    if rule.ast_alt_above_uln_times is not None:
        for kind, label in (("ast", "AST"), ("alt", "ALT")):
            fact = factors.organ(record, kb, kind, label, as_of)
            verdict = None
            if fact is not None and fact.reference_high is not None:
                verdict = exceeds(
                    fact.value, fact.comparator, rule.ast_alt_above_uln_times * fact.reference_high
                )
            organ_check(fact, label, verdict, f"> {rule.ast_alt_above_uln_times:g} x upper limit")
        # Only DLCO is never read (no verified LOINC code); the wording must not suggest that the
        # organ values listed before it are unread too.
        not_checked.append("DLCO (this version never reads DLCO)")

    common: dict[str, Any] = {
        "missing": tuple(missing),
        "unreadable": tuple(unreadable),
        "rechecks": tuple(rechecks),
        "not_checked": tuple(not_checked),
        "sources": tuple(dict.fromkeys(sources)),
        # the age sources only when age is what leaves candidacy open, not beside an exclusion
        "evidence": rule.evidence
        if met
        else tuple(dict.fromkeys(rule.evidence + decision_evidence)),
    }
    if met:
        return Eligibility(status="not-candidate", reasons=tuple(met + stale_met), **common)
    if stale_met:
        reasons = [
            f"{s}: meets a 'not a candidate' criterion but is stale, re-check" for s in stale_met
        ]
        return replace(
            Eligibility(status="unknown", reasons=tuple(reasons + unknown), **common),
            leans_not_candidate=bool(leaning),
        )
    if unknown:
        return Eligibility(status="unknown", reasons=tuple(unknown), **common)
    return Eligibility(status="candidate", **common)
