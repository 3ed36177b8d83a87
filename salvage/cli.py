"""The `salvage` command: lines, recommend, cohort, export, serve, demo, feedback."""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

import orjson

from salvage import json_stream, output, service
from salvage.engine.analysis import PatientAnalysis
from salvage.engine.hiv_regimens import HivOption
from salvage.errors import KnowledgeError, SalvageError
from salvage.population.commands import add_commands, add_spark_argument
from salvage.service import PatientReport
from salvage.tuning import tune_gc

EXIT_INPUT_ERROR = 2


class Progress:
    """A progress line on stderr, shown only on a terminal and when the work takes more than a
    few seconds."""

    def __init__(self, delay: float = 3.0) -> None:
        self.stage = "reading input"
        self._delay = delay
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Progress:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        started = time.monotonic()
        if not sys.stderr.isatty():
            return  # logs and pipes stay quiet
        if self._done.wait(self._delay):
            return
        while not self._done.wait(2.0):
            print(
                f"salvage: {self.stage}... {time.monotonic() - started:.0f} s",
                file=sys.stderr,
                flush=True,
            )


def _as_of(value: str | None) -> date:
    if value is None:
        return service.today()
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--as-of must be YYYY-MM-DD, got {value!r}") from exc


def analyse_paths(
    paths: Sequence[str],
    as_of: date,
    patient: str | None = None,
    progress: Progress | None = None,
    spark: str | None = None,
) -> tuple[list[PatientReport], Any, Any]:
    """Reports of the patients in the input (through the one service, or the same service on
    Spark executors); the read result and the skipped resources come back for the messages."""
    if spark:
        from salvage.population.commands import spark_reports

        return spark_reports(list(paths), as_of, spark, patient)

    def stage(text: str) -> None:
        if progress:
            progress.stage = text

    kb = service.knowledge_base()
    return service.reports_for_files(paths, kb, as_of, patient, stage, keep_records=False)


def _report_problems(read: Any, skipped: Any) -> int:
    for error in read.errors:
        print(f"salvage: error: {error}", file=sys.stderr)
    for s in skipped:
        where = s.origin + (f" {s.resource}" if s.resource else "")
        print(f"salvage: skipped {where}: {s.reason}", file=sys.stderr)
    if skipped and len(skipped) >= read.count + len(read.skipped):
        return EXIT_INPUT_ERROR  # nothing usable was read (every command says so the same way)
    return EXIT_INPUT_ERROR if read.errors else 0


def cmd_lines(args: argparse.Namespace) -> int:
    with Progress() as progress:
        reports, read, skipped = analyse_paths(
            args.paths, args.as_of, args.patient, progress, args.spark
        )
    status = _report_problems(read, skipped)
    if skipped and len(skipped) >= read.count + len(read.skipped):
        status = EXIT_INPUT_ERROR  # nothing usable was read: an error, not a partial analysis
    if not reports and read.errors:
        return EXIT_INPUT_ERROR
    kb = service.knowledge_base()
    if args.json:
        # Each patient is serialised and written as it is reached (json_stream: byte-identical to
        # dumping the whole document, which held about 22 KB per patient until the end).
        json_stream.write_document(
            sys.stdout.buffer,
            [
                ("kb_version", kb.version),
                ("as_of", args.as_of.isoformat()),
                ("patients", (output.patient_lines_json(r.analysis) for r in reports)),
                ("skipped", output.skipped_json(skipped)),
                ("skipped_count", len(skipped)),
            ],
            streamed="patients",
        )
    else:
        print(render_lines_table([r.analysis for r in reports], kb.version, len(skipped)))
    return status


def render_lines_table(analyses: list[PatientAnalysis], kb_version: str, skipped: int) -> str:
    out = [f"salvage-cds lines of therapy (knowledge base {kb_version}); decision support only"]
    for a in analyses:
        out.append("")
        written = {d for d, _ in a.text_diagnoses}
        named = [f"{d} (from text, not coded)" if d in written else d for d in a.diseases]
        out.append(f"{a.patient}  [{', '.join(named) or 'no coded disease'}]")
        if not a.lines:
            out.append("  no lines of therapy found")
        several = len({line.disease for line in a.lines}) > 1  # lines are numbered per disease
        for line in a.lines:
            end = line.end.isoformat() if line.end else "ongoing"
            tag = " (maintenance)" if line.maintenance else ""
            which = f"{line.disease} " if several and line.disease else ""
            extras = [
                *([line.intent] if line.intent else []),
                *(
                    [f"consolidated: {line.consolidation_regimen or line.consolidation}"]
                    if line.consolidation
                    else []
                ),
                *([f"best response: {line.best_response}"] if not line.maintenance else []),
            ]
            out.append(
                f"  {which}line {line.number}{tag}: {line.regimen:<38} "
                f"{line.start.isoformat()} -> {end}"
                + (f"  ({'; '.join(extras)})" if extras else "")
            )
        for f in a.failures:
            said = f.kind.replace("-", " ")  # 'virologic failure', not the JSON code
            kind = f"{said}, primary" if f.primary else said
            which = f"{f.disease} " if several and f.disease else ""
            out.append(f"  FAILURE {kind} ({which}line {f.line}) {f.when.isoformat()}: {f.detail}")
            out.append(f"          evidence: {', '.join(f.sources)}")
        for text in (*a.notes, *a.cautions, *a.not_assessed):
            out.append(f"  note: {text}")
        for u in a.unmapped:
            out.append(f"  unmapped drug: {u.text!r} ({u.source})")
        for w in a.warnings:
            out.append(f"  warning: {w.problem} ({w.source})")
    if skipped:
        out.append("")
        out.append(f"{skipped} resource(s) skipped (see messages above)")
    return "\n".join(out)


