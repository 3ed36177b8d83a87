"""Wording of an HIV option's activity: the count of fully active drugs with each drug named, and a
plain sentence when fewer than two are fully active (with the trial that accepts it, if any)."""

from __future__ import annotations

from salvage.engine import resistance
from salvage.engine.resistance import DrugActivity


def count_sentence(acts: list[DrugActivity]) -> tuple[int, int, str]:
    fully = sum(a.level == resistance.ACTIVE for a in acts)
    unknown = sum(a.level == resistance.UNKNOWN for a in acts)
    text = f"fully active drugs: {fully} of {len(acts)}" + (
        f" ({unknown} of unknown activity)" if unknown else ""
    )
    return fully, unknown, text + ": " + "; ".join(a.text for a in acts)


def short(act: DrugActivity) -> str:
    if act.level == resistance.ACTIVE:
        return f"{act.drug} fully active" + ("" if act.sources else f" ({act.basis})")
    if act.level == resistance.UNKNOWN:
        return f"{act.drug} unknown ({act.basis})"
    return f"{act.drug} {act.level}" + (f" ({', '.join(act.mutations)})" if act.mutations else "")


def summary(
    acts: list[DrugActivity],
    companions: list[str],
    needed: int,
    fewer_note: str | None = None,
    fewer_min: int = 0,
) -> tuple[str, ...]:
    """The count of fully active drugs, each drug named, and a plain word when below `needed`
    (two): the trial that accepts fewer (`fewer_note`, when at least `fewer_min` are fully
    active), and the drugs of unknown activity to confirm."""
    fully = sum(a.level == resistance.ACTIVE for a in acts)
    unknown = [a.drug for a in acts if a.level == resistance.UNKNOWN]
    lines = [f"Fully active drugs: {fully} of {len(acts)}: " + "; ".join(short(a) for a in acts)]
    if companions:
        lines.append(f"Companions (fully active, named): {', '.join(companions)}")
    if fully < needed:
        why = []
        if fewer_note and fewer_min and fully >= fewer_min:
            why.append(fewer_note)
        if unknown:
            why.append(
                f"{', '.join(unknown)} of unknown activity: confirm (genotype) before relying on it"
            )
        lines.append(
            f"Fewer than {needed} drugs are known to be fully active: "
            + ("; ".join(why) or "the regimen would rest on less than two fully active drugs")
        )
    return tuple(lines)
