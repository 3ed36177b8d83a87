"""Render the engine's order findings as CDS Hooks 2.0 cards: one card per finding.

The rules themselves (what repeats a failure, what is contraindicated, when a delay is too long)
live in salvage/engine/order_checks.py; this module only words the cards, links the evidence and
builds the suggestions (delete the drafts, create proposals).
"""

from __future__ import annotations

import itertools
import json
import uuid
from dataclasses import dataclass
from typing import Any

from salvage.engine import wording
from salvage.engine.hiv_regimens import HivOption
from salvage.engine.order_checks import DraftOrder, OrderFinding
from salvage.engine.recommend import Option, Recommendation
from salvage.fhir.emit import (
    genotype_service_request,
    proposal_medication_request,
    referral_service_request,
)
from salvage.knowledge.model import KnowledgeBase

OVERRIDE_REASONS = [
    ("clinical-trial", "Patient is enrolled in a clinical trial"),
    ("patient-preference", "Patient's informed preference"),
    ("benefit-outweighs-risk", "Expected benefit outweighs the risk for this patient"),
    ("data-incorrect", "The record is incomplete or incorrect"),
    ("local-pathway", "Following the local pathway or a multidisciplinary team decision"),
]


# Comparison operators as a reader writes them, not as code does (issue 15 item 9).
READABLE = {">=": "≥", "<=": "≤"}


def plain(text: str) -> str:
    for code, sign in READABLE.items():
        text = text.replace(code, sign)
    return text


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
        disease: str | None = None,
    ) -> CardOut:
        disclaimer = self.kb.disclaimer_for(disease)
        detail_text = plain(
            "\n".join([*detail, "", f"*Knowledge base {self.kb.version}. {disclaimer}*"])
        )
        summary = plain(summary)
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

    def replace_with(
        self, option: Option, drafts: tuple[DraftOrder, ...], recommended: bool
    ) -> dict[str, Any] | None:
        """A suggestion that deletes the drafts and proposes every drug of the option; None when
        the option is not a complete regimen (a test, an optimised-background prompt) or when the
        proposals would be fewer than the drugs the option requires."""
        if option.kind != "regimen" or (isinstance(option, HivOption) and option.construct):
            return None
        actions: list[dict[str, Any]] = [
            {
                "type": "delete",
                "description": f"Remove the draft order for {d.text}",
                "resourceId": d.resource_id,
            }
            for d in drafts
            if d.resource_id  # a draft without an id cannot be named in a delete action
        ]
        referral = self._referral(option)
        if referral is not None:  # CAR-T: a referral to a certified centre, not drug orders
            actions.append(
                {
                    "type": "create",
                    "description": f"Refer for {option.regimen}",
                    "resource": referral_service_request(self.patient_id, referral, self.user_id),
                }
            )
        for ingredient in () if referral is not None else option.ingredients:
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
        # Creates first: the CDS Hooks sandbox applies only the first applicable action of a
        # suggestion (issue 18, quirk 28), and the proposal is what the clinician asked for.
        actions.sort(key=lambda a: a["type"] != "create")
        created = sum(a["type"] == "create" for a in actions)
        required = option.min_drugs if isinstance(option, HivOption) else 0
        if created == 0 or created < required:
            return None
        return {
            "label": f"Consider {option.regimen} instead",
            "uuid": str(uuid.uuid4()),
            "isRecommended": recommended,
            "actions": actions,
        }

    def _referral(self, option: Option) -> str | None:
        """The referral a therapy needs instead of drug orders (order_checks.yaml referrals)."""
        referrals = self.kb.order_checks.referrals
        for ingredient in option.ingredients:
            drug = self.kb.drugs.get(ingredient)
            for cls in sorted(drug.classes) if drug else ():
                if cls in referrals:
                    return referrals[cls]
        return None

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


_MARKDOWN_SPECIAL = str.maketrans(
    {c: f"\\{c}" for c in "\\`*_[]~"} | {"<": "&lt;", ">": "&gt;", "&": "&amp;"}
)


