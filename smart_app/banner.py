"""Patient banner text (S20). fhirclient's typed R4 models are used where they are strong (the
HumanName/Patient structure); its strict models reject unknown elements, so a record they refuse
falls back to reading the JSON directly."""

from __future__ import annotations

from typing import Any


def patient_banner(patient: dict[str, Any] | None) -> dict[str, str]:
    if not patient:
        return {}
    name = ""
    try:
        from fhirclient.models.patient import Patient

        model = Patient(patient, strict=True)
        if model.name:
            first = model.name[0]
            name = " ".join([*(first.given or []), first.family or ""]).strip() or (
                first.text or ""
            )
    except Exception:
        name = _plain_name(patient)
    return {
        "identifier": _identifiers(patient),
        "name": name or "(no name recorded)",
        "birthDate": str(patient.get("birthDate", "")),
        "gender": str(patient.get("gender", "")),
        "id": str(patient.get("id", "")),
    }


def _identifiers(patient: dict[str, Any]) -> str:
    """The identifiers as the EHR gives them (type text or system, then value), for the printout:
    a printed page must be attributable to its patient without the screen around it."""
    shown = []
    idents = patient.get("identifier")
    for ident in idents if isinstance(idents, list) else []:
        if not isinstance(ident, dict) or not isinstance(ident.get("value"), str):
            continue
        kind = ident.get("type") if isinstance(ident.get("type"), dict) else {}
        label = kind.get("text") if isinstance(kind.get("text"), str) else ""
        codings = kind.get("coding") if isinstance(kind.get("coding"), list) else []
        if not label:
            codes = [c.get("code") for c in codings if isinstance(c, dict)]
            label = next((c for c in codes if isinstance(c, str)), "")
        system = ident.get("system")
        label = label or (system if isinstance(system, str) else "")
        shown.append(f"{label} {ident['value']}".strip())
    return "; ".join(shown)


def _plain_name(patient: dict[str, Any]) -> str:
    """The first HumanName read from the JSON, whatever shape a server gave it (issue 14)."""
    names = patient.get("name")
    first = names[0] if isinstance(names, list) and names else None
    if not isinstance(first, dict):
        return ""
    given = first.get("given")
    parts = [g for g in given if isinstance(g, str)] if isinstance(given, list) else []
    if isinstance(first.get("family"), str):
        parts.append(first["family"])
    text = first.get("text")
    return " ".join(parts).strip() or (text if isinstance(text, str) else "")
