"""The sandbox's card Markdown renderer: links whose destination holds parentheses stay whole
(CommonMark: balanced parentheses or <angle brackets>), and all text stays escaped."""

from __future__ import annotations

import pytest

from sandbox import markdown

DOI = "https://doi.org/10.1016/S1470-2045(20)30225-4"


@pytest.mark.parametrize(
    "source",
    [
        f"[PILOT]({DOI})",
        f"[PILOT](<{DOI}>)",
        "[PILOT](https://doi.org/10.1016/S1470-2045%2820%2930225-4)",
    ],
)
def test_a_doi_with_parentheses_is_one_link(source: str) -> None:
    html = str(markdown.render(f"Evidence: {source}."))
    assert html.count("<a ") == 1 and ">PILOT</a>." in html
    assert "30225-4" in html.split("href=")[1].split(">")[0]
    assert "))" not in html


def test_text_and_links_are_escaped_and_only_http_links_are_made() -> None:
    html = str(markdown.render('**x** [<b>a</b>](javascript:alert(1)) [ok](https://e.org/"q)'))
    assert "<b>" not in html and "&lt;b&gt;" in html
    assert 'href="javascript' not in html and html.count("<a ") == 1
    assert 'href="https://e.org/&#34;q"' in html
    assert "<strong>x</strong>" in html


def test_lists_and_paragraphs() -> None:
    html = str(markdown.render("Intro\n- one [a](https://a.org/(x))\n- two\nEnd"))
    assert html.splitlines() == [
        "<p>Intro</p>",
        "<ul>",
        '<li>one <a href="https://a.org/(x)" target="_blank" rel="noopener noreferrer">a</a></li>',
        "<li>two</li>",
        "</ul>",
        "<p>End</p>",
    ]
