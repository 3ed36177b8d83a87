"""The same per-patient pipeline on PySpark (optional extra: `pip install salvage-cds[spark]`),
for populations beyond one machine's memory.

The JVM reads the NDJSON, keeps only the resource types the engine reads, keys every line by its
patient reference and numbers it (file, line) as the single-process reader does; rows are
repartitioned by patient and sorted within partitions, then `mapInPandas` hands each patient's
resources, in input order, to salvage.service.report_for_resources. The knowledge base is
broadcast once (each executor unpickles it once per Python worker). Medications, which belong to
no patient, are broadcast too and joined to the orders that reference them.
"""

from __future__ import annotations

import os
import pickle  # nosec: only our own driver's objects travel this way, inside one Spark job
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

from salvage.errors import SalvageError
from salvage.fhir.queries import USED_TYPES
from salvage.fhir.reader import ReadResult, input_files
from salvage.knowledge import KnowledgeBase

PATIENT_PATTERN = r"(?:^|/)Patient/([^/]+?)/?(?:/_history(?:/[^/]*)?)?$"
COLUMNS = ["patient", "payload", "skipped", "resources"]
NO_PATIENT = ""  # resources that name no patient: read on the executors for their skip reasons
LOST = "its patient reference was not recognised in Spark mode: run without --spark"


def require_pyspark() -> None:
    try:
        import pyspark  # noqa: F401
    except ImportError as exc:
        raise SalvageError(
            "--spark needs the spark extra: pip install 'salvage-cds[spark]' (and Java 17)"
        ) from exc


def session(master: str) -> Any:
    """A SparkSession on `master` (local[N], spark://..., yarn, k8s://...). Executors run the
    driver's Python unless PYSPARK_PYTHON says otherwise (set it on a cluster)."""
    require_pyspark()
    if master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.master(master)
        .appName("salvage-cds")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.session.timeZone", "UTC")
    )
    if master.startswith("local"):
        builder = builder.config("spark.driver.bindAddress", "127.0.0.1").config(
            "spark.driver.host", "127.0.0.1"
        )
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _keyed(spark: Any, files: list[Path]) -> Any:
    """(patient, file index, line number, text) for every line of a used resource type."""
    from pyspark.sql import functions as F
    from pyspark.sql.window import Window

    names = {str(f.resolve()): i for i, f in enumerate(files)}
    index = spark.createDataFrame(list(names.items()), "uri string, file_index int")
    raw = spark.read.text([str(f) for f in files]).select(
        "value",
        F.url_decode(F.regexp_replace("_metadata.file_path", "^file:(//)?", "")).alias("uri"),
        F.col("_metadata.file_block_start").alias("block"),
        F.monotonically_increasing_id().alias("mid"),
    )
    raw = raw.localCheckpoint()  # the ids must not change between the two passes below
    # Line numbers: rows of one file split are consecutive ids; splits are ordered by offset.
    blocks = raw.groupBy("uri", "block").agg(F.count("*").alias("n"), F.min("mid").alias("first"))
    before = Window.partitionBy("uri").orderBy("block").rowsBetween(Window.unboundedPreceding, -1)
    blocks = blocks.withColumn("base", F.coalesce(F.sum("n").over(before), F.lit(0)) + 1)
    lines = raw.join(F.broadcast(blocks.select("uri", "block", "first", "base")), ["uri", "block"])
    lines = lines.withColumn("line", F.col("base") + F.col("mid") - F.col("first"))
    lines = lines.join(F.broadcast(index), "uri", "left")
    rtype = F.get_json_object("value", "$.resourceType")
    reference = F.coalesce(
        F.get_json_object("value", "$.subject.reference"),
        F.get_json_object("value", "$.patient.reference"),
    )
    patient_id = F.regexp_extract(reference, PATIENT_PATTERN, 1)
    patient = (
        F.when(rtype == "Patient", F.concat(F.lit("Patient/"), F.get_json_object("value", "$.id")))
        .when(patient_id != "", F.concat(F.lit("Patient/"), patient_id))
        .otherwise(F.lit(NO_PATIENT))
    )
    blank = F.trim(F.col("value")) == ""
    used = rtype.isin(sorted(USED_TYPES - {"Medication"}))
    unreadable = rtype.isNull() & ~blank  # malformed JSON or no resourceType: reasons on executors
    return (
        lines.where(used | unreadable)
        .select(
            F.coalesce(patient, F.lit(NO_PATIENT)).alias("patient"),
            "file_index",
            "line",
            "value",
        )
        .where((F.col("patient") != NO_PATIENT) | unreadable | used)
    ), lines.where(rtype == "Medication").select("value")


