"""Sandbox tests use the shared, session-scoped real sandbox."""

from tests.support_sandbox import _no_faults, sandbox  # noqa: F401 (pytest fixtures)
