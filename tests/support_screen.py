"""Render the SMART screen's result for one patient of a summary with the app's own function
(smart_app.views.result_html), for tests that read its HTML."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Flask

from smart_app.views import result_html


def screen_html(app: Flask, summary: dict[str, Any], patient: dict[str, Any], as_of: date) -> str:
    with app.test_request_context("/app"):
        return result_html(summary, patient, as_of)
