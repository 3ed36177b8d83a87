"""Decode only what the engine reads: a typed first look at each NDJSON line that drops, without
building it, every resource the converters would ignore (most of a record: labs no rule reads,
resource types outside the one query set). Everything else, and every shape this first look
does not cover, is decoded in full and goes the general dict path (reader.py, records.py).

What is read is derived, never listed here: resource types from the one query set
(queries.USED_TYPES), Observation codes from the knowledge base (kb.loinc_index) and HIV
genotype results from genotypes.is_genotype. tests/fhir/test_fast_path.py proves that the
fast path and the general path give the same reports on every fixture and review bundle.
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson

import salvage.fhir.genotypes as genotypes
import salvage.fhir.queries as queries
from salvage.fhir.performance_records import PerformanceReader
from salvage.fhir.typed_records import TypedReader
from salvage.knowledge.model import KnowledgeBase

_ABSENT = msgspec.Raw()


class _Head(msgspec.Struct):
    """The fields a keep-or-drop decision needs; every other field is skipped, not built.
    code and component stay raw bytes: the same lab code recurs across every patient, so the
    decision is remembered per exact byte string of the code."""

    resourceType: str
    code: msgspec.Raw = _ABSENT
    component: msgspec.Raw = _ABSENT


# What the first look concluded about one NDJSON line.
KEEP = 0  # decode in full and convert (the general path)
DROP = 1  # a resource the converters ignore: counted as read, never built
GENERAL = 2  # a shape the first look does not cover: the general path decides everything


class ResourceFilter:
    """Which resources the converters read, for one knowledge base (see the module docstring).
    `line` looks at raw NDJSON bytes; `resource` at an already decoded resource (Bundles)."""

    def __init__(self, kb: KnowledgeBase, *, routing: bool = False) -> None:
        self.kb = kb
        self._decode = msgspec.json.Decoder(RoutedHead if routing else _Head).decode
        self.head: _Head | None = None  # the last line's first look (a RoutedHead if routing)
        self.loinc_index = kb.loinc_index
        self.performance = PerformanceReader(kb)
        self.used_types = queries.USED_TYPES
        self._observation_codes: dict[bytes, bool] = {}  # raw code bytes -> read by a rule
        self.typed = TypedReader(kb)  # kept lines of a plain shape, decoded once (typed_records)

    def line(self, raw: bytes, known_types: set[str] | frozenset[str]) -> tuple[int, str]:
        """(KEEP | DROP | GENERAL, resourceType) for one NDJSON line. Types not yet confirmed
        as FHIR resource types (known_types) and Bundles go the general path, which checks them
        and reports what it skips."""
        try:
            head = self.head = self._decode(raw)
        except (msgspec.ValidationError, msgspec.DecodeError):
            self.head = None
            return GENERAL, ""
        rtype = head.resourceType
        if rtype not in known_types or rtype == "Bundle":
            return GENERAL, rtype
        if rtype == "Observation":
            if len(head.component):
                return GENERAL, rtype  # a panel or genotype with components: read in full
            code = bytes(head.code)
            read = self._observation_codes.get(code)
            if read is None:
                read = self._observation_codes[code] = self._reads_observation_code(code)
            return (KEEP if read else DROP), rtype
        if rtype in self.used_types:
            return KEEP, rtype
        return DROP, rtype

    def _reads_observation_code(self, raw_code: bytes) -> bool:
        """Whether records.RecordBuilder would convert an Observation (without components) with
        this code: a coding in the knowledge base's LOINC index, a genotype result, or a code
        whose shape it does not drop early (then it converts and decides there)."""
        if not raw_code:
            return True  # no code: the builder converts it and reports why it is skipped
        code = orjson.loads(raw_code)
        coding = code.get("coding") if type(code) is dict else None
        if type(coding) is not list:
            return True
        for c in coding:
            if type(c) is dict and type(c.get("code")) is str and c["code"] in self.loinc_index:
                return True
        if self.performance.claims(code):
            return True  # a performance status named in words ("ECOG"), no LOINC code
        return genotypes.is_genotype({"code": code}, self.kb)

    def resource(self, resource: Any) -> bool:
        """Whether a decoded resource may be read by the converters (False: safe to drop)."""
        if type(resource) is not dict:
            return True
        rtype = resource.get("resourceType")
        if rtype == "Observation":
            if "component" in resource or "code" not in resource:
                return True
            raw_code = orjson.dumps(resource["code"])
            read = self._observation_codes.get(raw_code)
            if read is None:
                read = self._observation_codes[raw_code] = self._reads_observation_code(raw_code)
            return read
        return not isinstance(rtype, str) or rtype in self.used_types or rtype == "Bundle"


class RoutedHead(_Head):
    """_Head and what records.patient_reference reads, to route a line to its patient's bucket
    (salvage/fhir/buckets.py) from the same first look."""

    id: Any = None
    subject: Any = None
    patient: Any = None


def routing_fields(head: RoutedHead) -> dict[str, Any]:
    """The fields of a resource that say which patient it belongs to."""
    return {
        "resourceType": head.resourceType,
        "id": head.id,
        "subject": head.subject,
        "patient": head.patient,
    }
