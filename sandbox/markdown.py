"""A deliberately small, safe Markdown renderer for CDS card text: every piece of text is escaped.

Links follow CommonMark's rules for the destination: `[label](<url>)` with angle brackets, or a bare
destination in which parentheses are balanced, so a DOI such as 10.1016/S1470-2045(20)30225-4
keeps its parentheses instead of being cut at the first `)`."""

from __future__ import annotations

import re

from markupsafe import Markup, escape

_LINK_START = re.compile(r"\[([^\]]+)\]\(")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_ITALIC = re.compile(r"(?<!\*)\*(?!\*)(.+?)(?<!\*)\*(?!\*)")


def _destination(text: str, start: int) -> tuple[str, int] | None:
    """The link destination starting at `start` (just after the opening parenthesis) and the index
    after the closing parenthesis, or None when this is not a link."""
    if text.startswith("<", start):
        close = text.find(">", start + 1)
        if close < 0 or not text.startswith(")", close + 1):
            return None
        return text[start + 1 : close], close + 2
    depth = 0
    for index in range(start, len(text)):
        char = text[index]
        if char.isspace():
            return None
        if char == "(":
            depth += 1
        elif char == ")":
            if depth == 0:
                return text[start:index], index + 1
            depth -= 1
    return None


def _emphasis(escaped: str) -> str:
    return _ITALIC.sub(r"<em>\1</em>", _BOLD.sub(r"<strong>\1</strong>", escaped))


def inline(raw: str) -> str:
    out: list[str] = []
    position = 0
    while match := _LINK_START.search(raw, position):
        found = _destination(raw, match.end())
        if found is None or not re.match(r"https?://", found[0]):
            out.append(_emphasis(str(escape(raw[position : match.end()]))))
            position = match.end()
            continue
        url, end = found
        out.append(_emphasis(str(escape(raw[position : match.start()]))))
        out.append(
            f'<a href="{escape(url)}" target="_blank" rel="noopener noreferrer">'
            f"{_emphasis(str(escape(match.group(1))))}</a>"
        )
        position = end
    out.append(_emphasis(str(escape(raw[position:]))))
    return "".join(out)


def render(text: str) -> Markup:
    html_lines: list[str] = []
    in_list = False
    for raw in str(text).splitlines():
        if raw.lstrip().startswith(("- ", "* ")):
            if not in_list:
                html_lines.append("<ul>")
                in_list = True
            html_lines.append(f"<li>{inline(raw.lstrip()[2:])}</li>")
            continue
        if in_list:
            html_lines.append("</ul>")
            in_list = False
        html_lines.append(f"<p>{inline(raw)}</p>" if raw.strip() else "")
    if in_list:
        html_lines.append("</ul>")
    return Markup("\n".join(html_lines))  # noqa: S704 (built from escaped text only)
