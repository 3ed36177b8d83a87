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
        only_read = ResourceFilter(self.kb)
        keyed: list[tuple[tuple[bool, int], Skipped]] = []
        with tempfile.TemporaryDirectory(prefix="salvage-buckets-") as folder:
            files = [Path(folder) / f"bucket-{n}.ndjson" for n in range(self.buckets)]
            medications = self._route(paths, only_read, files)
            for bucket in files:
                builder = RecordBuilder(self.kb)
                order: dict[str, tuple[bool, int]] = {}
                stream = heapq.merge(medications, _read_bucket(bucket, self.read))
                yield builder.build(_noting_order(stream, builder, order))
                keyed += [(order.get(s.origin, _LAST), s) for s in builder.skipped]
                bucket.unlink()
        # One pass converts every resource in input order, then those that waited for a
        # Medication later in the input, in input order: skipped resources are listed so.
        keyed.sort(key=lambda pair: pair[0])
        self.skipped = [s for _, s in keyed]

    def _route(
        self, paths: list[str], only_read: ResourceFilter, files: list[Path]
    ) -> list[tuple[int, dict[str, Any], Any]]:
        medications: list[tuple[int, dict[str, Any], Any]] = []
        handles: list[BinaryIO] = [f.open("wb") for f in files]
        try:
            for seq, (item, origin) in enumerate(
                iter_lines_or_resources(paths, self.read, only_read)
            ):
                fields: dict[str, Any]
                if isinstance(item, bytes):
                    fields = routing_fields(item)
                    body = item.rstrip(b"\r\n")
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
                handles[n].write(orjson.dumps([seq, origin[0], origin[1]]) + b"\t" + body + b"\n")
        finally:
            for handle in handles:
                handle.close()
        return medications


def _read_bucket(path: Path, read: ReadResult) -> Iterator[tuple[int, Any, Any]]:
    with path.open("rb") as handle:
        for line in handle:
            meta, _, body = line.partition(b"\t")
            seq, where, position = orjson.loads(meta)
            try:
                resource = orjson.loads(body)
            except orjson.JSONDecodeError as exc:  # JSON the first look skipped over
                read.count -= 1
                read.skipped.append(
                    Skipped(f"{where}:{position}", "", f"malformed JSON ({exc.msg})")
                )
                continue
            yield seq, resource, (where, position)


def _noting_order(
    stream: Iterator[tuple[int, Any, Any]],
    builder: RecordBuilder,
    order: dict[str, tuple[bool, int]],
) -> Iterator[tuple[Any, Any]]:
    """Hand resources on to the builder, noting for each the place the one-pass builder gives
    its skipped entry: (waits for a later Medication, position in the input)."""
    for seq, resource, origin in stream:
        rtype = resource.get("resourceType") if type(resource) is dict else None
        waits = (
            rtype in USED_TYPES
            and rtype not in ("Observation", "Medication")
            and builder._refers_to_unseen_medication(resource)
        )
        order[origin_text(origin)] = (waits, seq)
        yield resource, origin
