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
        first = (patient.get("name") or [{}])[0]
        name = " ".join([*first.get("given", []), first.get("family", "")]).strip()
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
    for ident in patient.get("identifier") or []:
        if not isinstance(ident, dict) or not ident.get("value"):
            continue
        kind = ident.get("type") or {}
        label = (kind.get("text") if isinstance(kind, dict) else "") or ""
        if not label and isinstance(kind, dict):
            label = next((c.get("code", "") for c in kind.get("coding") or []), "")
        label = label or str(ident.get("system") or "")
        shown.append(f"{label} {ident['value']}".strip())
    return "; ".join(shown)
