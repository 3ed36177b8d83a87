"""Detect treatment failures from the record, each dated when its definition is first met.

Oncology (failures.yaml): a progression signal is a disease status 'worsened', or a recurrence or
relapse Condition coded as the disease the line treats. A line is active until one cycle length
after its last dose; progression then is refractory disease, later it is relapse. Progression on or
soon after the disease's first line is primary refractory. A later remission or 'improved' status
closes a failure. Prostate (AUA/ASTRO, Phoenix) and HIV (DHHS) compare values with their thresholds
honouring the lab's comparator: a value that cannot be placed is indeterminate, never a failure.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import replace
from datetime import date, timedelta
from typing import NamedTuple

from salvage.engine import attribution
from salvage.engine.dates import months_between
from salvage.engine.measures import side
from salvage.engine.model import (
    ConditionRecord,
    DataWarning,
    Failure,
    Line,
    Measurement,
    PatientRecord,
)
from salvage.engine.wording import counted
from salvage.knowledge.model import KnowledgeBase, PostRadiotherapyRule


class _Episode(NamedTuple):  # a tuple: built per line of every patient, cheaper than a dataclass
    number: int
    start: date
    last_active: date  # last day any drug of the line was active
    active_until: date  # last_active + one cycle length: still 'on' the line
    regimen: str
    ongoing: bool = False  # no stop date as of the analysis: last_active is the as-of date
    best_response: str = "unknown"  # of the line (response.assign), before this failure


class _Signal(NamedTuple):
    when: date
    source: str
    detail: str


def _episodes(lines: list[Line], kb: KnowledgeBase) -> list[_Episode]:
    """One episode per line number (its maintenance included), in order of start."""
    grouped: dict[int, list[Line]] = {}
    for line in lines:
        if line.domain == "oncology":
            grouped.setdefault(line.number, []).append(line)
    out = []
    for number, parts in grouped.items():
        main = next((p for p in parts if not p.maintenance), parts[0])
        last = max(p.last_active for p in parts)
        cycle = timedelta(days=kb.cycle_days(main.regimen))
        ongoing = any(p.end is None for p in parts)
        out.append(
            _Episode(
                number,
                min(p.start for p in parts),
                last,
                last + cycle,
                main.regimen,
                ongoing,
                main.best_response,
            )
        )
    return sorted(out, key=lambda e: e.start)


def _applies(
    m: Measurement, disease: str | None, kb: KnowledgeBase, record: PatientRecord, unfocused: bool
) -> bool:
    """Whether a disease-status observation is about this disease: by its focus Condition, else
    only when this is the patient's one active cancer (a status without focus is ambiguous)."""
    if m.focus:
        named = {
            d
            for c in record.conditions
            if c.source in m.focus
            for d in attribution.condition_diseases(c, kb)
        }
        return disease in named
    return unfocused


applies_to = _applies  # the same attribution rule for response assessment (response.py)


