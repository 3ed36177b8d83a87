"""Population tests use the shared, session-scoped real sandbox (sekmet-fhir behind the proxy)."""

from tests.support_sandbox import _no_faults, sandbox  # noqa: F401 (pytest fixtures)
