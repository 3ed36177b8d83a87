"""Named errors of salvage-cds; callers catch the class, never match on message text."""


class SalvageError(Exception):
    """Base class of every error this project raises on purpose."""


class InputError(SalvageError):
    """An input file cannot be read as FHIR (malformed JSON, not a FHIR document, unreadable)."""

    def __init__(self, message: str, *, path: str = "", line: int | None = None) -> None:
        self.path = path
        self.line = line
        where = path + (f":{line}" if line is not None else "")
        super().__init__(f"{where}: {message}" if where else message)


class ResourceError(SalvageError):
    """One resource is invalid (unknown type, invalid date, ...): it is skipped and counted."""

    def __init__(self, message: str, *, resource: str = "") -> None:
        self.resource = resource
        super().__init__(message)


class KnowledgeError(SalvageError):
    """A knowledge file (shipped or institutional overlay) fails its schema or cross-references."""


class ConfigError(SalvageError):
    """An operator's configuration file or setting is invalid; start-up stops and names it."""


class RequestError(SalvageError):
    """A request cannot be served as sent. Each subclass carries its HTTP status; salvage/app.py is
    the one place that turns these errors into responses (JSON, or the SMART error page)."""

    status = 400

    def __init__(self, message: str = "", status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class BadRequest(RequestError):
    """Malformed input: 400."""


class TooLarge(RequestError):
    """Over a documented limit (body, drafts, prefetch entries): 413."""

    status = 413


class Unauthorized(RequestError):
    """Not a trusted, correctly authenticated caller: a bare 401 (the reason is only logged)."""

    status = 401


class PreconditionFailed(RequestError):
    """Data the answer needs is neither given nor readable (CDS Hooks: 412)."""

    status = 412


class PrefetchUnavailable(PreconditionFailed):
    """Prefetch is incomplete and no fhirServer/fhirAuthorization was given."""


class FhirUnavailable(PreconditionFailed):
    """The FHIR server answered with an error for a required read."""


class ServiceUnavailable(RequestError):
    """A dependency of ours (the database) failed: 503, with a clear body."""

    status = 503


class LaunchError(RequestError):
    """A SMART launch or session problem, shown to the user as a page asking to relaunch."""


class DatabaseUnavailable(ServiceUnavailable):
    """The database cannot be opened or written (read-only, full, unreachable): HTTP 503."""


class DiscoveryError(SalvageError):
    """A FHIR server's SMART endpoints could not be discovered."""


class ExportError(SalvageError):
    """A Bulk Data export could not be started, followed or completed (the state file is kept,
    so the same command resumes it)."""
