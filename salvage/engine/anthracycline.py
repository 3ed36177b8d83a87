"""Cumulative anthracycline dose as doxorubicin equivalents (mg/m2), from every documented dose.

Each administration counts; an order or a statement counts when no administration carries it out
(linked by basedOn/request, or the same drug given the same day), as many times as its timing says
(once when it does not say). Equivalence ratios, units and the body-surface-area rule are read from
the knowledge base (patient_rules.yaml anthracycline, drugs.yaml anthracycline_equivalence). A dose
that cannot be converted is listed and makes the total "at least"; records without any dose make
the total unknown, never zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

from salvage.engine.ingredient_facts import facts_table
from salvage.engine.model import DrugExposure, Measurement, PatientRecord
from salvage.knowledge.model import KnowledgeBase

KINDS = {
    "MedicationAdministration": "administration",
    "MedicationRequest": "order",
    "MedicationStatement": "statement",
}


@dataclass(frozen=True, kw_only=True)
class AnthracyclineDose:
    source: str
    kind: str  # administration | order | statement
    drug: str
    day: date
    dose: float
    unit: str
    count: int  # doses the record stands for
    mg_m2: float | None  # one dose of this drug in mg/m2; None when it could not be converted
    equivalent_mg_m2: float | None  # count x mg/m2 x the drug's ratio to the reference drug
    bsa_m2: float | None = None
    bsa_sources: tuple[str, ...] = ()
    problem: str | None = None  # why the dose could not be converted
    # False when an order or statement spans several days without saying how many doses it
    # covers: it is counted once, and the total is a lower bound.
    count_known: bool = True


@dataclass(frozen=True, kw_only=True)
class AnthracyclineTotal:
    total: float  # doxorubicin-equivalent mg/m2 of the doses that could be counted
    doses: tuple[AnthracyclineDose, ...]
    undocumented: tuple[str, ...]  # anthracycline records without a dose
    assumed: tuple[str, ...]  # drugs counted by an assumed ratio (no published one)

    @property
    def counted(self) -> tuple[AnthracyclineDose, ...]:
        return tuple(d for d in self.doses if d.equivalent_mg_m2 is not None)

    @property
    def unconverted(self) -> tuple[AnthracyclineDose, ...]:
        return tuple(d for d in self.doses if d.equivalent_mg_m2 is None)

    @property
    def known(self) -> bool:
        """Some dose could be counted (otherwise the cumulative dose is unknown)."""
        return bool(self.counted)

    @property
    def uncounted(self) -> tuple[AnthracyclineDose, ...]:
        return tuple(d for d in self.counted if not d.count_known)

    @property
    def at_least(self) -> bool:
        """The total is a lower bound: some anthracycline given was not counted."""
        return bool(self.unconverted or self.undocumented or self.uncounted)


def _nearest(found: list[Measurement], day: date) -> Measurement | None:
    return min(found, key=lambda m: (abs((m.when - day).days), m.when)) if found else None


def _bsa(
    heights: list[Measurement], weights: list[Measurement], day: date, window_days: int
) -> tuple[float | None, tuple[str, ...], str | None]:
    """Mosteller BSA from the height and weight nearest to the dose (weight within the window)."""
    height, weight = _nearest(heights, day), _nearest(weights, day)
    if height is None or weight is None:
        missing = " and ".join(n for n, m in (("height", height), ("weight", weight)) if m is None)
        return None, (), f"no {missing} on record to convert mg to mg/m2"
    if abs((weight.when - day).days) > window_days:
        return (
            None,
            (),
            f"the nearest weight ({weight.when.isoformat()}) is more than {window_days} days "
            "from the dose",
        )
    bsa = math.sqrt((height.value or 0.0) * (weight.value or 0.0) / 3600)
    return bsa, (height.source, weight.source), None


def _kind(exposure: DrugExposure) -> str:
    return KINDS.get(exposure.source.split("/", 1)[0], "record")


def cumulative(record: PatientRecord, kb: KnowledgeBase, as_of: date) -> AnthracyclineTotal | None:
    """Every anthracycline dose on record up to as_of; None when no anthracycline was given."""
    rule = kb.patient_rules.anthracycline
    bsa_rule = rule.body_surface_area
    window = bsa_rule.weight_within_days if bsa_rule else 0
    table = facts_table(kb)
    given = [
        e for e in record.exposures if e.start <= as_of and table[e.ingredients].anthracyclines
    ]
    if not given:
        return None
    per_area = {u.replace(" ", "").lower(): f for u, f in rule.per_area_units_mg_m2.items()}
    mass = {u.replace(" ", "").lower(): f for u, f in rule.mass_units_mg.items()}
    administrations = [e for e in given if _kind(e) == "administration"]
    carried_out = {ref for e in administrations for ref in e.based_on}
    given_days = {(i, e.start) for e in administrations for i in e.ingredients}
    doses: list[AnthracyclineDose] = []
    undocumented: list[str] = []
    heights: list[Measurement] = []
    weights: list[Measurement] = []
    for m in record.measurements:  # one pass: a record may hold hundreds of labs
        if m.kind == "height" and m.value and m.when <= as_of:
            heights.append(m)
        elif m.kind == "weight" and m.value and m.when <= as_of:
            weights.append(m)
    for e in given:
        kind = _kind(e)
        drugs = list(table[e.ingredients].anthracyclines)
        if kind != "administration" and (
            e.source in carried_out or any((d, e.start) in given_days for d in drugs)
        ):
            continue  # the administration that carried out this order is counted instead
        if e.dose is None:
            undocumented.append(e.source)
            continue
        unit = (e.dose_unit or "").replace(" ", "").lower()
        count = e.dose_count or 1
        count_known = (
            kind == "administration"
            or e.dose_count is not None
            or (e.end is not None and e.end <= e.start)
        )
        for drug in drugs:
            ratio = kb.drugs[drug].anthracycline_equivalence or 0.0
            problem: str | None = None
            bsa: float | None = None
            bsa_sources: tuple[str, ...] = ()
            mg_m2: float | None = None
            if len(drugs) > 1:
                problem = "one dose for several anthracyclines cannot be split"
            elif unit in per_area:
                mg_m2 = e.dose * per_area[unit]
            elif unit in mass and bsa_rule is not None:
                bsa, bsa_sources, problem = _bsa(heights, weights, e.start, window)
                if bsa:
                    mg_m2 = e.dose * mass[unit] / bsa
            else:
                problem = f"unit {e.dose_unit or '(none)'!r} is not a dose unit read"
            doses.append(
                AnthracyclineDose(
                    source=e.source,
                    kind=kind,
                    drug=drug,
                    day=e.start,
                    dose=e.dose,
                    unit=e.dose_unit or "",
                    count=count,
                    mg_m2=mg_m2,
                    equivalent_mg_m2=None if mg_m2 is None else mg_m2 * ratio * count,
                    bsa_m2=bsa,
                    bsa_sources=bsa_sources,
                    problem=problem if mg_m2 is None else None,
                    count_known=count_known,
                )
            )
    assumed = sorted(
        {d.drug for d in doses if kb.drugs[d.drug].anthracycline_equivalence_basis == "assumed"}
    )
    return AnthracyclineTotal(
        total=sum(d.equivalent_mg_m2 or 0.0 for d in doses),
        doses=tuple(sorted(doses, key=lambda d: (d.day, d.source))),
        undocumented=tuple(undocumented),
        assumed=tuple(assumed),
    )


def describe(total: AnthracyclineTotal, kb: KnowledgeBase) -> str:
    """One sentence: the total (or "unknown"), where it comes from, and what it leaves out."""
    rule = kb.patient_rules.anthracycline
    reference = rule.reference_drug
    kinds: dict[str, int] = {}
    for d in total.counted:
        kinds[d.kind] = kinds.get(d.kind, 0) + 1
    parts: list[str] = []
    if total.known:
        bound = "at least " if total.at_least else ""
        sources = ", ".join(f"{n} {k}{'s' if n > 1 else ''}" for k, n in sorted(kinds.items()))
        parts.append(
            f"cumulative anthracycline {bound}{total.total:.0f} mg/m2 {reference}-equivalent "
            f"from {sources}"
        )
    else:
        parts.append("cumulative anthracycline dose unknown")
    if total.unconverted:
        parts.append(
            f"{len(total.unconverted)} dose(s) not converted ("
            + "; ".join(f"{d.source}: {d.problem}" for d in total.unconverted[:3])
            + ")"
        )
    if total.uncounted:
        parts.append(
            f"{len(total.uncounted)} order(s) or statement(s) over several days without the number "
            "of doses, each counted once (" + ", ".join(d.source for d in total.uncounted[:3]) + ")"
        )
    if total.undocumented:
        parts.append(
            f"{len(total.undocumented)} anthracycline record(s) without a documented dose ("
            + ", ".join(total.undocumented[:3])
            + (", ..." if len(total.undocumented) > 3 else "")
            + ")"
        )
    if total.assumed and rule.assumed_equivalence_note:
        parts.append(
            f"{', '.join(total.assumed)}: {' '.join(rule.assumed_equivalence_note.split())}"
        )
    return "; ".join(parts)
