"""The pure core: FHIR-shaped records in, lines of therapy, failures and options out.

Rules of this package (enforced by tests/engine/test_purity.py, which walks the imports with ast):
no I/O, no clock (an ``as_of`` date is always a parameter), no Flask, no HTTP client, no authlib.
Knowledge arrives as a loaded ``KnowledgeBase``; records arrive as typed engine records, built
from FHIR JSON by ``salvage.fhir.records`` (the FHIR boundary).

Public API: analyse_patient() and the result types in engine.model.
"""

from salvage.engine.analysis import PatientAnalysis, analyse_patient

__all__ = ["PatientAnalysis", "analyse_patient"]