def oncology_failures(
    record: PatientRecord,
    lines: list[Line],
    kb: KnowledgeBase,
    *,
    disease: str | None,
    as_of: date,
    unfocused: bool = True,
    warnings: list[DataWarning] | None = None,
) -> list[Failure]:
    """Failures of one disease's lines. `unfocused`: disease-status observations without a focus
    apply to this disease (it is the patient's only active cancer)."""
    spec = kb.failures.oncology
    episodes = _episodes(lines, kb)
    if not episodes:
        return []
    evidence = tuple(spec.evidence)
    primary_evidence = tuple(spec.primary_refractory.evidence)
    primary_days = int(spec.primary_refractory.days_after_first_line)
    first = episodes[0].number
    found: list[Failure] = []
    # Primary refractoriness is defined for the lymphomas (SCHOLAR-1, ZUMA-7); elsewhere a first
    # line that controlled the disease for months and then lost it is not "primary refractory".
    defined = disease in spec.primary_refractory.diseases
    progressions, remissions = _signals(
        record, kb, disease, as_of, unfocused, warnings, episodes[0].start
    )

    def is_primary(number: int) -> bool:
        """First line, in a disease where the term is defined (SCHOLAR-1, ZUMA-7). An interim
        'improved' status is not a complete response, so it does not change this."""
        return defined and number == first

    def refractory(
        signal: _Signal, episode: _Episode, detail: str, *, primary: bool, cite: bool
    ) -> None:
        """Refractory disease of this line; `cite`: the primary-refractory sources apply."""
        found.append(
            Failure(
                kind="refractory",
                when=signal.when,
                line=episode.number,
                sources=(signal.source,),
                detail=detail,
                evidence=evidence + (primary_evidence if cite else ()),
                disease=disease,
                primary=primary,
            )
        )

    def progression(signal: _Signal) -> None:
        when = signal.when
        during = [e for e in episodes if e.start <= when <= e.active_until]
        if during:
            episode = during[-1]
            primary = is_primary(episode.number)
            # an ongoing line's last_active is the as-of date, not a dose
            active = (
                "(ongoing, no stop date recorded)"
                if episode.ongoing
                else f"(until one cycle after its last dose on {episode.last_active.isoformat()})"
            )
            refractory(
                signal,
                episode,
                f"{signal.detail} while line {episode.number} was active {active}"
                + (": primary refractory" if primary else ""),
                primary=primary,
                cite=primary,
            )
            return
        before = [e for e in episodes if e.active_until < when]
        if not before:
            return  # progression before any treatment is not a treatment failure
        episode = max(before, key=lambda e: e.last_active)
        days = (when - episode.last_active).days
        if is_primary(episode.number) and days <= primary_days:
            refractory(
                signal,
                episode,
                f"{signal.detail} {counted(days, 'day')} after first-line therapy ended "
                f"({episode.last_active.isoformat()}): primary refractory (within "
                f"{counted(primary_days, 'day')})",
                primary=True,
                cite=True,
            )
            return
        if defined and episode.best_response in spec.primary_refractory.no_response:
            # SCHOLAR-1: stable or progressive disease as the best response to a line is
            # refractory disease, whenever the progression is found (a line never controlled it)
            primary = is_primary(episode.number)
            refractory(
                signal,
                episode,
                f"{signal.detail} {counted(days, 'day')} after line {episode.number} ended "
                f"({episode.last_active.isoformat()}), which gave no response (best response: "
                f"{episode.best_response})" + (": primary refractory" if primary else ""),
                primary=primary,
                cite=True,
            )
            return
        interval = months_between(episode.last_active, when)
        found.append(
            Failure(
                kind="relapse",
                when=when,
                line=episode.number,
                sources=(signal.source,),
                detail=f"{signal.detail} {interval} {'month' if interval == 1 else 'months'} "
                f"after line {episode.number} ended "
                f"({episode.last_active.isoformat()})",
                evidence=evidence,
                relapse_interval_months=interval,
                disease=disease,
            )
        )

    for signal in progressions:
        progression(signal)

    no_response = set(spec.stop_reasons.no_response)
    not_tolerated = set(spec.stop_reasons.not_tolerated)
    # Only exposures stopped for one of these reasons can fail a line: found once, in record order.
    stopped = [
        e
        for e in record.exposures
        if e.stop_reasons and (e.stop_reasons & no_response or e.stop_reasons & not_tolerated)
    ]
    for line in lines if stopped else ():
        if line.domain != "oncology":
            continue
        for exposure in stopped:
            if exposure.source not in line.sources:
                continue
            stopped_on = exposure.end or exposure.start
            drugs = ", ".join(sorted(exposure.ingredients))
            if exposure.stop_reasons & no_response:
                primary = is_primary(line.number)
                found.append(
                    Failure(
                        kind="refractory",
                        when=stopped_on,
                        line=line.number,
                        sources=(exposure.source,),
                        detail=f"{drugs} stopped for no response on {stopped_on.isoformat()}"
                        + (": primary refractory" if primary else ""),
                        evidence=evidence + (primary_evidence if primary else ()),
                        disease=disease,
                        primary=primary,
                    )
                )
            if exposure.stop_reasons & not_tolerated:
                found.append(
                    Failure(
                        kind="intolerance",
                        when=stopped_on,
                        line=line.number,
                        sources=(exposure.source,),
                        detail=f"{drugs} stopped as not tolerated on {stopped_on.isoformat()}",
                        evidence=evidence,
                        disease=disease,
                    )
                )
    return _close(merge_failures(found), progressions, remissions)


