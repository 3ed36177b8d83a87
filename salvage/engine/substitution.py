"""Intolerance of one drug of a regimen: the same regimen with that drug replaced or left out, when
the result is a named regimen and a source supports the swap (class_rules.yaml substitutions)."""

from __future__ import annotations

from dataclasses import dataclass

from salvage.engine.analysis import PatientAnalysis
from salvage.engine.model import Failure, Line
from salvage.knowledge.model import KnowledgeBase, OptionEntry, OptionWhen


@dataclass(frozen=True, kw_only=True, slots=True)
class Swap:
    option: OptionEntry  # a regimen option built from the rule, judged like any pathway option
    drug: str  # the drug not tolerated


def not_tolerated(analysis: PatientAnalysis, failure: Failure) -> frozenset[str]:
    """Drugs of the records that document this intolerance (stopped as not tolerated)."""
    return frozenset(
        d for e in analysis.record.exposures if e.source in failure.sources for d in e.ingredients
    )


def intolerant_line(analysis: PatientAnalysis, failure: Failure) -> Line | None:
    return next(
        (
            ln
            for ln in analysis.lines
            if ln.number == failure.line
            and not ln.maintenance
            and (failure.disease is None or ln.disease in (None, failure.disease))
        ),
        None,
    )


def swaps(
    analysis: PatientAnalysis, failure: Failure, disease: str, kb: KnowledgeBase
) -> list[Swap]:
    """Named regimens reached by a sourced substitution of a drug that was not tolerated."""
    if failure.kind != "intolerance":
        return []
    line = intolerant_line(analysis, failure)
    if line is None:
        return []
    stopped = not_tolerated(analysis, failure) & frozenset(line.ingredients)
    found: list[Swap] = []
    for rule in kb.substitutions:
        if rule.disease != disease or rule.not_tolerated not in stopped:
            continue
        drugs = (frozenset(line.ingredients) - {rule.not_tolerated}) | (
            {rule.substitute} if rule.substitute else set()
        )
        name = kb.regimen_named(drugs)
        if name is None:
            continue
        which = (
            f"if {rule.not_tolerated} is the drug not tolerated (the record stops "
            f"{', '.join(sorted(stopped))} together): "
            if len(stopped) > 1
            else ""
        )
        found.append(
            Swap(
                drug=rule.not_tolerated,
                option=OptionEntry(
                    id=f"{disease}-substitute-{rule.not_tolerated.replace(' ', '-')}",
                    kind="regimen",
                    regimen=name,
                    rank=len(found) + 1,
                    setting="substitution-within-regimen",
                    when=OptionWhen(failure=["intolerance"]),
                    rationale=(
                        f"{line.regimen} (line {line.number}): {which}{rule.reason}; the same "
                        f"regimen becomes {name}"
                    ),
                    cautions=list(rule.cautions),
                    evidence=list(rule.evidence),
                ),
            )
        )
    return found
