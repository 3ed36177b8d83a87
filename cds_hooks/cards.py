"""Card rules: at most one card per problem, built from the engine's analysis and recommendation.

order-select / order-sign: the draft repeats a failed or not-tolerated drug or regimen (warning);
the draft contains a drug the patient's data contraindicates (warning); HIV virologic failure and
a draft that adds a single drug to the failing regimen (warning); a reasonable salvage choice
with monitoring to arrange (one info card). patient-view: a failure with no new line within the
disease's timing threshold (info).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from salvage.engine import contraindications
from salvage.engine.analysis import PatientAnalysis
from salvage.engine.model import Failure
from salvage.engine.recommend import Recommendation, what_failed
from salvage.fhir.emit import genotype_service_request, proposal_medication_request
from salvage.knowledge.model import KnowledgeBase

OVERRIDE_REASONS = [
    ("clinical-trial", "Patient is enrolled in a clinical trial"),
    ("patient-preference", "Patient's informed preference"),
    ("benefit-outweighs-risk", "Expected benefit outweighs the risk for this patient"),
    ("data-incorrect", "The record is incomplete or incorrect"),
    ("local-pathway", "Following the local pathway or tumour board decision"),
]
# Days without a new line after a failure before patient-view reminds (institution defaults,
# not trial thresholds; an overlay can change them). HIV: DHHS advises genotyping within 4 weeks.
DELAY_DAYS = {"hiv": 28, "dlbcl": 30, "hodgkin": 30, "nsclc": 42, "breast": 60, "prostate": 120}


@dataclass(frozen=True)
class Draft:
    resource_id: str | None  # "MedicationRequest/<id>", None when the draft has no id
    ingredients: frozenset[str]
    text: str


@dataclass(frozen=True)
class CardOut:
    kind: str
    card: dict[str, Any]


class CardBuilder:
    def __init__(
        self, kb: KnowledgeBase, base_url: str, patient_id: str, user_id: str | None
    ) -> None:
        self.kb = kb
        self.base_url = base_url.rstrip("/")
        self.patient_id = patient_id
        self.user_id = user_id

    # -- assembling ---------------------------------------------------------------------------
    def card(
        self,
        kind: str,
        indicator: str,
        summary: str,
        detail: list[str],
        suggestions: list[dict[str, Any]] | None = None,
        app_context: dict[str, Any] | None = None,
    ) -> CardOut:
        detail_text = "\n".join(
            [*detail, "", f"*Knowledge base {self.kb.version}. {self.kb.disclaimer}*"]
        )
        card: dict[str, Any] = {
            "uuid": str(uuid.uuid4()),
            "summary": summary if len(summary) < 140 else summary[:136] + "...",
            "detail": detail_text,
            "indicator": indicator,
            "source": {
                "label": "salvage-cds (decision support)",
                "url": f"{self.base_url}/",
                "topic": {
                    "system": f"{self.base_url}/card-types",
                    "code": kind,
                    "display": kind.replace("-", " "),
                },
            },
            "overrideReasons": [
                {"system": f"{self.base_url}/override-reasons", "code": code, "display": display}
                for code, display in OVERRIDE_REASONS
            ],
            "links": [
                {
                    "label": "Open salvage-cds for this patient",
                    "type": "smart",
                    "url": f"{self.base_url}/launch",
                    "appContext": json.dumps({"focus": kind, **(app_context or {})}),
                }
            ],
        }
        if suggestions:
            card["suggestions"] = suggestions
            card["selectionBehavior"] = "at-most-one"
        return CardOut(kind=kind, card=card)

    def replace_with(self, option: Any, drafts: list[Draft], recommended: bool) -> dict[str, Any]:
        actions: list[dict[str, Any]] = [
            {
                "type": "delete",
                "description": f"Remove the draft order for {d.text}",
                "resourceId": d.resource_id,
            }
            for d in drafts
            if d.resource_id is not None
        ]
        for ingredient in option.ingredients:
            drug = self.kb.drugs.get(ingredient)
            if drug is not None and drug.role in ("supportive",):
                continue
            actions.append(
                {
                    "type": "create",
                    "description": f"Propose {ingredient} ({option.regimen}); dose to be completed",
                    "resource": proposal_medication_request(
                        self.patient_id,
                        ingredient,
                        drug.rxnorm_ingredient if drug else None,
                        self.user_id,
                    ),
                }
            )
        return {
            "label": f"Replace with {option.regimen}",
            "uuid": str(uuid.uuid4()),
            "isRecommended": recommended,
            "actions": actions,
        }

    def genotype_suggestion(self) -> dict[str, Any]:
        return {
            "label": "Order an HIV-1 genotypic resistance test",
            "uuid": str(uuid.uuid4()),
            "isRecommended": True,
            "actions": [
                {
                    "type": "create",
                    "description": "Draft order for a genotypic resistance test",
                    "resource": genotype_service_request(self.patient_id),
                }
            ],
        }


def _failure_of(
    analysis: PatientAnalysis, domain: str, regimen: str | None, drugs: set[str]
) -> Failure | None:
    """The most recent failure of a line that the order repeats (by regimen, else by drug)."""
    for failure in sorted(analysis.failures, key=lambda f: f.when, reverse=True):
        line = next(
            (
                ln
                for ln in analysis.lines
                if ln.number == failure.line and ln.domain == domain and not ln.maintenance
            ),
            None,
        )
        if line is None:
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


def _evidence(kb: KnowledgeBase, keys: tuple[str, ...]) -> str:
    return "; ".join(
        f"[{kb.evidence[k].label}]({kb.evidence[k].url})" for k in keys if k in kb.evidence
    )


def _options_lines(kb: KnowledgeBase, rec: Recommendation, avoid: set[str]) -> list[str]:
    lines = []
    for option in rec.options:
        if avoid & set(option.ingredients):
            continue
        lines.append(
            f"- **{option.rank}. {option.regimen}**: {option.rationale[0]} "
            f"({_evidence(kb, option.evidence)})"
        )
    return lines


def order_cards(
    kb: KnowledgeBase,
    analysis: PatientAnalysis,
    rec: Recommendation,
    drafts: list[Draft],
    builder: CardBuilder,
    as_of: date,
) -> list[CardOut]:
    if not drafts:
        return []
    draft_drugs = frozenset().union(*(d.ingredients for d in drafts))
    cards: list[CardOut] = []
    disease = rec.disease or ""
    domain = "hiv" if disease == "hiv" else "oncology"
    backbone = kb.pathways.get(disease, {}).get("backbone_drugs", frozenset())
    failed_drugs, failed_regimens = what_failed(analysis, domain, backbone)
    named = kb.regimen_named(draft_drugs)
    repeats = sorted(d for d in draft_drugs if d in failed_drugs)
    regimen_options = [o for o in rec.options if o.kind == "regimen"]
    if repeats or (named and named in failed_regimens):
        what = named if named and named in failed_regimens else ", ".join(repeats)
        reason = failed_regimens.get(named or "") or failed_drugs[repeats[0]]
        f = (
            _failure_of(analysis, domain, named if named in failed_regimens else None, set(repeats))
            or rec.failure
        )
        summary = (
            f"This order repeats {what}, which failed ({f.kind}, {f.when.isoformat()})"
            if f
            else f"This order repeats {what}, which failed before"
        )
        if f and f.kind == "intolerance":
            summary = f"This order repeats {what}, which was not tolerated ({f.when.isoformat()})"
        detail = [f"**{summary}.**", "", f"Evidence in the record: {reason}."]
        if f is not None:
            detail.append(f"Failure: {f.detail}.")
        if regimen_options:
            detail += [
                "",
                "Salvage options that fit this patient:",
                *_options_lines(kb, rec, set(repeats)),
            ]
        suggestions = [
            builder.replace_with(o, drafts, i == 0)
            for i, o in enumerate(
                o for o in regimen_options if not set(o.ingredients) & set(repeats)
            )
        ][:3]
        if disease == "hiv" and f and f.kind == "virologic-failure":
            suggestions.insert(0, builder.genotype_suggestion())
        cards.append(
            builder.card(
                "repeats-failed-therapy",
                "warning",
                summary,
                detail,
                suggestions,
                {"line": f.line if f else None},
            )
        )
    contraindicated = contraindications.drug_contraindications(
        draft_drugs, analysis.record, kb, as_of
    )
    if contraindicated:
        drugs = sorted({drug for drug, _ in contraindicated})
        summary = f"{', '.join(drugs)}: contraindicated by this patient's data"
        detail = [f"**{summary}.**", "", *[f"- {why}" for _, why in contraindicated]]
        alternatives = [o for o in regimen_options if not set(o.ingredients) & set(drugs)]
        if alternatives:
            detail += [
                "",
                "Alternatives without these drugs:",
                *_options_lines(kb, rec, set(drugs)),
            ]
        suggestions = [
            builder.replace_with(o, drafts, i == 0) for i, o in enumerate(alternatives[:3])
        ]
        cards.append(builder.card("contraindicated-drug", "warning", summary, detail, suggestions))
    if disease == "hiv" and rec.failure and rec.failure.kind == "virologic-failure" and not repeats:
        arvs = {d for d in draft_drugs if kb.drugs.get(d) and kb.drugs[d].role == "antiretroviral"}
        current = next((ln for ln in analysis.lines if ln.domain == "hiv" and ln.end is None), None)
        if len(arvs) == 1 and current is not None:
            summary = "Adding one drug to a failing antiretroviral regimen risks more resistance"
            detail = [
                f"**{summary}.**",
                "",
                f"Virologic failure on {current.regimen}: {rec.failure.detail}.",
                "Build a new regimen with at least two fully active drugs, one with a high "
                "resistance barrier, guided by a genotype "
                f"({_evidence(kb, ('DHHS-ART',))}).",
            ]
            cards.append(
                builder.card(
                    "single-active-drug",
                    "warning",
                    summary,
                    detail,
                    [builder.genotype_suggestion()],
                )
            )
    if cards:
        return cards
    matching = next(
        (
            o
            for o in rec.options
            if o.ingredients
            and set(o.ingredients) <= draft_drugs | {"mesna"}
            and draft_drugs <= set(o.ingredients)
        ),
        None,
    )
    if matching is not None and matching.cautions:
        summary = f"{matching.regimen}: arrange the monitoring it needs"
        detail = [
            f"**{summary}.**",
            "",
            *[f"- {c}" for c in matching.cautions],
            "",
            f"Evidence: {_evidence(kb, matching.evidence)}.",
        ]
        return [builder.card("salvage-monitoring", "info", summary, detail)]
    return []


def patient_view_cards(
    kb: KnowledgeBase,
    analysis: PatientAnalysis,
    rec: Recommendation,
    builder: CardBuilder,
    as_of: date,
) -> list[CardOut]:
    failure = rec.failure
    if failure is None or not rec.options:
        return []
    threshold = DELAY_DAYS.get(rec.disease or "", 30)
    started_after = any(
        line.start > failure.when and not line.maintenance for line in analysis.lines
    )
    waited = (as_of - failure.when).days
    if started_after or waited <= threshold:
        return []
    summary = (
        f"No new treatment {waited} days after {failure.kind} on "
        f"{failure.when.isoformat()}: delays may reduce effectiveness"
    )
    detail = [
        f"**{summary}.**",
        "",
        f"{failure.detail}.",
        "",
        "Salvage options that fit this patient:",
        *_options_lines(kb, rec, set()),
    ]
    if rec.missing_data:
        detail += [
            "",
            "Missing data that could change the advice:",
            *[f"- {m}" for m in rec.missing_data],
        ]
    suggestions = (
        [builder.genotype_suggestion()]
        if rec.disease == "hiv" and failure.kind == "virologic-failure"
        else None
    )
    return [
        builder.card("salvage-delay", "info", summary, detail, suggestions, {"line": failure.line})
    ]