def markdown_text(text: str) -> str:
    """Text from the record (drug names, free-text reasons) as literal Markdown: the CDS Hooks
    sandbox renders `detail` as GitHub-flavoured Markdown with raw HTML enabled (quirk 28), so
    neither markup nor HTML in a record may reach it unescaped; one line, no structure."""
    return " ".join(text.split()).translate(_MARKDOWN_SPECIAL)


def _evidence(kb: KnowledgeBase, keys: tuple[str, ...]) -> str:
    return "; ".join(
        f"[{kb.evidence[k].label}]({kb.evidence[k].url})"
        for k in dict.fromkeys(keys)
        if k in kb.evidence
    )


def _hiv_note(option: Option) -> str:
    """For HIV options: the drugs, how many are fully active (each named), the companions of an
    optimised background, and whether it is only a prompt."""
    if not isinstance(option, HivOption) or not option.ingredients:
        return ""
    note = f" Drugs: {', '.join(option.ingredients)}. " + " ".join(
        line.rstrip(".") + "." for line in option.summary
    )
    if option.construct:
        note += (
            " A prompt to build the regimen from these fully active drugs in the app, not an "
            "order (never the agent alone)."
        )
    return note


def _record(text: str) -> str:
    """Record-derived text as literal Markdown, with comparisons as a reader writes them."""
    return markdown_text(plain(text))


def _meta(option: Option) -> str:
    """Intent and evidence level, as the screen's tags show them (no brackets: a Markdown
    renderer could read them as a link)."""
    parts = [option.intent_label or option.intent]
    if option.evidence_level:
        parts.append(f"evidence: {option.evidence_level}")
    shown = [p for p in parts if p]
    return f" · *{'; '.join(shown)}*" if shown else ""


def fit_sentences(option: Option) -> list[str]:
    """What the option's fit rests on, what could not be checked and what was inferred (issue
    15 item 8)."""
    sentences = []
    if option.fits_because:
        sentences.append(f"Fits because: {_record('; '.join(option.fits_because))}.")
    if option.not_checked:
        sentences.append(f"**Not checked:** {_record('; '.join(option.not_checked))}.")
    sentences += [f"*Inferred:* {_record(fact)}." for fact in option.inferred]
    if option.set_aside:
        sentences.append(
            f"Other evidence for this regimen set aside: {_record('; '.join(option.set_aside))}."
        )
    return sentences


def _options_lines(
    kb: KnowledgeBase, rec: Recommendation, avoid: frozenset[str], proposed: frozenset[str]
) -> list[str]:
    """One list item per fitting option with its intent and evidence level; an option that holds
    only on one branch of an unknown fact ("if transplant candidate") or rests on a stale value
    says so, as on the screen; the options the card proposes also say, in the same item (no
    nested list, which some CDS clients flatten), what they fit and what was not checked."""
    lines: list[str] = []
    for option in rec.options:
        if avoid & set(option.ingredients):
            continue
        fit = fit_sentences(option) if option.option_id in proposed else []
        lines.append(
            f"- **{option.rank}. {option.regimen}**"
            + (f" *({option.branch})*" if option.branch else "")
            + _meta(option)
            + f": {option.rationale[0]}{_hiv_note(option)} "
            f"({_evidence(kb, option.evidence)})"
            + "".join(f" **{r}**." for r in option.recheck)
            + "".join(f" {s}" for s in fit)
        )
    for step in rec.after_salvage:  # consolidation: the step after salvage, not ranked with it
        lines.append(
            f"- **Then, after salvage: {step.regimen}**"
            + (f" *({step.branch})*" if step.branch else "")
            + f": {'; '.join(step.rank_reasons)} ({_evidence(kb, step.evidence)})"
        )
    return lines


