"""The pure core: FHIR-shaped records in, lines of therapy, failures and options out.

Rules of this package (enforced by tests/engine/test_purity.py, which walks the imports with ast):
no I/O, no clock (an ``as_of`` date is always a parameter), no Flask, no HTTP client, no authlib.
Knowledge arrives as a loaded ``KnowledgeBase``; records arrive as parsed JSON dicts.

Public API: analyse_patient(), build_patient_records(), and the result types in engine.model.
"""

from salvage.engine.analysis import PatientAnalysis, analyse_patient
from salvage.engine.records import build_patient_records

__all__ = ["PatientAnalysis", "analyse_patient", "build_patient_records"]
