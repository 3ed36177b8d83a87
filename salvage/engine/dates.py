"""FHIR date and dateTime parsing to calendar dates (partial dates take their first day)."""

from __future__ import annotations

import functools
import re
from datetime import date

from salvage.errors import ResourceError

# FHIR R4 dateTime: YYYY, YYYY-MM, YYYY-MM-DD, or a full time with zone (datatypes.html#dateTime).
_FHIR_DATETIME = re.compile(
    r"^\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01])"
    r"(T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d{1,9})?(Z|[+-]((0\d|1[0-3]):[0-5]\d|14:00)))?)?)?$"
)


@functools.lru_cache(maxsize=65536)
def _calendar_date(value: str) -> date | None:
    """The calendar date of a FHIR date/dateTime string, or None if it is not one (memoised:
    a record repeats the same dates many times)."""
    if not _FHIR_DATETIME.match(value):
        return None
    year = int(value[0:4])
    month = int(value[5:7]) if len(value) >= 7 else 1
    day = int(value[8:10]) if len(value) >= 10 else 1
    try:
        return date(year, month, day)
    except ValueError:  # e.g. 2023-02-30 passes the pattern but is not a date
        return None


def parse_fhir_date(value: object, *, field_name: str, source: str) -> date:
    """A calendar date from a FHIR date/dateTime, or ResourceError naming the field."""
    parsed = _calendar_date(value) if isinstance(value, str) else None
    if parsed is None:
        raise ResourceError(f"invalid {field_name} {value!r}", resource=source)
    return parsed


def optional_date(value: object, *, field_name: str, source: str) -> date | None:
    return None if value is None else parse_fhir_date(value, field_name=field_name, source=source)


def months_between(earlier: date, later: date) -> float:
    """Elapsed months as days / 30.4375 (mean Gregorian month), to one decimal."""
    return round((later - earlier).days / 30.4375, 1)
