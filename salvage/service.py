"""The one use case of salvage-cds: a patient's FHIR resources, the knowledge base and an analysis
date in, one typed patient report out (lines, failures, recommendation, order findings).

Every surface calls this module: the CLI (`salvage lines`, `salvage recommend`), the SMART app's
summary and the CDS Hooks service. None of them chains engine steps or reads the clock itself, so
the pipeline is assembled once, here, and all surfaces answer from the same knowledge base.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from salvage.engine import analyse_patient
from salvage.engine.analysis import PatientAnalysis
from salvage.engine.markers import MarkerSeries, marker_series
from salvage.engine.model import PatientRecord
from salvage.engine.order_checks import DraftOrder, OrderFinding, check_delay, check_orders
from salvage.engine.recommend import Recommendation, recommend
from salvage.engine.wording import counted
from salvage.fhir.buckets import BucketedBuild, bucket_count
from salvage.fhir.decode import ResourceFilter
from salvage.fhir.reader import ReadResult, iter_resources
from salvage.fhir.records import Skipped, build_patient_records
from salvage.knowledge import KnowledgeBase, load_knowledge

OVERLAY_VARIABLE = "SALVAGE_KB_OVERLAY"
# Population mode: megabytes of input per on-disk bucket (peak memory follows it); 0: one pass.
BUCKET_VARIABLE = "SALVAGE_BUCKET_MB"
DEFAULT_BUCKET_MB = 64.0


@dataclass(frozen=True, kw_only=True)
class PatientReport:
    """Everything salvage-cds concludes about one patient on one date."""

    patient: str  # "Patient/<id>"
    as_of: date
    analysis: PatientAnalysis
    recommendation: Recommendation
    order_findings: tuple[OrderFinding, ...]  # about the draft orders (order-select/-sign)
    delay_findings: tuple[OrderFinding, ...]  # time since a failure (patient-view)
    unreadable: frozenset[str]  # FHIR resource types that could not be read
    markers: tuple[MarkerSeries, ...]  # key disease markers with this patient's thresholds


def knowledge_base(overlay: str | None = None) -> KnowledgeBase:
    """The process's knowledge base: the shipped files plus the institution overlay named by
    `overlay` ("" for none) or, when None, by SALVAGE_KB_OVERLAY. Loaded once and cached."""
    if overlay is None:
        overlay = os.environ.get(OVERLAY_VARIABLE, "")
    return load_knowledge(None, overlay or None)


def today() -> date:
    """The analysis date when a caller gives none: the one place that reads the clock."""
    return date.today()


def report_for_record(
    record: PatientRecord,
    kb: KnowledgeBase,
    as_of: date,
    drafts: tuple[DraftOrder, ...] = (),
    unreadable: frozenset[str] = frozenset(),
) -> PatientReport:
    """The pipeline: analysis, recommendation, order checks."""
    analysis = analyse_patient(record, kb, as_of, unreadable=unreadable)
    recommendation = recommend(analysis, kb, as_of)
    return PatientReport(
        patient=record.reference,
        as_of=as_of,
        analysis=analysis,
        recommendation=recommendation,
        order_findings=check_orders(kb, analysis, recommendation, drafts, as_of),
        delay_findings=check_delay(kb, analysis, recommendation, as_of),
        unreadable=unreadable,
        markers=marker_series(analysis, kb),
    )


def report_for_patient(
    resources: Iterable[dict[str, Any]],
    patient_id: str,
    kb: KnowledgeBase,
    as_of: date,
    drafts: tuple[DraftOrder, ...] = (),
    unreadable: frozenset[str] = frozenset(),
    origin: str = "fhir",
) -> tuple[PatientReport, list[Skipped]]:
    """The report of one patient from resources read for them (SMART app, CDS service); other
    patients' resources are ignored. Returns the report and the resources skipped as invalid."""
    patients, skipped = build_patient_records(
        ((r, (origin, i)) for i, r in enumerate(resources)), kb
    )
    reference = f"Patient/{patient_id}"
    record = patients.get(reference) or PatientRecord(reference=reference)
    return report_for_record(record, kb, as_of, drafts, unreadable), skipped


def bucket_megabytes() -> float:
    """SALVAGE_BUCKET_MB, or the default when it is unset or not a number."""
    try:
        return float(os.environ.get(BUCKET_VARIABLE, DEFAULT_BUCKET_MB))
    except ValueError:
        return DEFAULT_BUCKET_MB


