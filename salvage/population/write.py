"""Write a cohort: Parquet (pyarrow) and CSV for lines and failures, summary.json, report.html."""

from __future__ import annotations

from pathlib import Path

import orjson

from salvage.population.cohort import FAILURE_COLUMNS, LINE_COLUMNS, Cohort

_TYPES = {
    "number": "int64",
    "line": "int64",
    "days_to_next_line": "int64",
    "delay_threshold_days": "int64",
    "maintenance": "bool_",
    "primary": "bool_",
    "switch_late": "bool_",
    "relapse_interval_months": "float64",
}


def _table(rows: list[dict[str, object]], columns: tuple[str, ...]):  # type: ignore[no-untyped-def]
    import pyarrow as pa

    fields = [pa.field(c, getattr(pa, _TYPES.get(c, "string"))()) for c in columns]
    schema = pa.schema(fields)
    return pa.Table.from_pylist([{c: row.get(c) for c in columns} for row in rows], schema=schema)


def write_cohort(cohort: Cohort, out: Path) -> list[Path]:
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    from salvage.population.report import render_report

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, rows, columns in (
        ("lines", cohort.lines, LINE_COLUMNS),
        ("failures", cohort.failures, FAILURE_COLUMNS),
    ):
        table = _table(rows, columns)
        pq.write_table(table, out / f"{name}.parquet")
        pa_csv.write_csv(table, out / f"{name}.csv")
        written += [out / f"{name}.parquet", out / f"{name}.csv"]
    (out / "summary.json").write_bytes(
        orjson.dumps(cohort.summary, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    )
    (out / "report.html").write_text(render_report(cohort), encoding="utf-8")
    return [*written, out / "summary.json", out / "report.html"]