def run(
    paths: list[str],
    kb: KnowledgeBase,
    as_of: date,
    master: str,
    mode: str,
    partitions: int | None = None,
) -> tuple[list[tuple[str, bytes]], ReadResult, list[Any]]:
    """Per-patient payloads in patient order and the skipped resources. mode "report" returns
    pickled PatientReports (lines, recommend); mode "cohort" returns cohort entries (JSON)."""
    files = input_files(paths)
    bundles = [f for f in files if f.suffix not in (".ndjson", ".jsonl")]
    if bundles:
        raise SalvageError(
            f"--spark reads NDJSON (a Bulk Data export); {bundles[0]} is not: run without --spark"
        )
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise SalvageError(f"{missing[0]}: cannot read (no such file)")
    if not files:
        raise SalvageError("no NDJSON input found")
    spark = session(master)
    keyed, medications = _keyed(spark, files)
    medication_text = [row.value for row in medications.collect()]
    context = spark.sparkContext.broadcast(
        pickle.dumps((kb, as_of, mode, [str(f) for f in files], medication_text))
    )
    count = partitions or max(2, spark.sparkContext.defaultParallelism)
    ordered = keyed.repartition(count, "patient").sortWithinPartitions(
        "patient", "file_index", "line"
    )

    def per_partition(batches: Iterator[Any]) -> Iterator[Any]:
        return _per_partition(batches, context.value)

    result = ordered.mapInPandas(
        per_partition, "patient string, payload binary, skipped binary, resources long"
    )
    payloads: list[tuple[str, bytes]] = []
    read = ReadResult()
    ranked: list[tuple[int, int, int, Any]] = []
    for row in result.sort("patient").toLocalIterator():
        read.count += int(row.resources)
        if row.payload is not None:
            payloads.append((row.patient, bytes(row.payload)))
        if row.skipped is not None:
            ranked += pickle.loads(bytes(row.skipped))  # noqa: S301 (our executors' output)
    # The single process's order: lines the reader rejected first, then resources in input order.
    ranked.sort(key=lambda item: item[:3])
    return payloads, read, [item[3] for item in ranked]


_CACHE: dict[int, Any] = {}


def _context(blob: bytes) -> Any:
    """The broadcast context, unpickled once per Python worker."""
    key = hash(blob)
    if key not in _CACHE:
        _CACHE.clear()
        kb, as_of, mode, files, medication_text = pickle.loads(blob)  # noqa: S301
        _CACHE[key] = (kb, as_of, mode, files, _medications(medication_text))
    return _CACHE[key]


def _medications(texts: list[str]) -> dict[str, dict[str, Any]]:
    import orjson

    found: dict[str, dict[str, Any]] = {}
    for text in texts:
        try:
            resource = orjson.loads(text)
        except orjson.JSONDecodeError:
            continue
        if isinstance(resource, dict) and isinstance(resource.get("id"), str):
            found[f"Medication/{resource['id']}"] = resource
    return found


def _per_partition(batches: Iterator[Any], blob: bytes) -> Iterator[Any]:
    import pandas as pd

    kb, as_of, mode, files, medications = _context(blob)
    current: str | None = None
    rows: list[tuple[int, int, str]] = []
    out: list[dict[str, Any]] = []
    for batch in batches:
        for patient, file_index, line, value in zip(
            batch["patient"], batch["file_index"], batch["line"], batch["value"], strict=True
        ):
            if patient != current and current is not None:
                out.append(_one_patient(current, rows, kb, as_of, mode, files, medications))
                rows = []
            current = patient
            rows.append((int(file_index), int(line), value))
        if out:
            yield pd.DataFrame(out, columns=COLUMNS)
            out = []
    if current is not None:
        out.append(_one_patient(current, rows, kb, as_of, mode, files, medications))
        yield pd.DataFrame(out, columns=COLUMNS)


def _one_patient(
    patient: str,
    rows: list[tuple[int, int, str]],
    kb: KnowledgeBase,
    as_of: date,
    mode: str,
    files: list[str],
    medications: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    import orjson

    from salvage import service
    from salvage.fhir.record_base import type_id
    from salvage.fhir.records import Skipped, patient_reference
    from salvage.population.cohort import patient_entry

    items: list[tuple[dict[str, Any], Any]] = []
    skipped: list[tuple[int, int, int, Skipped]] = []  # (reader or converter, file, line, ...)
    wanted: dict[str, dict[str, Any]] = {}
    for file_index, line, value in rows:
        origin = (files[file_index], line)
        try:
            resource = orjson.loads(value + "\n")  # the reader's lines keep their newline
        except orjson.JSONDecodeError as exc:
            reason = f"malformed JSON ({exc.msg})"
            skipped.append((0, file_index, line, Skipped(f"{origin[0]}:{line}", "", reason)))
            continue
        if not isinstance(resource, dict):
            reason = "not a JSON object"
            skipped.append((0, file_index, line, Skipped(f"{origin[0]}:{line}", "", reason)))
            continue
        reference = resource.get("medicationReference")
        target = reference.get("reference") if isinstance(reference, dict) else None
        if isinstance(target, str) and not target.startswith("#"):
            found = medications.get(type_id(target))
            if found is not None:
                wanted[type_id(target)] = found
        items.append((resource, origin))
    medication_items = [(m, ("medication", 0)) for m in wanted.values()]
    payload = None
    if patient != NO_PATIENT:
        report, more = service.report_for_resources([*medication_items, *items], patient, kb, as_of)
    else:
        report, more = service.report_for_resources(items, "", kb, as_of)
        # Never silent: a resource the JVM could not key but Python reads as a patient's.
        more += [
            Skipped(f"{origin[0]}:{origin[1]}", f"{r.get('resourceType')}/{r.get('id', '')}", LOST)
            for r, origin in items
            if patient_reference(r) is not None
        ]
    where = {f"{files[i]}:{n}": (i, n) for i, n, _ in rows}
    skipped += [(1, *where.get(s.origin, (len(files), 0)), s) for s in more]
    if report is not None:
        if mode == "cohort":
            payload = orjson.dumps(patient_entry(report))
        else:
            payload = pickle.dumps(report)
    return {
        "patient": patient,
        "payload": payload,
        "skipped": pickle.dumps(skipped) if skipped else None,
        "resources": len(items),
    }
