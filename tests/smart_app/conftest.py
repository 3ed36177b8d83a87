"""The real sandbox for the SMART reader tests that need a FHIR server."""

from tests.support_sandbox import _no_faults, sandbox  # noqa: F401 (pytest fixtures)
