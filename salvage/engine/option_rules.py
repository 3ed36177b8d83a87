"""Whether a pathway option fits this patient beyond its failure and timing: drug classes that
already failed, and the performance status the trial behind the option enrolled.

Rules and their reasons come from the knowledge data (class_rules.yaml, pathways.yaml
when.max_ecog / when.after_class_failure, patient_rules.yaml performance_status)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from salvage.engine.analysis import PatientAnalysis
from salvage.engine.factors import Fact
from salvage.engine.model import Failure, Line
from salvage.knowledge.model import KnowledgeBase, OptionEntry

FAILURE_KINDS_THAT_RULE_OUT_A_CLASS = ("refractory", "relapse")


@dataclass(frozen=True, kw_only=True, slots=True)
class Fit:
    """What a rule says about one option: reasons to exclude it, cautions, values to re-check."""

    reasons: tuple[str, ...] = ()
    cautions: tuple[str, ...] = ()
    recheck: tuple[str, ...] = ()


def _class_ruling_failures(
    analysis: PatientAnalysis, failure: Failure, domain: str
) -> Iterator[tuple[Failure, Line]]:
    """Open failures of this disease that can rule a class out, each with the line that failed."""
    for f in analysis.failures:
        if f.kind not in FAILURE_KINDS_THAT_RULE_OUT_A_CLASS or f.closed_by:
            continue
        if f.disease != failure.disease:
            continue
        line = next(
            (
                ln
                for ln in analysis.lines
                if ln.number == f.line and ln.domain == domain and ln.disease == f.disease
            ),
            None,
        )
        if line is not None:
            yield f, line


def failed_classes(
    analysis: PatientAnalysis, failure: Failure, kb: KnowledgeBase, domain: str
) -> dict[str, str]:
    """Exclusive classes (class_rules.yaml) of lines of this disease that failed, each with the
    line and failure that rule the class out."""
    found: dict[str, str] = {}
    for f, line in _class_ruling_failures(analysis, failure, domain):
        for drug in line.ingredients:
            for cls in kb.drugs[drug].classes if drug in kb.drugs else ():
                if cls in kb.exclusive_classes:
                    found.setdefault(
                        cls,
                        f"{drug} (line {line.number}, {line.regimen}) {f.kind} on "
                        f"{f.when.isoformat()} ({', '.join(f.sources[:2])})",
                    )
    return found


def class_fit(
    option: OptionEntry, components: frozenset[str], failed: dict[str, str], kb: KnowledgeBase
) -> Fit:
    """An option containing a drug of a class that already failed is excluded, unless the option
    names that class in when.after_class_failure."""
    reasons = []
    for drug in sorted(components):
        for cls in sorted(kb.drugs[drug].classes if drug in kb.drugs else ()):
            if (
                cls in failed
                and cls not in option.when.after_class_failure
                and cls not in option.when.rechallenge_after_months
            ):
                reasons.append(
                    f"{kb.exclusive_classes[cls]} already failed: {failed[cls]}; the evidence "
                    f"for this option ({', '.join(option.evidence)}) is in patients who had "
                    f"not received it"
                )
    return Fit(reasons=tuple(dict.fromkeys(reasons)))


def failed_class_intervals(
    analysis: PatientAnalysis, failure: Failure, kb: KnowledgeBase, domain: str
) -> dict[str, float | None]:
    """For each exclusive class that failed, the shortest interval in months between the end of
    a line containing it and its failure (None: refractory, or the interval is unknown)."""
    found: dict[str, float | None] = {}
    for f, line in _class_ruling_failures(analysis, failure, domain):
        interval = f.relapse_interval_months if f.kind == "relapse" else None
        for drug in line.ingredients:
            for cls in kb.drugs[drug].classes if drug in kb.drugs else ():
                if cls not in kb.exclusive_classes:
                    continue
                before = found.get(cls, float("inf"))
                if interval is None or before is None:
                    found[cls] = None
                else:
                    found[cls] = min(before, interval)
    return found


def performance_fit(option: OptionEntry, performance: Fact | None, kb: KnowledgeBase) -> Fit:
    """A current ECOG above the trial's entry limit excludes the option, or, for an option marked
    ecog_beyond_trial: caution, up to the knowledge base's limit, keeps it with a cited caution
    (a targeted agent for a driver alteration is given outside its trial's ECOG range: ESMO 2023);
    a stale one asks for a re-check; at poor performance (ECOG 3-4) anticancer options carry a
    caution."""
    if performance is None or option.kind == "care":
        return Fit()
    ecog = performance.value
    ceiling = option.when.max_ecog
    rules = kb.patient_rules.performance_status
    if ceiling is not None and ecog > ceiling:
        text = (
            f"the trial behind it ({', '.join(option.evidence)}) enrolled ECOG 0-{ceiling}; "
            f"this patient: {performance.text}"
        )
        if performance.stale:
            return Fit(recheck=(f"re-check performance status before use: {text}",))
        beyond = rules.beyond_trial
        if option.when.ecog_beyond_trial == "caution" and beyond and ecog <= beyond.up_to_ecog:
            cite = ", ".join(kb.evidence[k].label for k in beyond.evidence if k in kb.evidence)
            return Fit(
                cautions=(f"outside the trial population: {text}; {beyond.caution} [{cite}]",)
            )
        return Fit(reasons=(text,))
    if ecog >= rules.supportive_care_first_at_ecog:
        return Fit(
            cautions=(
                f"{performance.text}: benefit of anticancer therapy at this performance status "
                "is uncertain; discuss goals of care and palliative care first",
            )
        )
    return Fit()


def supportive_care_first(performance: Fact | None, kb: KnowledgeBase) -> bool:
    """Palliative and supportive care leads the options at a poor, current performance status.
    An old poor value does not set the order (the patient may have recovered): it asks for a
    re-check, and every anticancer option carries its caution (performance_fit)."""
    rules = kb.patient_rules.performance_status
    return (
        performance is not None
        and not performance.stale
        and performance.value >= rules.supportive_care_first_at_ecog
    )


def prior_class_fit(option: OptionEntry, received: frozenset[str], kb: KnowledgeBase) -> Fit:
    """An option whose trial enrolled patients after given drug classes is excluded when this
    patient has received none of a required class (its rationale would not describe them)."""
    reasons: list[str] = []
    any_of = option.when.prior_any_classes
    if any_of and not set(any_of) & received:
        reasons.append(
            f"the trial behind it ({', '.join(option.evidence)}) enrolled patients who had "
            f"received chemotherapy (at least one of {', '.join(map(kb.class_label, any_of))}); "
            "none recorded for this patient"
        )
    lacking = [c for c in option.when.prior_classes if c not in received]
    if lacking:
        reasons.append(
            f"the trial behind it ({', '.join(option.evidence)}) enrolled patients who had "
            f"received {' and '.join(map(kb.class_label, option.when.prior_classes))}; not "
            f"recorded for this patient: {', '.join(map(kb.class_label, lacking))}"
        )
    return Fit(reasons=tuple(reasons))


def received_classes(
    analysis: PatientAnalysis, failure: Failure, kb: KnowledgeBase
) -> frozenset[str]:
    """Drug classes of every line of the failing disease, whatever their outcome."""
    return frozenset(
        cls
        for line in analysis.lines
        if line.disease == failure.disease or failure.disease is None
        for drug in line.ingredients
        if drug in kb.drugs
        for cls in kb.drugs[drug].classes
    )


def naive_class_fit(option: OptionEntry, received: dict[str, str], kb: KnowledgeBase) -> Fit:
    """An option whose trial enrolled patients who had not received a class (AETHERA:
    brentuximab-naive; immunotherapy-naive, CDK4/6-inhibitor-naive) is excluded when this patient
    has received it, whatever the outcome."""
    given = [received[c] for c in option.when.not_after_classes if c in received]
    if not given:
        return Fit()
    return Fit(
        reasons=(
            f"the trial behind it ({', '.join(option.evidence)}) enrolled patients who had not "
            f"received {' or '.join(map(kb.class_label, option.when.not_after_classes))}; this "
            "patient received "
            f"{'; '.join(dict.fromkeys(given))}",
        )
    )


def sequencing_fit(components: frozenset[str], received: dict[str, str], kb: KnowledgeBase) -> Fit:
    """Cautions from the order of therapies (class_rules.yaml sequencing): what the patient
    received before this option, or what may still be needed after it. `received` maps each drug
    given for the disease to where it was given."""
    classes_of = {d: kb.drugs[d].classes if d in kb.drugs else frozenset() for d in components}
    option_classes = frozenset(c for cs in classes_of.values() for c in cs)
    received_classes = frozenset(c for d in received if d in kb.drugs for c in kb.drugs[d].classes)
    cautions: list[str] = []
    for rule in kb.sequencing:
        if not (set(rule.option_classes) & option_classes or set(rule.option_drugs) & components):
            continue
        if rule.not_received_classes and set(rule.not_received_classes) & received_classes:
            continue
        prior = [d for d in sorted(received) if d in rule.prior_drugs] + [
            d
            for d in sorted(received)
            if d in kb.drugs and set(rule.prior_classes) & kb.drugs[d].classes
        ]
        if (rule.prior_drugs or rule.prior_classes) and not prior:
            continue
        given = "; ".join(dict.fromkeys(f"{d}: {received[d]}" for d in prior))
        cite = ", ".join(kb.evidence[k].label for k in rule.evidence if k in kb.evidence)
        cautions.append(f"{rule.caution}{f' ({given})' if given else ''} [{cite}]")
    return Fit(cautions=tuple(cautions))


def received_by_class(
    analysis: PatientAnalysis, failure: Failure, kb: KnowledgeBase
) -> dict[str, str]:
    """For each drug class given in any line of the failing disease, the first drug and line
    that gave it ("pembrolizumab, line 1 (Carboplatin-pemetrexed-pembrolizumab)")."""
    found: dict[str, str] = {}
    for line in sorted(analysis.lines, key=lambda ln: ln.start):
        if not (line.disease == failure.disease or failure.disease is None):
            continue
        for drug in line.ingredients:
            for cls in sorted(kb.drugs[drug].classes) if drug in kb.drugs else ():
                found.setdefault(cls, f"{drug} in line {line.number} ({line.regimen})")
    return found