def _signals(
    record: PatientRecord,
    kb: KnowledgeBase,
    disease: str | None,
    as_of: date,
    unfocused: bool,
    warnings: list[DataWarning] | None,
    first_start: date,
) -> tuple[list[_Signal], list[_Signal]]:
    """(progression signals, remission signals) of one disease, up to as_of."""
    spec = kb.failures.oncology
    worsened = set(spec.disease_status.worsened)
    improved = set(spec.disease_status.improved)
    progressions: list[_Signal] = []
    remissions: list[_Signal] = []
    for m in record.measurements:
        if m.kind != "disease-status" or m.when > as_of:
            continue
        if not _applies(m, disease, kb, record, unfocused):
            continue
        if m.codes & worsened:
            progressions.append(
                _Signal(m.when, m.source, f"disease status 'worsened' on {m.when.isoformat()}")
            )
        elif m.codes & improved:
            remissions.append(
                _Signal(m.when, m.source, f"disease status 'improved' on {m.when.isoformat()}")
            )
    statuses = set(spec.condition_clinical_status)
    remission = set(spec.remission_clinical_status)
    own = [
        c
        for c in record.conditions
        if attribution.counts_as_disease(c, kb)
        and disease is not None
        and disease in attribution.condition_diseases(c, kb)
    ]  # a recurrent urinary tract infection says nothing about lymphoma
    for c in own:
        new_entry = _new_disease_entry(c, own, first_start, spec.relapse_text_cues)
        if new_entry == "doubt" and warnings is not None:
            warnings.append(
                DataWarning(
                    source=c.source,
                    problem=f"a second '{c.text or disease}' Condition dated after treatment "
                    "began, without a relapse status: record the disease status or mark the "
                    "Condition as a relapse",
                    failure_doubt=True,
                )
            )
        if c.clinical_status in statuses or new_entry == "relapse":
            when, dated = _relapse_date(c, first_start)
            if when is None:
                if warnings is not None:
                    warnings.append(
                        DataWarning(
                            source=c.source,
                            problem=f"{c.clinical_status} of '{c.text or disease}' cannot be "
                            "dated ("
                            + (dated or "no readable onset, abatement or recorded date")
                            + "): not used as a failure",
                        )
                    )
                continue
            if when > as_of:
                continue
            progressions.append(
                _Signal(
                    when,
                    c.source,
                    f"condition '{c.text or 'disease'}' "
                    f"{c.clinical_status if c.clinical_status in statuses else 'entered'} "
                    f"({dated})",
                )
            )
        elif c.clinical_status in remission and c.abatement is not None and c.abatement <= as_of:
            remissions.append(
                _Signal(
                    c.abatement,
                    c.source,
                    f"condition '{c.text or 'disease'}' {c.clinical_status} from "
                    f"{c.abatement.isoformat()}",
                )
            )
    return sorted(progressions, key=lambda s: s.when), sorted(remissions, key=lambda s: s.when)


_WORDS = re.compile(r"[a-z]+")


def _new_disease_entry(
    c: ConditionRecord, own: list[ConditionRecord], first_start: date, cues: list[str]
) -> str | None:
    """'relapse' for an active disease Condition dated after treatment began whose text names a
    relapse; 'doubt' for a second entry of the disease dated so without such words; else None."""
    if c.clinical_status not in (None, "active"):
        return None
    day = c.onset or c.recorded
    if day is None or day <= first_start:
        return None
    if not set(_WORDS.findall(c.text.lower())).isdisjoint(cues):
        return "relapse"
    earlier = any(
        o is not c and (o.onset or o.recorded or day) < day and o.source != c.source for o in own
    )
    return "doubt" if earlier else None