def cmd_recommend(args: argparse.Namespace) -> int:
    with Progress() as progress:
        reports, read, skipped = analyse_paths(
            args.paths, args.as_of, args.patient, progress, args.spark
        )
    status = _report_problems(read, skipped)
    kb = service.knowledge_base()
    recs = [r.recommendation for r in reports]
    if args.json:
        json_stream.write_document(
            sys.stdout.buffer,
            [
                ("kb_version", kb.version),
                ("as_of", args.as_of.isoformat()),
                ("patients", (output.recommendation_json(r, kb) for r in recs)),
                ("skipped_count", len(skipped)),
            ],
            streamed="patients",
        )
        return status
    disclaimers = list(dict.fromkeys(kb.disclaimer_for(r.disease) for r in recs)) or [kb.disclaimer]
    out = [f"salvage-cds salvage options (knowledge base {kb.version})", *disclaimers]
    for r in recs:
        disease = f"{r.disease} (from text, not coded)" if r.text_diagnosis else r.disease
        out += ["", f"{r.patient}  [{disease or 'no coded disease'}]"]
        if r.failure:
            out.append(
                f"  failure: {r.failure.kind.replace('-', ' ')} of line {r.failure.line} on "
                f"{r.failure.when.isoformat()}: {r.failure.detail}"
            )
        if r.statement:
            out.append(f"  {r.statement}")
        if r.failure:  # HBV status, genotypes, renal function; tumour biomarkers, timing
            said = {r.failure.detail, r.transplant.summary() if r.transplant else ""}
            out += [f"  fact: {f}" for f in r.facts if f not in said]
        if r.transplant is not None:
            out.append(f"  {r.transplant.summary()}")
        for o in r.options:
            labels = dict.fromkeys(kb.evidence[k].label for k in o.evidence)
            out.append(f"  {o.rank}. {o.regimen}  [{', '.join(labels)}]")
            if o.branch:
                out.append(f"       only {o.branch}")
            meta = [
                m
                for m in (o.intent_label, o.evidence_level and f"evidence: {o.evidence_level}")
                if m
            ]
            if meta:
                out.append(f"       {'; '.join(meta)}")
            if o.rank_reasons:
                out.append(f"       rank: {'; '.join(o.rank_reasons)}")
            out += [f"       {r_}" for r_ in o.recheck]
            out += [f"       why: {line}" for line in o.rationale[:1]]
            # a re-check is already its own line: not repeated among the items not checked
            unchecked = [n for n in o.not_checked if n not in o.recheck]
            if unchecked:
                out.append(f"       not checked: {'; '.join(unchecked)}")
            out += [f"       inferred: {f}" for f in o.inferred]
            out += [f"       other evidence set aside: {x}" for x in o.set_aside]
            if isinstance(o, HivOption):
                out += [f"       {line}" for line in o.summary]
            out += [f"       caution: {c}" for c in o.cautions]
        for o in r.after_salvage:  # consolidation: the step after salvage, not an option
            labels = dict.fromkeys(kb.evidence[k].label for k in o.evidence)
            out.append(f"  then, after salvage: {o.regimen}  [{', '.join(labels)}]")
            out += [f"       {line}" for line in o.rank_reasons]
            if o.branch:
                out.append(f"       only {o.branch}")
            out += [f"       why: {line}" for line in o.rationale[:1]]
            out += [f"       caution: {c}" for c in o.cautions]
        for x in r.excluded:
            out.append(f"  excluded {x.regimen}: {'; '.join(x.reasons)}")
        out += [f"  missing: {m}" for m in r.missing_data]
        if r.goals_of_care:
            out.append(
                f"  goals of care: {r.goals_of_care} (because {'; '.join(r.goals_of_care_because)})"
            )
    print("\n".join(out))
    return status