@dataclass
class Population:
    """A population read from files: what the reader met, how many buckets it was split into
    and, once `records` is exhausted, every skipped resource in input order."""

    read: ReadResult
    buckets: int
    skipped: list[Skipped]
    records: Iterator[dict[str, PatientRecord]]  # patients, one dict per bucket


def read_population(
    paths: Sequence[str], kb: KnowledgeBase, *, fast: bool = True, bucket_mb: float | None = None
) -> Population:
    """Patient records from Bundle / NDJSON files. Input larger than `bucket_mb` megabytes
    (SALVAGE_BUCKET_MB) is routed into patient buckets on disk and converted bucket by bucket,
    in bounded memory, with the same records. `fast=False` takes the general decoding path in
    one pass (the reference the fast path and the buckets are tested against)."""
    read = ReadResult()
    megabytes = bucket_megabytes() if bucket_mb is None else bucket_mb
    buckets = bucket_count(list(paths), megabytes) if fast else 1
    population = Population(read=read, buckets=buckets, skipped=[], records=iter(()))

    def bucketed() -> Iterator[dict[str, PatientRecord]]:
        build = BucketedBuild(kb, buckets, read)
        yield from build.patients(list(paths))
        population.skipped = read.skipped + build.skipped

    def one_pass() -> Iterator[dict[str, PatientRecord]]:
        only_read = ResourceFilter(kb) if fast else None
        patients, skipped = build_patient_records(iter_resources(list(paths), read, only_read), kb)
        population.skipped = read.skipped + skipped
        yield patients

    population.records = bucketed() if buckets > 1 else one_pass()
    return population


def reports_for_files(
    paths: Sequence[str],
    kb: KnowledgeBase,
    as_of: date,
    patient: str | None = None,
    progress: Callable[[str], None] | None = None,
    *,
    fast: bool = True,
    bucket_mb: float | None = None,
    keep_records: bool = True,
) -> tuple[list[PatientReport], ReadResult, list[Skipped]]:
    """Reports of every patient in Bundle / NDJSON files (CLI), or of one patient; returns the
    reports, what the reader met (errors, counts) and every skipped resource (see
    read_population for `fast` and `bucket_mb`). With keep_records=False the reports do not hold
    on to each patient's converted record (analysis.record keeps only the reference), so a
    population analysed in buckets is not held in memory whole until the output is written."""
    wanted = None if patient is None else f"Patient/{patient.removeprefix('Patient/')}"
    population = read_population(paths, kb, fast=fast, bucket_mb=bucket_mb)
    reports: list[PatientReport] = []
    for n, patients in enumerate(population.records, start=1):
        if progress:
            where = f" (bucket {n} of {population.buckets})" if population.buckets > 1 else ""
            progress(f"analysing {counted(len(patients), 'patient')}{where}")
        made = _reports(patients, kb, as_of, wanted)
        reports += made if keep_records else [_without_record(r) for r in made]
    if population.buckets > 1:
        reports.sort(key=lambda r: r.patient)
    return reports, population.read, population.skipped


def _without_record(report: PatientReport) -> PatientReport:
    # The output still reports what the reader could not map or only partly recognised.
    kept = report.analysis.record
    empty = PatientRecord(
        reference=kept.reference,
        unmapped=kept.unmapped,
        warnings=kept.warnings,
        partly_recognised=kept.partly_recognised,
    )
    return replace(report, analysis=replace(report.analysis, record=empty))


def _reports(
    patients: dict[str, PatientRecord], kb: KnowledgeBase, as_of: date, wanted: str | None
) -> list[PatientReport]:
    return [
        report_for_record(record, kb, as_of)
        for reference, record in sorted(patients.items())
        if wanted is None or reference == wanted
    ]


def report_for_resources(
    resources: Iterable[tuple[dict[str, Any], Any]],
    reference: str,
    kb: KnowledgeBase,
    as_of: date,
) -> tuple[PatientReport | None, list[Skipped]]:
    """The report of the patient `reference` ("Patient/<id>") from (resource, origin) pairs read
    for that patient (population mode: a Spark partition's group of one patient's resources);
    None when no resource belongs to them. Returns the skipped resources with their origins."""
    patients, skipped = build_patient_records(resources, kb)
    record = patients.get(reference)
    if record is None:
        return None, skipped
    return report_for_record(record, kb, as_of), skipped
