"""salvage-cds: clinical decision support for salvage therapy, built on FHIR R4 records."""

__version__ = "0.1.0"