def _relapse_date(c: ConditionRecord, first_start: date) -> tuple[date | None, str]:
    """The date a relapse Condition dates the relapse, and how it was chosen: the onset, unless the
    onset precedes the first treatment (then it is the original diagnosis on a Condition whose
    status was later changed), then abatement, then recordedDate."""
    choices = [
        (
            c.onset
            if c.onset is not None
            else c.when
            if c.date_basis.startswith("onset")
            else None,
            c.date_basis if c.date_basis.startswith("onset") else "onset",
        ),
        (c.abatement, "abatement"),
        (c.recorded, "recordedDate"),
    ]
    skipped: list[str] = []
    for day, basis in choices:
        if day is None:
            continue
        if day > first_start:
            text = f"{basis} {day.isoformat()}"
            if basis != "recordedDate" and c.recorded is not None and c.recorded != day:
                text += f"; recorded {c.recorded.isoformat()}"
            text += "".join(f"; {s}" for s in skipped)
            return day, text
        skipped.append(f"{basis} {day.isoformat()} is before first-line therapy, not the relapse")
    return None, "; ".join(skipped)


def _close(
    failures: list[Failure], progressions: list[_Signal], remissions: list[_Signal]
) -> list[Failure]:
    """A failure followed by remission (or 'improved'), with no progression since, is closed."""
    if not remissions:
        return failures
    last_progression = max((s.when for s in progressions), default=date.min)
    out = []
    for f in failures:
        later = [r for r in remissions if r.when > f.when and r.when > last_progression]
        if f.kind in ("refractory", "relapse") and later:
            out.append(replace(f, closed_by=(later[-1].source,), closed_on=later[-1].when))
        else:
            out.append(f)
    return out


def psa_text(m: Measurement) -> str:
    """A PSA in the unit thresholds and options are stated in, with the unit it was recorded in
    when another (ug/L, ng/dL, ng/L: the factors of observations.yaml)."""
    return m.shown or m.raw or (f"{m.value:g}" if m.value is not None else "?")


def unconfirmed_psa_rise(record: PatientRecord, lines: list[Line], kb: KnowledgeBase) -> str | None:
    """After prostatectomy, a latest PSA at or above the threshold that no later value confirms
    yet: not a biochemical recurrence, but it asks for a repeat PSA (never silence)."""
    primary = primary_local_therapy(lines)
    if primary is None or primary.procedure != "prostatectomy":
        return None
    rule = kb.failures.prostate.post_prostatectomy
    threshold = float(rule.threshold_ng_per_ml)
    psa = sorted(
        (
            m
            for m in record.measurements
            if m.kind == "psa" and m.value is not None and m.when > primary.start
        ),
        key=lambda m: m.when,
    )
    run = 0
    for m in psa:
        run = run + 1 if _side(m, threshold) == "at-or-above" else 0
    if not psa or run == 0 or run >= rule.confirmations:
        return None
    last = psa[-1]
    return (
        f"rising PSA not yet confirmed: {psa_text(last)} on {last.when.isoformat()} "
        f"({last.source}) is at or above {threshold:g} ng/mL after prostatectomy, and a "
        f"biochemical recurrence needs {rule.confirmations} consecutive values "
        f"({_cite(kb, rule.evidence)}): repeat the PSA"
    )


def _cite(kb: KnowledgeBase, keys: list[str] | tuple[str, ...]) -> str:
    return ", ".join(kb.evidence[k].label for k in keys if k in kb.evidence)


def primary_local_therapy(lines: list[Line]) -> Line | None:
    """The first prostatectomy or radiotherapy line: the therapy a PSA recurrence is judged by."""
    return next(
        (
            line
            for line in lines
            if line.procedure in ("prostatectomy", "radiotherapy", "brachytherapy")
        ),
        None,
    )


