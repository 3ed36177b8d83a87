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
