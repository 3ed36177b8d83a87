"""The population subcommands of `salvage`: export (Bulk Data) and cohort, and the --spark path
of lines and recommend. Messages go to stderr; exit status 2 for input and export errors."""

from __future__ import annotations

import argparse
import pickle
import sys
from datetime import date
from pathlib import Path
from typing import Any

import orjson

from salvage import service
from salvage.engine.wording import counted
from salvage.errors import ExportError, SalvageError
from salvage.fhir.reader import ReadResult
from salvage.population.progress import Meter
from salvage.service import PatientReport

EXIT_INPUT_ERROR = 2


def spark_reports(
    paths: list[str], as_of: date, master: str, patient: str | None
) -> tuple[list[PatientReport], ReadResult, list[Any]]:
    """lines / recommend --spark: the same PatientReports, computed on the executors."""
    from salvage.population import spark

    payloads, read, skipped = spark.run(paths, service.knowledge_base(), as_of, master, "report")
    wanted = None if patient is None else f"Patient/{patient.removeprefix('Patient/')}"
    reports = [
        pickle.loads(blob)  # noqa: S301 (our own executors' output)
        for reference, blob in payloads
        if wanted is None or reference == wanted
    ]
    return reports, read, skipped


def _require_cohort_extra() -> None:
    try:
        import lifelines  # noqa: F401
        import matplotlib  # noqa: F401
        import pyarrow  # noqa: F401
    except ImportError as exc:
        raise SalvageError(
            "salvage cohort needs the cohort extra: pip install 'salvage-cds[cohort]'"
        ) from exc


def cmd_cohort(args: argparse.Namespace) -> int:
    _require_cohort_extra()
    from salvage.population.cohort import build_cohort, patient_entry
    from salvage.population.write import write_cohort

    kb = service.knowledge_base()
    entries: list[dict[str, Any]]
    if args.spark:
        from salvage.population import spark

        payloads, read, skipped = spark.run(args.paths, kb, args.as_of, args.spark, "cohort")
        entries = [orjson.loads(blob) for _, blob in payloads]
    else:
        reports, read, skipped = service.reports_for_files(args.paths, kb, args.as_of)
        with Meter("patients", total=len(reports)) as meter:
            entries = []
            for report in reports:
                entries.append(patient_entry(report))
                meter.add()
    for error in read.errors:
        print(f"salvage: error: {error}", file=sys.stderr)
    for s in skipped:
        where = s.origin + (f" {s.resource}" if s.resource else "")
        print(f"salvage: skipped {where}: {s.reason}", file=sys.stderr)
    if not entries:
        print("salvage: error: no patient could be read from the input", file=sys.stderr)
        return EXIT_INPUT_ERROR
    cohort = build_cohort(entries, kb, args.as_of)
    written = write_cohort(cohort, Path(args.out))
    print(
        f"salvage: cohort of {counted(cohort.summary['patients'], 'patient')}, "
        f"{counted(len(cohort.lines), 'line')}, {counted(len(cohort.failures), 'failure')} "
        f"written to {args.out} "
        f"({', '.join(p.name for p in written)})",
        file=sys.stderr,
    )
    return EXIT_INPUT_ERROR if read.errors else 0


def cmd_export(args: argparse.Namespace) -> int:
    import requests

    from salvage.population.backend_auth import (
        BackendServices,
        discover_token_url,
        load_private_key,
    )
    from salvage.population.export import BulkExport, ExportRequest, export_types, system_scopes

    if not args.fhir.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        print("salvage: error: --fhir must be an https URL (loopback excepted)", file=sys.stderr)
        return EXIT_INPUT_ERROR
    request = ExportRequest(
        base=args.fhir.rstrip("/"), out=Path(args.out), group=args.group, since=args.since
    )
    session = requests.Session()
    auth = None
    if args.client_id or args.private_key:
        if not (args.client_id and args.private_key):
            print("salvage: error: give both --client-id and --private-key", file=sys.stderr)
            return EXIT_INPUT_ERROR
        auth = BackendServices(
            client_id=args.client_id,
            key=load_private_key(args.private_key),
            token_url=args.token_url or discover_token_url(request.base, session),
            scope=args.scope or system_scopes(export_types()),
            session=session,
        )
    export = BulkExport(request, auth, session)  # argument errors: one line, no state talk
    try:
        result = export.run(restart=args.restart)
    except ExportError as exc:
        print(f"salvage: export error: {exc}", file=sys.stderr)
        print(
            f"salvage: state kept in {request.out}; run the same command to resume", file=sys.stderr
        )
        return EXIT_INPUT_ERROR
    for message in result.messages:
        print(f"salvage: {message}", file=sys.stderr)
    print(
        f"salvage: export complete: {counted(result.resources, 'resource')} in "
        f"{counted(len(result.files), 'file')} "
        f"in {request.out}"
        + (
            f"; the server reported {result.server_errors} problem(s)"
            if result.server_errors
            else ""
        ),
        file=sys.stderr,
    )
    return 0


def _since(value: str) -> str:
    """--since: a FHIR instant or a date (taken as midnight UTC)."""
    from datetime import datetime

    try:
        if len(value) == 10:
            return date.fromisoformat(value).isoformat() + "T00:00:00Z"
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"--since must be a date or an instant (2024-01-31T00:00:00Z), got {value!r}"
        ) from exc
    return value


def add_spark_argument(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--spark",
        nargs="?",
        const="local[2]",
        default=None,
        metavar="MASTER",
        help="run on PySpark (the spark extra): local[N] (default local[2]), spark://..., yarn",
    )


def add_commands(sub: Any, as_of_type: Any) -> None:
    cohort = sub.add_parser(
        "cohort", help="population analytics: lines and failures as Parquet/CSV, HTML report"
    )
    cohort.add_argument("paths", nargs="+", help="NDJSON / Bundle files or directories")
    cohort.add_argument("--out", required=True, help="output folder")
    cohort.add_argument("--as-of", type=as_of_type, default=None, help="YYYY-MM-DD")
    add_spark_argument(cohort)
    cohort.set_defaults(handler=cmd_cohort)
    export = sub.add_parser("export", help="FHIR Bulk Data $export to NDJSON (resumable)")
    export.add_argument("--fhir", required=True, help="FHIR base URL")
    export.add_argument("--out", required=True, help="output folder (holds the resumable state)")
    export.add_argument("--group", help="export this Group's patients only")
    export.add_argument("--since", type=_since, help="only resources changed since (_since)")
    export.add_argument("--client-id", help="SMART Backend Services client id")
    export.add_argument("--private-key", help="its private key (JWK or PEM file)")
    export.add_argument("--token-url", help="token endpoint (default: SMART discovery)")
    export.add_argument("--scope", help="scopes to ask for (default: system/<Type>.read)")
    export.add_argument("--restart", action="store_true", help="discard a previous export in --out")
    export.set_defaults(handler=cmd_export)
