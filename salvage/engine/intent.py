"""Treatment intent of each line: adjuvant or neoadjuvant therapy of early cancer is not a line of
advanced-disease therapy (numbered 0). Read as recorded (mCODE intent, reasonCode), from the
staged Condition an order names as its reason, else from the disease state when the line began
(line_rules.yaml intent). Without any of these, intent is not assumed."""

from __future__ import annotations

import functools
import re
from datetime import date, timedelta

import msgspec

from salvage.engine import attribution
from salvage.engine.model import ConditionRecord, Line, PatientRecord
from salvage.knowledge.model import ICD10CM, SNOMED, IntentRules, KnowledgeBase

EARLY_INTENTS = ("adjuvant", "neoadjuvant")


def stage_group(stage: str, rules: IntentRules) -> str | None:
    """'early' or 'advanced' from a recorded stage ("Stage IIA", "AJCC 3C", "IV"), else None."""
    bases = _stage_bases(stage)
    if not bases.isdisjoint(rules.advanced_stages):
        return "advanced"
    if not bases.isdisjoint(rules.early_stages):
        return "early"
    return None


@functools.lru_cache(maxsize=4096)
def _stage_bases(stage: str) -> frozenset[str]:
    """The stage groups a recorded stage names (memoised: the same few stages recur)."""
    return frozenset(t.rstrip("abc") for t in re.findall(r"[a-z0-9]+", stage.replace("stage", " ")))


def _metastatic_cues(rules: IntentRules) -> tuple[frozenset[str], tuple[str, ...], list[str]]:
    """(SNOMED codes, ICD-10-CM prefixes as "system|code", text cues) of metastatic disease."""
    return (
        frozenset(f"{SNOMED}|{c}" for c in rules.metastatic_snomed),
        tuple(f"{ICD10CM}|{prefix}" for prefix in rules.metastatic_icd10cm),
        rules.metastatic_text,
    )


def _is_metastatic(
    condition: ConditionRecord, snomed: frozenset[str], prefixes: tuple[str, ...], cues: list[str]
) -> bool:
    if not condition.codes.isdisjoint(snomed):
        return True
    if prefixes and any(code.startswith(prefixes) for code in condition.codes):
        return True
    text = condition.text.lower()
    return any(cue in text for cue in cues)


def _advanced_signs(
    record: PatientRecord, kb: KnowledgeBase, disease: str, rules: IntentRules
) -> list[tuple[date, str]]:
    """Each dated sign of advanced disease with its short reason, in record order (read once per
    patient; a line asks which of them is dated on or before its window)."""
    cues = _metastatic_cues(rules)
    signs: list[tuple[date, str]] = []
    for c in record.conditions:
        if c.when is None:
            continue
        if _is_metastatic(c, *cues):
            signs.append((c.when, f"metastatic disease recorded ({c.source})"))
        elif disease in attribution.condition_diseases(c, kb) and stage_group(c.stage, rules) == (
            "advanced"
        ):
            signs.append((c.when, f"stage {c.stage} recorded ({c.source})"))
    return signs


def _advanced_by(signs: list[tuple[date, str]], by: date) -> str | None:
    """The first sign of advanced disease dated on or before a date, as a short reason."""
    return next((reason for when, reason in signs if when <= by), None)


def _early_stage(
    own: list[ConditionRecord], rules: IntentRules, sources: set[str]
) -> ConditionRecord | None:
    """The disease Condition staged early: one the line's orders name, else any of the disease."""
    named = [c for c in own if c.source in sources] or own
    return next((c for c in named if stage_group(c.stage, rules) == "early"), None)


def assign(lines: list[Line], record: PatientRecord, kb: KnowledgeBase, disease: str) -> list[Line]:
    """Lines with intent set; early-disease lines ((neo)adjuvant, or curative while staged
    I-III) numbered 0 and the others renumbered from 1."""
    rules = kb.intent_rules
    if rules is None or disease not in rules.diseases or not lines:
        return lines
    window = timedelta(days=kb.rules_for(disease).regimen_window_days)
    signs = _advanced_signs(record, kb, disease, rules)
    own = [c for c in record.conditions if disease in attribution.condition_diseases(c, kb)]
    decided: dict[int, tuple[str | None, str, bool]] = {}  # intent, basis, early disease
    # Without a recorded intent, a sign of advanced disease or an early-staged Condition, no
    # line can have an intent or a basis (the usual record): each is decided at once.
    decidable = (
        bool(signs)
        or any(e.intent for e in record.exposures)
        or any(stage_group(c.stage, rules) == "early" for c in own)
    )
    if not decidable:
        decided = {ln.number: (None, "", False) for ln in lines if not ln.maintenance}
    by_source = {e.source: e for e in record.exposures} if decidable else {}
    adjuvant_end: date | None = None
    undecided = (ln for ln in lines if not ln.maintenance and decidable)
    for line in sorted(undecided, key=lambda ln: ln.start):
        exposures = [by_source[s] for s in line.sources if s in by_source]
        recorded = next((e for e in exposures if e.intent), None)
        reasons = {r for e in exposures for r in e.reasons}
        advanced = _advanced_by(signs, line.start + window)
        early = None if advanced else _early_stage(own, rules, reasons)
        intent: str | None = None
        basis = ""
        if recorded is not None:
            intent, basis = recorded.intent, f"recorded on {recorded.source}"
        elif advanced:
            basis = f"advanced disease when the line began: {advanced}"
        else:
            classes = {c for d in line.ingredients if d in kb.drugs for c in kb.drugs[d].classes}
            follows = (
                adjuvant_end is not None
                and classes & set(rules.follow_on_classes)
                and (line.start - adjuvant_end).days <= rules.follow_on_days
            )
            if follows:
                intent = "adjuvant"
                basis = (
                    f"endocrine therapy begun within {rules.follow_on_days} days of adjuvant "
                    "therapy, no advanced disease on record"
                )
            elif early is not None:
                # Breast: adjuvant; NSCLC stage I-III: curative (definitive chemoradiotherapy
                # is not adjuvant), line_rules.yaml intent.inferred.
                intent = rules.inferred.get(disease, "adjuvant")
                basis = (
                    f"stage {early.stage} ({early.source}) and no metastatic disease on record "
                    "when the line began"
                )
        # Early-disease therapy is not a line of advanced-disease therapy: (neo)adjuvant, or
        # curative (recorded or inferred) while the disease is staged I-III.
        early_disease = intent in EARLY_INTENTS or (intent == "curative" and early is not None)
        if early_disease:
            end = line.end or line.last_active
            adjuvant_end = end if adjuvant_end is None else max(adjuvant_end, end)
        decided[line.number] = (intent, basis, early_disease)
    renumber: dict[int, int] = {}
    next_number = 1
    for number in sorted(decided):
        if decided[number][2]:
            renumber[number] = 0
        else:
            renumber[number] = next_number
            next_number += 1
    out: list[Line] = []
    for line in lines:
        number = renumber.get(line.number, line.number)
        intent, basis, _ = decided.get(line.number, (None, "", False))
        if (number, intent, basis) == (line.number, line.intent, line.intent_basis):
            out.append(line)  # unchanged: no frozen copy (it costs µs per line)
        else:
            out.append(
                msgspec.structs.replace(line, number=number, intent=intent, intent_basis=basis)
            )
    return out
