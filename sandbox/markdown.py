"""A deliberately small, safe Markdown renderer for CDS card text: everything is escaped first."""

from __future__ import annotations

import re

from markupsafe import Markup, escape

_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_ITALIC = re.compile(r"(?<!\*)\*(?!\*)(.+?)(?<!\*)\*(?!\*)")


def render(text: str) -> Markup:
    html_lines: list[str] = []
    in_list = False
    for raw in str(text).splitlines():
        line = str(escape(raw))
        line = _LINK.sub(r'<a href="\2" target="_blank" rel="noopener noreferrer">\1</a>', line)
        line = _BOLD.sub(r"<strong>\1</strong>", line)
        line = _ITALIC.sub(r"<em>\1</em>", line)
        if raw.lstrip().startswith(("- ", "* ")):
            if not in_list:
                html_lines.append("<ul>")
                in_list = True
            html_lines.append(f"<li>{line.lstrip()[2:]}</li>")
            continue
        if in_list:
            html_lines.append("</ul>")
            in_list = False
        html_lines.append(f"<p>{line}</p>" if line.strip() else "")
    if in_list:
        html_lines.append("</ul>")
    return Markup("\n".join(html_lines))  # noqa: S704 (built from escaped text only)
