"""Population mode in bounded memory: route each resource to a bucket file on disk by a hash of its
patient, then convert bucket by bucket. Peak memory follows the bucket size (a setting), not the
population size, and the records, counts and skipped resources are those of one pass over the
whole input (tests/fhir/test_fast_path.py compares them on every fixture and review bundle).

Medications belong to no patient: they are kept in memory and handed to every bucket at their
place in the input, so an order meets the Medications it would have met in one pass.
"""

from __future__ import annotations

import heapq
import math
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from salvage.engine.model import PatientRecord
from salvage.fhir.decode import ResourceFilter, routing_fields
from salvage.fhir.reader import ReadResult, input_files, iter_lines_or_resources
from salvage.fhir.record_base import USED_TYPES
from salvage.fhir.records import RecordBuilder, Skipped, origin_text, patient_reference
from salvage.fhir.typed_records import ADMINISTRATION_PREFIX, OBSERVATION_PREFIX, TypedReader
from salvage.knowledge.model import KnowledgeBase

_LAST = (True, 1 << 62)  # where a skipped entry of unknown origin is listed
_NO_PATIENT = 0  # bucket of resources without a patient (the converter reports them skipped)


def bucket_count(paths: list[str], megabytes_per_bucket: float) -> int:
    """How many buckets keep each one near `megabytes_per_bucket` of input (1: no buckets)."""
    if megabytes_per_bucket <= 0:
        return 1
    size = 0
    for path in input_files(paths):
        try:
            size += path.stat().st_size
        except OSError:
            continue  # the reader reports it
    return max(1, math.ceil(size / (megabytes_per_bucket * 1_000_000)))


@dataclass
class BucketedBuild:
    """Patients bucket by bucket (`patients()`), then every skipped resource in input order."""

    kb: KnowledgeBase
    buckets: int
    read: ReadResult
    skipped: list[Skipped] = field(default_factory=list)

    def patients(self, paths: list[str]) -> Iterator[dict[str, PatientRecord]]:
        """Each bucket's patients; a dict is emptied once the next one is asked for, so only one
        bucket is held at a time."""
        only_read = ResourceFilter(self.kb, routing=True)
        keyed: list[tuple[tuple[bool, int], Skipped]] = []
        with tempfile.TemporaryDirectory(prefix="salvage-buckets-") as folder:
            files = [Path(folder) / f"bucket-{n}.ndjson" for n in range(self.buckets)]
            places: list[str] = []  # the files (and Bundles in NDJSON lines) read, in order
            medications = self._route(paths, only_read, files, places)
            for bucket in files:
                builder = RecordBuilder(self.kb)
                noting = _Noting()
                builder.skipped = noting
                resources = _read_bucket(bucket, self.read, places, only_read.typed)
                stream = heapq.merge(medications, resources) if medications else resources
                records = builder.build(noting.stream(stream, builder))
                bucket.unlink()
                yield records
                records.clear()
                keyed += noting.keyed
                del builder, noting, records
        # One pass converts every resource in input order, then those that waited for a
        # Medication later in the input, in input order: skipped resources are listed so.
        keyed.sort(key=lambda pair: pair[0])
        self.skipped = [s for _, s in keyed]

    def _route(
        self, paths: list[str], only_read: ResourceFilter, files: list[Path], places: list[str]
    ) -> list[tuple[int, dict[str, Any], Any]]:
        medications: list[tuple[int, dict[str, Any], Any]] = []
        place_index: dict[str, int] = {}
        handles: list[BinaryIO] = [f.open("wb") for f in files]
        try:
            for seq, (item, origin) in enumerate(
                iter_lines_or_resources(paths, self.read, only_read)
            ):
                fields: dict[str, Any]
                if isinstance(item, tuple):
                    line, head = item
                    fields = routing_fields(head)
                    body = line.rstrip(b"\r\n")
                else:
                    if not only_read.resource(item):
                        continue  # from a Bundle: a resource the converters ignore
                    fields = item
                    body = orjson.dumps(item)
                if fields.get("resourceType") == "Medication":
                    medications.append((seq, orjson.loads(body), origin))
                    continue
                patient = patient_reference(fields)
                n = (
                    zlib.crc32(patient.encode()) % len(files)
                    if patient is not None
                    else _NO_PATIENT
                )
                where = place_index.get(origin[0])
                if where is None:
                    where = place_index[origin[0]] = len(places)
                    places.append(origin[0])
                handles[n].write(orjson.dumps([seq, where, origin[1]]) + b"\t" + body + b"\n")
        finally:
            for handle in handles:
                handle.close()
        return medications


def _read_bucket(
    path: Path, read: ReadResult, places: list[str], typed: TypedReader
) -> Iterator[tuple[int, Any, Any]]:
    with path.open("rb") as handle:
        for line in handle:
            meta, _, body = line.partition(b"\t")
            seq, place, position = orjson.loads(meta)
            where = places[place]
            plain: Any = None  # decoded once, typed (typed_records.py), when of a plain shape
            if body.startswith(OBSERVATION_PREFIX):
                plain = typed.observation(body)
            elif body.startswith(ADMINISTRATION_PREFIX):
                plain = typed.administration(body)
            if plain is not None:
                yield seq, plain, (where, position)
                continue
            try:
                resource = orjson.loads(body)
            except orjson.JSONDecodeError as exc:  # JSON the first look skipped over
                read.count -= 1
                read.skipped.append(
                    Skipped(f"{where}:{position}", "", f"malformed JSON ({exc.msg})")
                )
                continue
            yield seq, resource, (where, position)


class _Noting(list[Skipped]):
    """The builder's list of skipped resources, noting for each the place the one-pass builder
    gives it: (waited for a later Medication, position in the input). A resource converted while
    the stream is read is the one the stream handed on last; those that waited are converted
    after the stream ends, and are few: only their positions are kept."""

    def __init__(self) -> None:
        super().__init__()
        self.keyed: list[tuple[tuple[bool, int], Skipped]] = []
        self._current = -1
        self._ended = False
        self._waiting: dict[str, int] = {}

    def append(self, item: Skipped) -> None:
        super().append(item)
        if self._ended:
            self.keyed.append(((True, self._waiting.get(item.origin, _LAST[1])), item))
        else:
            self.keyed.append(((False, self._current), item))

    def stream(
        self, merged: Iterator[tuple[int, Any, Any]], builder: RecordBuilder
    ) -> Iterator[tuple[Any, Any]]:
        for seq, resource, origin in merged:
            rtype = resource.get("resourceType") if type(resource) is dict else None
            if (
                rtype in USED_TYPES
                and rtype not in ("Observation", "Medication")
                and builder._refers_to_unseen_medication(resource)
            ):
                self._waiting[origin_text(origin)] = seq
            self._current = seq
            yield resource, origin
        self._ended = True
