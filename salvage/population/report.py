"""The cohort's HTML report: one self-contained file (inline SVG plots drawn by matplotlib, no
script, no external asset), readable offline. Every text taken from records is escaped."""

from __future__ import annotations

import html
import io
import re
from typing import Any

from salvage.population.cohort import Cohort

STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px}
th{background:#f2f2f2;text-align:left}td.n{text-align:right}h2{margin-top:2em}
.note{color:#555;font-size:13px}
"""
MAX_CURVES = 8


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _svg(figure: Any) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = buffer.getvalue()
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.DOTALL)
    return text[text.find("<svg") :]  # inline: no XML prolog or DOCTYPE


def _figure(width: float, height: float) -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    matplotlib.rcParams["svg.hashsalt"] = "salvage-cds"  # the same file for the same cohort
    matplotlib.rcParams["svg.fonttype"] = "path"  # text drawn as paths: no markup from records
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def _km_plot(
    title: str, curves: dict[str, list[tuple[float, float]]], counts: dict[str, int]
) -> str:
    chosen = sorted(curves, key=lambda r: (-counts.get(r, 0), r))[:MAX_CURVES]
    if not chosen:
        return "<p class=note>No lines to estimate from.</p>"
    figure = _figure(7.5, 4)
    axes = figure.subplots()
    for regimen in chosen:
        points = curves[regimen]
        axes.step(
            [t for t, _ in points],
            [s for _, s in points],
            where="post",
            label=f"{regimen} (n={counts.get(regimen, 0)})",
        )
    axes.set_xlabel("days from the start of the line")
    axes.set_ylabel("probability")
    axes.set_ylim(0, 1.02)
    axes.set_title(title)
    axes.legend(fontsize=7, loc="upper right")
    return _svg(figure)


def _sequence_plot(disease: str, rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    rows = rows[:10]
    figure = _figure(7.5, 0.35 * len(rows) + 1)
    axes = figure.subplots()
    labels = [r["sequence"] for r in rows][::-1]
    axes.barh(range(len(labels)), [r["patients"] for r in rows][::-1])
    axes.set_yticks(range(len(labels)), labels=labels, fontsize=7)
    axes.set_xlabel("patients")
    axes.set_title(f"Regimen sequences: {disease}")
    return _svg(figure)


def _measure_table(rows: list[dict[str, Any]]) -> str:
    out = ["<table><tr><th>regimen</th><th>n</th><th>events</th><th>censored</th>"]
    out.append("<th>median (days)</th></tr>")
    for r in rows:
        median = "not reached" if r["median_days"] is None else f"{r['median_days']:.0f}"
        out.append(
            f"<tr><td>{_e(r['regimen'])}</td><td class=n>{r['n']}</td>"
            f"<td class=n>{r['events']}</td><td class=n>{r['censored']}</td>"
            f"<td class=n>{_e(median)}</td></tr>"
        )
    out.append("</table>")
    return "".join(out)


def render_report(cohort: Cohort) -> str:
    s = cohort.summary
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        "<title>salvage-cds cohort report</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>salvage-cds cohort report</h1>",
        f"<p>{s['patients']} patients, {s['patients_with_lines']} with at least one line of "
        f"therapy; analysis date {_e(s['as_of'])}; knowledge base {_e(s['kb_version'])}. "
        "Decision support and research use only: lines are reconstructed from the records and "
        "may be incomplete where the records are.</p>",
        "<h2>Regimen sequences (first -> second -> third line ...)</h2>",
    ]
    for disease, rows in s["sequences"].items():
        parts.append(f"<h3>{_e(disease)}</h3>")
        parts.append(_sequence_plot(disease, rows))
        parts.append("<table><tr><th>sequence</th><th>patients</th></tr>")
        parts += [
            f"<tr><td>{_e(r['sequence'])}</td><td class=n>{r['patients']}</td></tr>" for r in rows
        ]
        parts.append("</table>")
    for key, title in (
        ("time_to_next_treatment", "Time to next treatment"),
        ("time_on_treatment", "Time on treatment"),
    ):
        counts = {r["regimen"]: r["n"] for r in s[key]}
        parts.append(f"<h2>{title} (Kaplan-Meier)</h2>")
        parts.append(
            "<p class=note>Censored at the patient's last record date when no next line (or no "
            "end of the line) is recorded.</p>"
        )
        parts.append(_km_plot(title, cohort.curves[key], counts))
        parts.append(_measure_table(s[key]))
    parts.append("<h2>Failures by kind</h2><table><tr><th>disease</th><th>treated</th>")
    parts.append("<th>kind</th><th>patients</th><th>rate</th></tr>")
    for disease, item in s["failure_rates"].items():
        for kind, value in item["by_kind"].items():
            parts.append(
                f"<tr><td>{_e(disease)}</td><td class=n>{item['patients_treated']}</td>"
                f"<td>{_e(kind)}</td><td class=n>{value['patients']}</td>"
                f"<td class=n>{value['rate']:.1%}</td></tr>"
            )
    parts.append("</table>")
    parts.append("<h2>Failures without a new line within the disease's delay threshold</h2>")
    parts.append(
        "<p class=note>Delay in switching can reduce the effectiveness of salvage; thresholds "
        "are the knowledge base's order-check delays. Failures too recent to judge are left "
        "out.</p><table><tr><th>disease</th><th>failures judged</th><th>late or none</th>"
        "<th>patients</th></tr>"
    )
    for disease, item in s["late_switch"].items():
        parts.append(
            f"<tr><td>{_e(disease)}</td><td class=n>{item['failures']}</td>"
            f"<td class=n>{item['late']}</td><td class=n>{item['patients']}</td></tr>"
        )
    parts.append("</table></body></html>\n")
    return "\n".join(parts)