def render(
    finding: OrderFinding,
    rec: Recommendation,
    drafts: tuple[DraftOrder, ...],
    builder: CardBuilder,
) -> CardOut:
    """One card: the facts (the summary is the card's title, not repeated), the fitting options,
    the rule's evidence, missing data; suggestions propose up to three options in place of the
    drafts (or a genotype). An option proposed or endorsed says what it fits and what was not
    checked."""
    kb = builder.kb
    summary = finding.summary
    detail: list[str] = []
    if finding.kind == "salvage-delay":
        detail += _delay_lines(finding)
    if rec.stale_failure:  # an old failure may not describe the disease now
        detail += [f"**{wording.sentence(rec.stale_failure)}.**", ""]
    if finding.option is not None:  # a draft matches this option: never imply an unchecked fit
        option = finding.option
        detail += [
            f"The drafts match option {option.rank}, **{option.regimen}**"
            + (f" *({option.branch})*" if option.branch else "")
            + f"{_meta(option)}.",
            *(f"- {s}" for s in fit_sentences(option)),
            "",
            "Monitoring it needs:",
        ]
        if option.not_checked or option.branch:
            summary = f"{option.regimen}: matches a listed option, but its fit could not be checked"
    detail += [
        f"- {_record(fact)}" if finding.bullet_facts else _record(fact) for fact in finding.facts
    ]
    if finding.evidence:
        detail += ["", f"Evidence: {_evidence(kb, finding.evidence)}."]
    # At most three suggestions; each is validated as FHIR R4B, so stop building at three.
    built = (
        (option, builder.replace_with(option, drafts, False)) for option in finding.replacements
    )
    chosen = list(itertools.islice(((o, s) for o, s in built if s is not None), 3))
    suggestions = [s for _, s in chosen]
    proposed = frozenset(o.option_id for o, _ in chosen)
    if finding.kind == "salvage-delay":  # the reminder lists options: say what each rests on
        proposed = frozenset(o.option_id for o in rec.options[:3])
    if finding.options_heading:
        detail += ["", finding.options_heading, *_options_lines(kb, rec, finding.avoid, proposed)]
    if finding.missing_data:
        detail += [
            "",
            "Missing data that could change the advice:",
            *[f"- {_record(m)}" for m in finding.missing_data if m != rec.stale_failure],
        ]
    if rec.goals_of_care and finding.kind in ("salvage-delay", "repeats-failed-therapy"):
        detail += [
            "",
            f"**Goals of care:** {rec.goals_of_care} "
            f"(shown because {'; '.join(rec.goals_of_care_because)}; "
            f"{_evidence(kb, rec.goals_of_care_evidence)}).",
        ]
    unsettled = _branches_unsettled(rec, [o for o, _ in chosen])
    if unsettled:
        detail += ["", unsettled]
    elif suggestions:
        suggestions[0]["isRecommended"] = True
    if finding.suggest_genotype:
        suggestions.insert(0, builder.genotype_suggestion())
    return builder.card(
        finding.kind,
        finding.severity,
        summary,
        detail,
        suggestions or None,
        {"line": finding.failure.line if finding.failure else None} if finding.failure else None,
        disease=rec.disease,
    )


def _branches_unsettled(rec: Recommendation, proposed: list[Option]) -> str | None:
    """Why no suggestion is pre-selected, when transplant candidacy is unknown and the proposed
    options lie on different branches of it: pre-selecting one would decide the candidacy for
    the clinician (CDS Hooks isRecommended marks the one the service advises)."""
    branches = {o.branch for o in proposed}
    if rec.transplant is None or rec.transplant.status != "unknown" or len(branches) < 2:
        return None
    each = "; ".join(
        f"{o.regimen} {o.branch or 'whether or not a transplant candidate'}" for o in proposed
    )
    return (
        "No suggestion is pre-selected: transplant candidacy is unknown, and the suggestions "
        f"differ by it ({each}). Decide the candidacy first."
    )


def _delay_lines(finding: OrderFinding) -> list[str]:
    """The patient-view reminder acknowledges legitimate waits (issue 15 item 9)."""
    failure = finding.failure
    since = (
        f"the {failure.kind.replace('-', ' ')} on {failure.when.isoformat()}"
        if failure
        else "the failure"
    )
    lines = [
        f"No new line of therapy is recorded since {since}; if a plan is in place, no action is "
        "needed (a referral, cell collection, bridging therapy or treatment given elsewhere may "
        "not be in the record yet).",
    ]
    if finding.threshold_days is not None:
        lines.append(
            f"This reminder appears {wording.counted(finding.threshold_days, 'day')} after a "
            "failure"
            + (f"; it {finding.threshold_note}" if finding.threshold_note else "")
            + ". A delay in starting salvage may reduce its effectiveness."
        )
    return [*lines, ""]
