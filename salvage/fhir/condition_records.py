"""Conditions -> condition records: verification status, clinical status and the date that dates
a relapse (onset[x] in every R4 form, then abatement, then recordedDate)."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from salvage.engine.dates import optional_date, parse_fhir_date
from salvage.engine.drugs import concept_text
from salvage.engine.model import (
    ConditionRecord,
    DataWarning,
    PatientRecord,
)
from salvage.fhir.record_base import ConverterBase, first_code

# A calendar date inside free text (onsetString "2023-03", "biopsy 2023-03-14").
_DATE_IN_TEXT = re.compile(r"\b(\d{4}-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?)\b")


class ConditionConverter(ConverterBase):
    def _condition(self, r: dict[str, Any], source: str, record: PatientRecord) -> None:
        verification = first_code(r.get("verificationStatus"))
        if verification in ("entered-in-error", "refuted"):
            return  # FHIR R4 condition-ver-status: these never describe the patient
        codes = frozenset(
            f"{c.get('system')}|{c.get('code')}"
            for c in (r.get("code") or {}).get("coding") or ()
            if c.get("code")
        )
        onset, onset_basis = _choice_date(r, "onset", source)
        abatement, abatement_basis = _choice_date(r, "abatement", source)
        recorded = optional_date(r.get("recordedDate"), field_name="recordedDate", source=source)
        age = r.get("onsetAge") if isinstance(r.get("onsetAge"), dict) else None
        onset_age = _age_years(age) if age is not None and onset is None else None
        if onset is not None:
            when, basis = onset, onset_basis
        elif onset_age is not None:
            when, basis = None, "onsetAge"  # dated once the birth date is known
        elif abatement is not None:
            when, basis = abatement, abatement_basis
        elif recorded is not None:
            when, basis = recorded, "recordedDate"
        else:
            when, basis = None, ""  # the engine reports it when a rule needed the date
        record.conditions.append(
            ConditionRecord(
                source=source,
                codes=codes,
                clinical_status=first_code(r.get("clinicalStatus")),
                onset=onset,
                recorded=recorded,
                text=concept_text(r.get("code")),
                verification=verification,
                abatement=abatement,
                when=when,
                date_basis=basis,
                onset_age_years=onset_age,
                stage=_stage_text(r.get("stage")),
            )
        )


def _stage_text(stages: Any) -> str:
    """Condition.stage summaries as recorded (codes, displays and text), lower case."""
    words: list[str] = []
    for stage in stages if isinstance(stages, list) else ():
        summary = stage.get("summary") if isinstance(stage, dict) else None
        if not isinstance(summary, dict):
            continue
        words.append(str(summary.get("text") or ""))
        for coding in summary.get("coding") or ():
            if isinstance(coding, dict):
                words += [str(coding.get("display") or ""), str(coding.get("code") or "")]
    return " ".join(w for w in words if w).lower()


def _choice_date(r: dict[str, Any], prefix: str, source: str) -> tuple[date | None, str]:
    """A date from a FHIR R4 choice element (onset[x], abatement[x]): dateTime, Period (start,
    else end), or a string containing a date; (None, "") when none can be read."""
    value = r.get(f"{prefix}DateTime")
    if value is not None:
        return parse_fhir_date(value, field_name=f"{prefix}DateTime", source=source), (
            f"{prefix}DateTime"
        )
    period = r.get(f"{prefix}Period")
    if isinstance(period, dict):
        for end in ("start", "end"):
            if period.get(end) is not None:
                day = parse_fhir_date(
                    period[end], field_name=f"{prefix}Period.{end}", source=source
                )
                return day, f"{prefix}Period.{end}"
    text = r.get(f"{prefix}String")
    if isinstance(text, str):
        match = _DATE_IN_TEXT.search(text)
        if match is not None:
            found = optional_date(match.group(1), field_name=f"{prefix}String", source=source)
            return found, f"{prefix}String"
    return None, ""


_AGE_YEARS = {"a": 1.0, "yr": 1.0, "year": 1.0, "years": 1.0, "mo": 1 / 12, "month": 1 / 12}


def _age_years(age: dict[str, Any]) -> float | None:
    value = age.get("value")
    factor = _AGE_YEARS.get(str(age.get("code") or age.get("unit") or "a"))
    if isinstance(value, int | float) and not isinstance(value, bool) and factor and value >= 0:
        return float(value) * factor
    return None


def _resolve_onset_ages(record: PatientRecord) -> None:
    """Date the Conditions given by onsetAge from the birth date (year precision); report those
    that cannot be dated because the birth date is unknown."""
    for index, condition in enumerate(record.conditions):
        if condition.onset_age_years is None or condition.when is not None:
            continue
        if record.birth_date is None:
            fallback = condition.abatement or condition.recorded
            record.conditions[index] = replace(
                condition,
                when=fallback,
                date_basis=(
                    ""
                    if fallback is None
                    else ("abatement" if condition.abatement else "recordedDate")
                ),
            )
            record.warnings.append(
                DataWarning(
                    source=condition.source,
                    problem="onsetAge cannot be turned into a date without a birth date",
                )
            )
            continue
        days = round(condition.onset_age_years * 365.2425)
        record.conditions[index] = replace(
            condition,
            when=record.birth_date + timedelta(days=days),
            onset=record.birth_date + timedelta(days=days),
        )
