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
        "name": name or "(no name recorded)",
        "birthDate": str(patient.get("birthDate", "")),
        "gender": str(patient.get("gender", "")),
        "id": str(patient.get("id", "")),
    }