def prostate_failures(record: PatientRecord, lines: list[Line], kb: KnowledgeBase) -> list[Failure]:
    """Biochemical recurrence after the primary local therapy read from Procedure."""
    spec = kb.failures.prostate
    primary = primary_local_therapy(lines)
    if primary is None:
        return []
    psa = sorted(
        (
            m
            for m in record.measurements
            if m.kind == "psa" and m.value is not None and m.when > primary.start
        ),
        key=lambda m: m.when,
    )
    if primary.procedure == "prostatectomy":
        rule = spec.post_prostatectomy
        threshold = float(rule.threshold_ng_per_ml)
        needed = rule.confirmations  # consecutive values at or above the threshold (AUA/ASTRO)
        run: list[Measurement] = []
        for m in psa:
            run = [*run, m] if _side(m, threshold) == "at-or-above" else []
            if len(run) >= needed:
                first, last = run[0], run[-1]
                return [
                    Failure(
                        kind="biochemical-recurrence",
                        when=last.when,
                        line=primary.number,
                        sources=tuple(x.source for x in run),
                        detail=(
                            f"PSA {psa_text(first)} on {first.when.isoformat()} confirmed by "
                            f"{psa_text(last)} on {last.when.isoformat()} "
                            f"(>= {threshold} ng/mL after prostatectomy)"
                        ),
                        evidence=tuple(rule.evidence),
                        disease=primary.disease,
                    )
                ]
        return []
    phoenix = spec.post_radiotherapy
    rise = float(phoenix.nadir_plus_ng_per_ml)
    nadir: Measurement | None = None
    for m in psa:
        if m.comparator in (">", ">="):
            if nadir is not None and _side(m, _v(nadir) + rise) == "at-or-above":
                return [_phoenix(m, nadir, rise, primary, phoenix)]
            continue  # a lower bound cannot be a nadir
        if nadir is None or _v(m) < _v(nadir):
            nadir = m
        elif _side(m, _v(nadir) + rise) == "at-or-above":
            return [_phoenix(m, nadir, rise, primary, phoenix)]
    return []


def _phoenix(
    m: Measurement, nadir: Measurement, rise: float, line: Line, rule: PostRadiotherapyRule
) -> Failure:
    return Failure(
        kind="biochemical-recurrence",
        when=m.when,
        line=line.number,
        sources=(nadir.source, m.source),
        detail=(
            f"PSA {psa_text(m)} on {m.when.isoformat()} is >= nadir {psa_text(nadir)} "
            f"({nadir.when.isoformat()}) + {rise:g} ng/mL (Phoenix definition)"
        ),
        evidence=tuple(rule.evidence),
        disease=line.disease,
    )


def hiv_intolerance(record: PatientRecord, lines: list[Line], kb: KnowledgeBase) -> list[Failure]:
    """An antiretroviral stopped as not tolerated (statusReason, as for cancer therapy) is an
    intolerance of its HIV line; its substitution within the class is in class_rules.yaml.
    Virologic failure is judged by viral load only (hiv_failures)."""
    not_tolerated = set(kb.failures.oncology.stop_reasons.not_tolerated)
    found: list[Failure] = []
    for line in lines:
        for exposure in record.exposures:
            if exposure.source in line.sources and exposure.stop_reasons & not_tolerated:
                stopped_on = exposure.end or exposure.start
                found.append(
                    Failure(
                        kind="intolerance",
                        when=stopped_on,
                        line=line.number,
                        sources=(exposure.source,),
                        detail=f"{', '.join(sorted(exposure.ingredients))} stopped as not "
                        f"tolerated on {stopped_on.isoformat()}",
                        evidence=tuple(kb.failures.hiv.evidence),
                        disease=line.disease,
                    )
                )
    return found


