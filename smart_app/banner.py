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
        "name": name or "(no name recorded)",
        "birthDate": str(patient.get("birthDate", "")),
        "gender": str(patient.get("gender", "")),
        "id": str(patient.get("id", "")),
    }


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
