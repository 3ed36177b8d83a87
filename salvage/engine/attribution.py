"""Which diseases the patient has, which are active, and which disease each treatment is for.

A Condition counts only with a confirmed or unstated verificationStatus (failures.yaml). A
disease is active unless every counted Condition naming it is in remission, resolved or inactive.
HIV needs a coded diagnosis or a detectable HIV-1 RNA: antiretrovirals alone may be PrEP
(diseases.yaml).
Each day's anticancer drugs are attributed to the patient's disease that the most of them plausibly
treat (regimens.yaml components, diseases.yaml drug classes); a tie goes to the disease diagnosed
most recently on or before that day, so a breast-cancer survivor's later R-CHOP is lymphoma therapy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from salvage.engine.ingredient_facts import facts_table
from salvage.engine.model import (
    ConditionRecord,
    DrugExposure,
    Measurement,
    PatientRecord,
    ProcedureRecord,
)
from salvage.knowledge.model import ICD10CM, SNOMED, KnowledgeBase


@dataclass(frozen=True, kw_only=True)
class DiseaseState:
    disease: str
    active: bool
    diagnosed: date | None  # the earliest date of a counted Condition naming it
    sources: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class HivEvidence:
    confirmed: bool
    sources: tuple[str, ...]
    prep_context: tuple[str, ...]  # Conditions that say the antiretrovirals are prevention
    note: str | None


def counts_as_disease(condition: ConditionRecord, kb: KnowledgeBase) -> bool:
    return (
        condition.verification is None
        or condition.verification in kb.failures.oncology.counted_verification_status
    )


def condition_diseases(condition: ConditionRecord, kb: KnowledgeBase) -> list[str]:
    """The diseases a Condition's codes name, in the order its codes are read; for a Condition
    without a SNOMED CT or ICD-10-CM coding, the diseases its text names (from_text).
    Remembered per knowledge base and exact code sequence (or text): the same diagnosis codes
    recur across a population and each Condition is asked about several times per analysis."""
    if from_text(condition):
        key: tuple[str, ...] = ("", condition.text)  # no code is empty: never a code sequence
    else:
        key = tuple(condition.codes)  # the order this set iterates in, which orders the result
    memo: dict[tuple[str, ...], tuple[str, ...]] | None = kb.__dict__.get("_condition_diseases")
    if memo is None or len(memo) > _MEMO_LIMIT:
        memo = {}
        object.__setattr__(kb, "_condition_diseases", memo)
    found = memo.get(key)
    if found is None:
        found = memo[key] = tuple(
            _text_diseases(condition.text, kb) if key[:1] == ("",) else _condition_diseases(key, kb)
        )
    return list(found)


def from_text(condition: ConditionRecord) -> bool:
    """The Condition's diseases are read from its text: it has no SNOMED CT or ICD-10-CM coding
    (a standard code for something else, "Recurrent UTI", is that something else)."""
    return bool(condition.text) and not any(
        code.partition("|")[0] in (SNOMED, ICD10CM) for code in condition.codes
    )


def _text_diseases(text: str, kb: KnowledgeBase) -> list[str]:
    """Diseases named by a whole phrase of the text (diseases.yaml text_patterns), never when
    the text negates, doubts or dates it, or is about someone else ("no evidence of", "suspected",
    "rule out", "history of", "family history": text_recognition.never_with)."""
    rule = kb.disease_text
    if rule is None or rule.never_with.search(text):
        return []
    return [d.id for d in kb.diseases.values() if d.text is not None and d.text.search(text)]


def _condition_diseases(codes: tuple[str, ...], kb: KnowledgeBase) -> list[str]:
    found: list[str] = []
    for code in codes:
        system, _, value = code.partition("|")
        for disease in kb.diseases.values():
            if disease.names(system, value) and disease.id not in found:
                found.append(disease.id)
    return found


_MEMO_LIMIT = 20_000  # distinct code sequences remembered before starting again (bounded memory)


def text_diagnoses(record: PatientRecord, kb: KnowledgeBase) -> tuple[tuple[str, str], ...]:
    """(disease, sentence) for each disease that only Condition text names (no counted Condition
    codes it): the sentence says it was recognised from text, not coded, and asks for the code."""
    rule = kb.disease_text
    if rule is None:
        return ()
    coded: set[str] = set()
    written: dict[str, list[ConditionRecord]] = {}
    for condition in record.conditions:
        if not counts_as_disease(condition, kb):
            continue
        for disease in condition_diseases(condition, kb):
            if from_text(condition):
                written.setdefault(disease, []).append(condition)
            else:
                coded.add(disease)
    return tuple(
        (
            disease,
            f"{kb.diseases[disease].name} {rule.label}: {conditions[0].text!r} "
            f"({', '.join(c.source for c in conditions[:3])}); {rule.ask}",
        )
        for disease, conditions in written.items()
        if disease not in coded
    )


def unread_texts(record: PatientRecord, kb: KnowledgeBase) -> tuple[str, ...]:
    """Counted Conditions written as text only that name no disease of the knowledge base."""
    return tuple(
        f"{c.text!r} ({c.source})"
        for c in record.conditions
        if counts_as_disease(c, kb) and from_text(c) and not condition_diseases(c, kb)
    )


def disease_states(record: PatientRecord, kb: KnowledgeBase) -> dict[str, DiseaseState]:
    """Diseases named by counted Conditions, active ones first, then in problem-list order."""
    remission = set(kb.failures.oncology.remission_clinical_status)
    order: list[str] = []
    active: dict[str, bool] = {}
    diagnosed: dict[str, date | None] = {}
    sources: dict[str, list[str]] = {}
    for condition in record.conditions:
        if not counts_as_disease(condition, kb):
            continue
        for disease in condition_diseases(condition, kb):
            if disease not in order:
                order.append(disease)
                active[disease] = False
                diagnosed[disease] = None
                sources[disease] = []
            active[disease] = active[disease] or condition.clinical_status not in remission
            day = condition.onset or condition.when
            if day is not None and (diagnosed[disease] is None or day < diagnosed[disease]):  # type: ignore[operator]
                diagnosed[disease] = day
            sources[disease].append(condition.source)
    ranked = sorted(order, key=lambda d: (not active[d], order.index(d)))
    return {
        d: DiseaseState(
            disease=d, active=active[d], diagnosed=diagnosed[d], sources=tuple(sources[d])
        )
        for d in ranked
    }


def hiv_evidence(
    record: PatientRecord, kb: KnowledgeBase, states: dict[str, DiseaseState]
) -> HivEvidence:
    prep = tuple(
        c.source
        for c in record.conditions
        if any(kb.prep_context.names(*code.split("|", 1)) for code in c.codes if "|" in code)
    )
    if "hiv" in states:
        return HivEvidence(
            confirmed=True, sources=states["hiv"].sources, prep_context=prep, note=None
        )
    detectable = [
        m.source
        for m in record.measurements
        if m.kind == "hiv-rna" and m.value and m.value > 0 and m.comparator not in ("<", "<=")
    ]
    if detectable:
        return HivEvidence(
            confirmed=True,
            sources=tuple(detectable),
            prep_context=prep,
            note="HIV-1 infection inferred from a detectable HIV-1 RNA "
            f"({', '.join(detectable[:3])}); no coded HIV diagnosis",
        )
    table = facts_table(kb)
    on_arv = any(table[e.ingredients].antiretroviral for e in record.exposures)
    if not on_arv:
        return HivEvidence(confirmed=False, sources=(), prep_context=prep, note=None)
    if prep:
        note = (
            f"antiretrovirals with a PrEP context ({', '.join(prep)}) and no HIV diagnosis or "
            "detectable HIV-1 RNA: prevention, not HIV treatment; no HIV lines are built"
        )
    else:
        note = (
            "antiretrovirals without an HIV diagnosis or detectable HIV-1 RNA (they may be PrEP "
            "or post-exposure prophylaxis): no HIV lines are built; record the indication"
        )
    return HivEvidence(confirmed=False, sources=(), prep_context=prep, note=note)


@dataclass(frozen=True, kw_only=True)
class PrepUse:
    """Antiretrovirals given as PrEP: never a line of HIV treatment (CDC PrEP guideline 2021)."""

    exposures: tuple[DrugExposure, ...]  # taken as PrEP: excluded from HIV lines
    statement: str | None  # replaces "no documented treatment failure" for this patient
    notes: tuple[str, ...]


def _detectable(m: Measurement) -> bool:
    return bool(m.value and m.value > 0 and m.comparator not in ("<", "<="))


def prep_use(
    record: PatientRecord,
    kb: KnowledgeBase,
    states: dict[str, DiseaseState],
    evidence: HivEvidence,
) -> PrepUse:
    """With a PrEP context, the antiretrovirals started before HIV was first evidenced (coded
    diagnosis or detectable HIV-1 RNA) were prevention: HIV found later is acquisition on PrEP,
    not failure of a treatment line (DHHS, early HIV infection). RNA detected below quantification
    in a PrEP user asks for a repeat, never silence."""
    wording = kb.hiv

    def cited(keys: tuple[str, ...]) -> str:
        return f" ({'; '.join(kb.evidence[k].label for k in keys)})"

    table = facts_table(kb)
    on_arv = [e for e in record.exposures if table[e.ingredients].antiretroviral]
    if not evidence.prep_context or not on_arv:
        statement = evidence.note if not evidence.confirmed and on_arv else None
        return PrepUse(exposures=(), statement=statement, notes=())
    low = [
        m for m in record.measurements if m.kind == "hiv-rna" and m.detected and not _detectable(m)
    ]
    low_notes = tuple(
        f"{wording.prep_low_level_rna} ({m.raw!r} on {m.when.isoformat()}, {m.source})"
        for m in low[-1:]
    )
    if not evidence.confirmed:
        statement = " ".join(
            (wording.prep_statement + cited(wording.prep_statement_evidence), *low_notes)
        )
        return PrepUse(exposures=(), statement=statement, notes=low_notes)
    days = [m.when for m in record.measurements if m.kind == "hiv-rna" and _detectable(m)]
    if "hiv" in states and states["hiv"].diagnosed is not None:
        days.append(states["hiv"].diagnosed)
    first = min(days, default=None)
    prep = tuple(  # PrEP drugs only (never full ART), started before HIV was evidenced
        e
        for e in on_arv
        if first is not None and e.start < first and e.ingredients <= wording.prep_drugs
    )
    if first is None or not prep:
        return PrepUse(exposures=(), statement=None, notes=())
    drugs = sorted({i for e in prep for i in e.ingredients})
    integrase = any(kb.drugs[i].classes & kb.hiv.integrase_classes for i in drugs if i in kb.drugs)
    advice = " ".join(
        (wording.prep_acquisition, *((wording.prep_acquisition_integrase,) if integrase else ()))
    )
    note = (
        f"HIV first evidenced on {first.isoformat()} in a PrEP user ({', '.join(drugs)} as PrEP, "
        f"context {', '.join(evidence.prep_context)}; {', '.join(e.source for e in prep)}): "
        f"PrEP is not a line of HIV treatment. {advice}{cited(wording.prep_acquisition_evidence)}"
    )
    return PrepUse(exposures=prep, statement=note, notes=(note,))


def attribute_exposures(
    exposures: list[DrugExposure],
    procedures: list[ProcedureRecord],
    kb: KnowledgeBase,
    states: dict[str, DiseaseState],
) -> dict[str | None, tuple[list[DrugExposure], list[ProcedureRecord]]]:
    """Non-antiretroviral exposures (and local-therapy procedures) grouped by the disease they
    treat; None when the patient has no oncology disease on record."""
    oncology = [d for d in states if kb.diseases[d].domain == "oncology"]
    groups: dict[str | None, tuple[list[DrugExposure], list[ProcedureRecord]]] = {}
    table = facts_table(kb)
    own = [e for e in exposures if not table[e.ingredients].antiretroviral]
    if len(oncology) <= 1:
        key = oncology[0] if oncology else None
        return {key: (own, list(procedures))}
    window = timedelta(days=kb.default_rules.regimen_window_days)
    by_day: dict[date, list[DrugExposure]] = {}
    for e in own:
        by_day.setdefault(e.start, []).append(e)
    for day, todays in sorted(by_day.items()):
        disease = _disease_of_day(todays, day, kb, states, oncology, window)
        groups.setdefault(disease, ([], []))[0].extend(todays)
    for procedure in procedures:
        # A stem-cell transplant consolidates a lymphoma line; local therapy starts a line.
        plausible = [
            d
            for d in oncology
            if any(c.procedure == procedure.kind for c in kb.rules_for(d).consolidation)
        ] or [d for d in oncology if kb.rules_for(d).procedure_lines]
        disease = plausible[0] if plausible else _latest_diagnosed(oncology, procedure.when, states)
        groups.setdefault(disease, ([], []))[1].append(procedure)
    return groups


def _disease_of_day(
    todays: list[DrugExposure],
    day: date,
    kb: KnowledgeBase,
    states: dict[str, DiseaseState],
    oncology: list[str],
    window: timedelta,
) -> str:
    score = dict.fromkeys(oncology, 0)
    for e in todays:
        for drug in e.ingredients:
            if drug in kb.drugs and kb.drugs[drug].role in ("anticancer", "steroid"):
                for disease in kb.drug_diseases(drug) & set(oncology):
                    score[disease] += 2 if kb.drugs[drug].role == "anticancer" else 1
    best = max(score.values())
    candidates = [d for d in oncology if score[d] == best]
    if len(candidates) == 1:
        return candidates[0]
    return _latest_diagnosed(candidates, day + window, states)


def _latest_diagnosed(candidates: list[str], by: date, states: dict[str, DiseaseState]) -> str:
    """The candidate diagnosed most recently on or before a date (else the first listed)."""
    dated = [
        (states[d].diagnosed, d)
        for d in candidates
        if states[d].diagnosed is not None and states[d].diagnosed <= by  # type: ignore[operator]
    ]
    if dated:
        return max(dated)[1]
    return candidates[0]