def cmd_serve(args: argparse.Namespace) -> int:
    from salvage.serve import serve

    serve(args.host, args.port, args.workers, args.threads)
    return 0


def cmd_feedback(args: argparse.Namespace) -> int:
    """Acceptance and override rates per card type, and the override reasons given."""
    from salvage.app import create_app

    db = create_app().extensions["salvage_db"]
    issued = db.cards_issued_by_kind()
    rows = db.feedback_by_kind()
    reasons = db.override_reasons_by_kind()
    summary: dict[str, dict[str, Any]] = {}
    for kind, count in issued.items():
        summary[kind] = {"issued": count, "accepted": 0, "overridden": 0, "override_reasons": {}}
    for kind, outcome, count in rows:
        summary.setdefault(
            kind, {"issued": 0, "accepted": 0, "overridden": 0, "override_reasons": {}}
        )[outcome] = count
    for kind, code, display, count in reasons:
        summary[kind]["override_reasons"][display or code or "(none given)"] = count
    for item in summary.values():
        base = item["issued"] or 1
        item["acceptance_rate"] = round(item["accepted"] / base, 3)
        item["override_rate"] = round(item["overridden"] / base, 3)
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2) + b"\n")
        return 0
    print("salvage-cds card feedback")
    if not summary:
        print("  no cards issued yet")
    for kind, item in sorted(summary.items()):
        print(
            f"  {kind}: issued {item['issued']}, accepted {item['accepted']} "
            f"({item['acceptance_rate']:.0%}), overridden {item['overridden']} "
            f"({item['override_rate']:.0%})"
        )
        for reason, count in sorted(item["override_reasons"].items()):
            print(f"      override: {reason} x{count}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The demo's orchestration belongs to the sandbox EHR: run it in this process's place (a
    process boundary, not an import, so the product never depends on the sandbox)."""
    command = [sys.executable, "-m", "sandbox.demo", "--fixtures", args.fixtures]
    os.execv(sys.executable, [*command, "--port", str(args.port)])  # noqa: S606 (our own module)
    return 0  # not reached


def _add_input_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("paths", nargs="+", help="Bundle JSON, NDJSON, or directories of them")
    command.add_argument("--json", action="store_true", help="machine-readable output")
    command.add_argument("--patient", help="only this patient (id or Patient/id)")
    command.add_argument(
        "--as-of",
        type=_as_of,
        default=None,
        help="analyse as of this date (YYYY-MM-DD; default today)",
    )
    add_spark_argument(command)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="salvage",
        description=(
            "Clinical decision support for salvage therapy from FHIR R4 records. "
            "Decision support only: a clinician makes the treatment decision."
        ),
    )
    sub = parser.add_subparsers(dest="command", required=True)
    lines = sub.add_parser("lines", help="rebuild lines of therapy and failures")
    _add_input_arguments(lines)
    lines.set_defaults(handler=cmd_lines)
    rec = sub.add_parser(
        "recommend", help="ranked salvage options for patients whose therapy failed"
    )
    _add_input_arguments(rec)
    rec.set_defaults(handler=cmd_recommend)
    add_commands(sub, _as_of)
    srv = sub.add_parser("serve", help="run the SMART app and CDS Hooks service (gunicorn)")
    srv.add_argument("--host", default="127.0.0.1")
    srv.add_argument("--port", type=int, default=8700)
    srv.add_argument("--workers", type=int, default=None)
    srv.add_argument(
        "--threads", type=int, default=None, help="threads per worker: 0 sync workers, 1+ gthread"
    )
    srv.set_defaults(handler=cmd_serve)
    fb = sub.add_parser("feedback", help="acceptance and override rates of CDS cards")
    fb.add_argument("--json", action="store_true")
    fb.set_defaults(handler=cmd_feedback)
    demo = sub.add_parser("demo", help="sandbox EHR + FHIR server + salvage-cds, offline")
    demo.add_argument("--fixtures", default="fixtures")
    demo.add_argument(
        "--port", type=int, default=8600, help="EHR port; the others are derived or free ones"
    )
    demo.set_defaults(handler=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    tune_gc()
    if getattr(args, "as_of", "unset") is None:
        args.as_of = service.today()
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except KnowledgeError as exc:
        print(f"salvage: knowledge base error: {exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except SalvageError as exc:
        print(f"salvage: error: {exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except BrokenPipeError:
        # `salvage lines ... | head` closed the pipe: stop quietly, and keep the interpreter's
        # final flush from printing another error (Python docs, "Note on SIGPIPE").
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        return 130  # Ctrl-C: no traceback


if __name__ == "__main__":
    sys.exit(main())