def hiv_failures(
    record: PatientRecord,
    lines: list[Line],
    kb: KnowledgeBase,
    as_of: date,
    warnings: list[DataWarning] | None = None,
) -> list[Failure]:
    """Two consecutive HIV-1 RNA >= 200 copies/mL after 24 weeks on a regimen or suppression; a
    value reported as '<x' with x above the threshold cannot be placed and breaks the pair.
    Confirmed viraemia that no line explains (after therapy began, outside every line, or with no
    line on record) is never silent: a warning says so and "no failure" is not concluded."""
    spec = kb.failures.hiv
    threshold = float(spec.threshold_copies_per_ml)
    settle = timedelta(weeks=int(spec.min_weeks_on_regimen))
    loads = sorted(
        (m for m in record.measurements if m.kind == "hiv-rna" and m.value is not None),
        key=lambda m: m.when,
    )
    # Each value placed once against the threshold (a pure reading), then read per line and pair.
    placed = [(m, _side(m, threshold)) for m in loads]
    found: list[Failure] = []
    for line in lines:
        if line.domain != "hiv":
            continue
        end = line.end or as_of
        on_line = [(m, where) for m, where in placed if line.start <= m.when <= end]
        suppressed = False
        for (first, first_side), (second, second_side) in itertools.pairwise(on_line):
            if first_side == "below":
                suppressed = True
                continue
            if first_side == "indeterminate":
                continue
            qualifies = suppressed or first.when - line.start >= settle
            if qualifies and second_side == "at-or-above":
                why = (
                    "after suppression" if suppressed else "after at least 24 weeks on the regimen"
                )
                found.append(
                    Failure(
                        kind="virologic-failure",
                        when=second.when,
                        line=line.number,
                        sources=(first.source, second.source),
                        detail=(
                            f"HIV-1 RNA {first.raw} on {first.when.isoformat()} and "
                            f"{second.raw} on {second.when.isoformat()}, "
                            f"both >= {threshold:g} copies/mL {why}"
                        ),
                        evidence=tuple(spec.evidence),
                        disease="hiv",
                    )
                )
                break
    if warnings is not None:
        warnings += _unattributed_viraemia(placed, lines, threshold, as_of)
    return found


def _unattributed_viraemia(
    placed: list[tuple[Measurement, str]], lines: list[Line], threshold: float, as_of: date
) -> list[DataWarning]:
    """Two consecutive HIV-1 RNA at or above the threshold that fall outside every HIV line, once
    therapy has begun (or with no line at all): a regimen may be missing from the record, or it
    was stopped; either way the viraemia needs review, not a "no failure" statement."""
    hiv_lines = [ln for ln in lines if ln.domain == "hiv"]
    first_start = min((ln.start for ln in hiv_lines), default=None)

    def on_a_line(m: Measurement) -> bool:
        return any(ln.start <= m.when <= (ln.end or as_of) for ln in hiv_lines)

    for (first, first_side), (second, second_side) in itertools.pairwise(placed):
        if first_side != "at-or-above" or second_side != "at-or-above":
            continue
        if first_start is not None and second.when < first_start:
            continue  # viraemia before therapy began is the diagnosis, not a failure
        if on_a_line(first) and on_a_line(second):
            continue  # the line rules decide (failure, or too early to judge)
        where = (
            "no antiretroviral line is on record"
            if first_start is None
            else "outside every antiretroviral line on record (stopped, or a regimen missing "
            "from the record)"
        )
        return [
            DataWarning(
                source=second.source,
                problem=f"HIV-1 RNA {first.raw} on {first.when.isoformat()} and {second.raw} on "
                f"{second.when.isoformat()}, both >= {threshold:g} copies/mL, while {where}: "
                "confirmed viraemia not attributed to a line; review adherence and the "
                "current regimen",
                failure_doubt=True,
            )
        ]
    return []


def _v(m: Measurement) -> float:
    """The numeric value of a measurement already filtered to those that have one."""
    if m.value is None:
        raise ValueError(f"{m.source} has no numeric value")
    return m.value


def _side(m: Measurement, threshold: float) -> str:
    return side(_v(m), m.comparator, threshold)


def merge_failures(failures: list[Failure]) -> list[Failure]:
    """One failure per (disease, line, kind): the earliest date, with every source for it."""
    merged: dict[tuple[str | None, int | None, str], Failure] = {}
    for failure in sorted(failures, key=lambda f: f.when):
        key = (failure.disease, failure.line, failure.kind)
        if key not in merged:
            merged[key] = failure
            continue
        first = merged[key]
        merged[key] = replace(
            first,
            sources=tuple(dict.fromkeys(first.sources + failure.sources)),
            primary=first.primary or failure.primary,
        )
    return sorted(merged.values(), key=lambda f: (f.when, f.line or 0, f.kind))
