"""Medication orders, administrations and statements -> drug exposures (dates, supply, refills,
doses, stop reasons; referenced, contained and itemReference Medications)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any, TypeGuard

from salvage.engine.dates import optional_date, parse_fhir_date
from salvage.engine.drugs import concept_text
from salvage.engine.model import (
    DataWarning,
    DrugExposure,
    PartlyRecognised,
    PatientRecord,
    Unmapped,
)
from salvage.errors import ResourceError
from salvage.fhir.record_base import (
    ACTIVE_STATUS,
    IGNORED_STATUS,
    SNOMED,
    ConverterBase,
    type_id,
)


class MedicationConverter(ConverterBase):
    def _medication(self, r: dict[str, Any], source: str) -> tuple[frozenset[str], str]:
        concept = r.get("medicationCodeableConcept")
        if concept is None and isinstance(r.get("medicationReference"), dict):
            ref = r["medicationReference"].get("reference", "")
            med = None
            if isinstance(ref, str) and ref.startswith("#"):
                med = next(
                    (
                        c
                        for c in r.get("contained") or ()
                        if isinstance(c, dict)
                        and c.get("resourceType") == "Medication"
                        and c.get("id") == ref[1:]
                    ),
                    None,
                )
            elif isinstance(ref, str):
                med = self.medications.get(type_id(ref))
            if med is not None:
                found = self.drugs.from_concept(med.get("code"))
                if not found:  # Medication.ingredient list, each item a concept or a reference
                    names = []
                    for item in med.get("ingredient") or ():
                        concept = self._ingredient_concept(item, r, med)
                        part = self.drugs.from_concept(concept)
                        found |= part
                        names.append(_ingredient_label(concept, part))
                    if found and len(names) > 1:
                        # Named ingredient by ingredient, so that one we do not know is reported
                        # as a part not recognised (a combination read only in part).
                        return found, " / ".join(n for n in names if n)
                return found, self._medication_name(med, r) or "a medication without a name"
            display = r["medicationReference"].get("display")
            return frozenset(), str(display) if display else "a medication that could not be read"
        return self.drugs.read_concept(concept)

    def _ingredient_concept(
        self, item: Any, order: dict[str, Any], med: dict[str, Any]
    ) -> dict[str, Any] | None:
        """An ingredient's concept, given in place or as itemReference to a Medication (contained
        in the order or the Medication, or read with the record)."""
        if not isinstance(item, dict):
            return None
        concept = item.get("itemCodeableConcept")
        if isinstance(concept, dict):
            return concept
        ref = (item.get("itemReference") or {}).get("reference")
        if not isinstance(ref, str):
            return None
        if ref.startswith("#"):
            contained = [*(order.get("contained") or ()), *(med.get("contained") or ())]
            target = next((c for c in contained if c.get("id") == ref[1:]), None)
        else:
            target = self.medications.get(type_id(ref))
        return target.get("code") if isinstance(target, dict) else None

    def _medication_name(self, med: dict[str, Any], order: dict[str, Any]) -> str:
        """What a person calls the drug: the Medication's code text, else its ingredients'."""
        names = [concept_text(med.get("code"))]
        if not names[0]:
            names = [
                concept_text(self._ingredient_concept(item, order, med))
                for item in med.get("ingredient") or ()
            ]
        return ", ".join(n for n in names if n)

    def _exposure(
        self,
        medication: tuple[frozenset[str], str],
        r: dict[str, Any],
        source: str,
        record: PatientRecord,
        *,
        start: date,
        end: date | None,
        stop_reasons: Iterable[dict[str, Any]],
        dose: tuple[float | None, str | None] = (None, None),
        dose_count: int | None = None,
        based_on: tuple[str, ...] = (),
    ) -> None:
        ingredients, text = medication
        if not ingredients:
            record.unmapped.append(Unmapped(source=source, text=text or "(no medication given)"))
            return
        missed = self.drugs.unrecognised_parts(text)
        if missed:  # a combination read only in part: say so rather than drop an ingredient
            record.warnings.append(DataWarning(source=source, problem=missed))
            partial = self.drugs.partly_recognised(text)
            if partial is not None:
                record.partly_recognised.append(
                    PartlyRecognised(
                        source=source,
                        text=text,
                        recognised=tuple(sorted(ingredients)),
                        not_recognised=partial[1],
                    )
                )
        reasons: set[str] = set()
        for concept in stop_reasons:
            for coding in (concept or {}).get("coding") or ():
                if coding.get("system") == SNOMED and coding.get("code"):
                    reasons.add(str(coding["code"]))
        intent, reason_refs = self._intent(r)
        status = str(r.get("status") or "unknown")
        record.exposures.append(
            DrugExposure(
                intent=intent,
                reasons=reason_refs,
                source=source,
                ingredients=ingredients,
                start=start,
                end=end if end is None or end >= start else start,
                status=status,
                active=status in ACTIVE_STATUS,
                stop_reasons=frozenset(reasons),
                dose=dose[0],
                dose_unit=dose[1],
                dose_count=dose_count,
                based_on=based_on,
                text=text,
                notes=tuple(
                    str(n["text"])
                    for n in r.get("note") or ()
                    if isinstance(n, dict) and isinstance(n.get("text"), str)
                )
                if "note" in r
                else (),
            )
        )

    def _intent(self, r: dict[str, Any]) -> tuple[str | None, tuple[str, ...]]:
        """Treatment intent as recorded (mCODE intent extension, else reasonCode) and the
        Conditions the order names as its reason (line_rules.yaml intent)."""
        if "reasonReference" not in r and "extension" not in r and "reasonCode" not in r:
            return None, ()  # the common case: the record says neither
        rules = self.kb.intent_rules

        def listed(key: str) -> list[Any]:  # a malformed element is ignored, never fatal
            value = r.get(key)
            return value if isinstance(value, list) else []

        reasons = tuple(
            type_id(ref["reference"])
            for ref in listed("reasonReference")
            if isinstance(ref, dict) and isinstance(ref.get("reference"), str)
        )
        if rules is None:
            return None, reasons
        concepts = [
            ext.get("valueCodeableConcept")
            for ext in listed("extension")
            if isinstance(ext, dict) and ext.get("url") in rules.recorded.extension_urls
        ] + listed("reasonCode")
        for concept in concepts:
            for coding in (concept or {}).get("coding") or () if isinstance(concept, dict) else ():
                code = str(coding.get("code") or "") if isinstance(coding, dict) else ""
                for intent, codes in rules.recorded.codes.items():
                    if code in codes:
                        return intent, reasons
        return None, reasons

    def _is_antiretroviral(self, ingredients: frozenset[str]) -> bool:
        return any(
            self.kb.drugs[i].role == "antiretroviral" for i in ingredients if i in self.kb.drugs
        )

    def _is_continuous(self, ingredients: frozenset[str]) -> bool:
        return any(
            self.kb.drugs[i].continuous or self.kb.drugs[i].role == "antiretroviral"
            for i in ingredients
            if i in self.kb.drugs
        )

    def _medication_request(self, r: dict[str, Any], source: str, record: PatientRecord) -> None:
        status = r.get("status")
        if status in IGNORED_STATUS["MedicationRequest"]:
            return
        bounds: dict[str, Any] = {}
        for dosage in r.get("dosageInstruction") or ():
            repeat = ((dosage or {}).get("timing") or {}).get("repeat") or {}
            if isinstance(repeat.get("boundsPeriod"), dict):
                bounds = repeat["boundsPeriod"]
                break
        dispense = r.get("dispenseRequest") or {}
        validity = dispense.get("validityPeriod") or {}
        authored = optional_date(r.get("authoredOn"), field_name="authoredOn", source=source)
        start = (
            optional_date(bounds.get("start"), field_name="boundsPeriod.start", source=source)
            or authored
            or optional_date(
                validity.get("start"), field_name="validityPeriod.start", source=source
            )
        )
        if start is None:
            raise ResourceError("no authoredOn or start date", resource=source)
        end = optional_date(bounds.get("end"), field_name="boundsPeriod.end", source=source)
        medication = self._medication(r, source)
        if end is None and self._is_continuous(medication[0]):
            # Continuous therapy is active over the supplied period (supply x (1 + refills)).
            supply = dispense.get("expectedSupplyDuration") or {}
            days = _duration_days(supply)
            if status == "active" and self._is_antiretroviral(medication[0]):
                # An active antiretroviral order is still being taken: the prescriber has not
                # stopped it, and refills are dispensed one after another. Its supply (x refills)
                # says how long it was authorised, not when the patient stopped (FHIR R4
                # medicationrequest-status; antiretrovirals are lifelong, DHHS).
                end = None
            elif days is not None:
                repeats = int(dispense.get("numberOfRepeatsAllowed") or 0)
                end = start + timedelta(days=max(1, round(days * (1 + repeats))) - 1)
            elif status in ACTIVE_STATUS:
                end = None  # open-ended and still active
            else:
                end = start + timedelta(days=self.kb.default_rules.default_supply_days - 1)
        elif end is None:
            end = start
        reason = r.get("statusReason")
        dose, count = _dosage_dose(r.get("dosageInstruction"))
        self._exposure(
            medication,
            r,
            source,
            record,
            start=start,
            end=end,
            stop_reasons=[reason] if isinstance(reason, dict) else [],
            dose=dose,
            dose_count=count,
        )
        if medication[0] and (r.get("reportedBoolean") is True or r.get("intent") == "plan"):
            # Oracle's MedicationRequest also carries documented home and historical medications
            # (reportedBoolean, intent plan; issue 18 quirk 23): counted, and said to be so.
            record.warnings.append(
                DataWarning(
                    source=source,
                    problem="a reported home or historical medication, not an order placed "
                    "here: counted as therapy given",
                )
            )

    def _medication_administration(
        self, r: dict[str, Any], source: str, record: PatientRecord
    ) -> None:
        if r.get("status") in IGNORED_STATUS["MedicationAdministration"]:
            return
        start, end = self._effective(r, source, "effective")
        dosage = r.get("dosage")
        dose = dosage.get("dose") if isinstance(dosage, dict) else None
        if not isinstance(dose, dict):
            dose = {}
        value = dose.get("value")
        request = r.get("request")
        based_on = (
            tuple(
                ref["reference"]
                for ref in [*(r.get("basedOn") or ()), *([request] if request else [])]
                if isinstance(ref, dict) and isinstance(ref.get("reference"), str)
            )
            if request or "basedOn" in r
            else ()
        )
        self._exposure(
            self._medication(r, source),
            r,
            source,
            record,
            start=start,
            end=end if end is not None else start,
            stop_reasons=r.get("statusReason") or [],
            dose=(
                float(value) if _positive(value) else None,
                str(dose.get("code") or dose.get("unit") or "") or None,
            ),
            based_on=based_on,
        )

    def _medication_statement(self, r: dict[str, Any], source: str, record: PatientRecord) -> None:
        status = r.get("status")
        if status in IGNORED_STATUS["MedicationStatement"]:
            return
        try:
            start, end = self._effective(r, source, "effective")
        except ResourceError:
            asserted = r.get("dateAsserted")
            if asserted is None:
                raise
            start = end = parse_fhir_date(asserted, field_name="dateAsserted", source=source)
        if end is None and status not in ("active", "intended", "on-hold"):
            end = start
        dose, count = _dosage_dose(r.get("dosage"))
        self._exposure(
            self._medication(r, source),
            r,
            source,
            record,
            start=start,
            end=end,
            stop_reasons=r.get("statusReason") or [],
            dose=dose,
            dose_count=count,
        )


_DURATION_DAYS = {
    "d": 1,
    "day": 1,
    "days": 1,
    "wk": 7,
    "week": 7,
    "weeks": 7,
    "mo": 30,
    "month": 30,
    "months": 30,
    "a": 365,
    "h": 1 / 24,
}


def _duration_days(duration: dict[str, Any]) -> float | None:
    value = duration.get("value")
    factor = _DURATION_DAYS.get(str(duration.get("code") or duration.get("unit") or "d"))
    if isinstance(value, int | float) and factor is not None and value > 0:
        return float(value) * factor
    return None


def _dosage_dose(
    dosages: Any,
) -> tuple[tuple[float | None, str | None], int | None]:
    """The dose of an order's or statement's first Dosage that gives one (doseAndRate.doseQuantity,
    a positive value with its unit) and how many doses it covers (timing.repeat.count), if said."""
    for dosage in dosages if isinstance(dosages, list) else ():
        if not isinstance(dosage, dict):
            continue
        for entry in dosage.get("doseAndRate") or ():
            quantity = entry.get("doseQuantity") if isinstance(entry, dict) else None
            value = quantity.get("value") if isinstance(quantity, dict) else None
            if _positive(value):
                timing = dosage.get("timing")
                repeat = timing.get("repeat") if isinstance(timing, dict) else None
                count = repeat.get("count") if isinstance(repeat, dict) else None
                unit = quantity.get("code") or quantity.get("unit")  # type: ignore[union-attr]
                return (
                    (float(value), str(unit) if unit else None),
                    count if type(count) is int and count > 0 else None,
                )
    return (None, None), None


def _ingredient_label(concept: dict[str, Any] | None, found: frozenset[str]) -> str:
    """How an ingredient of a Medication is named in a report: its text or display, else the
    ingredients it was recognised as, else its codes (never a system URL, which holds "/")."""
    if not isinstance(concept, dict):
        return ""
    if concept.get("text"):
        return str(concept["text"])
    codings = [c for c in concept.get("coding") or () if isinstance(c, dict)]
    for coding in codings:
        if coding.get("display"):
            return str(coding["display"])
    if found:
        return " and ".join(sorted(found))
    codes = [str(c["code"]) for c in codings if c.get("code")]
    return f"code {', '.join(codes)}" if codes else ""


def _positive(value: object) -> TypeGuard[int | float]:
    """A documented dose: a finite number above zero (not a boolean, not JSON's Infinity)."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )
