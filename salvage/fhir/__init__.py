"""FHIR I/O: read Bundles and NDJSON exports; build and validate emitted resources (R4B models)."""
