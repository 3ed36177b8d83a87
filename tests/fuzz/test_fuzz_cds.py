"""Property-based fuzzing of every input surface of the CDS service (issue 14): hook requests
with any value anywhere, hostile prefetch resources, feedback bodies. Never a 500, never a
logged traceback."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from salvage.app import create_app
from tests.cds_hooks.conftest import BASE, fixture_prefetch, hook_body, signed, write_clients
from tests.fuzz.strategies import FUZZ, json_values, paths, replaced, resources

PATIENT = "dlbcl-early-relapse"
R_CHOP = ["rituximab", "cyclophosphamide", "doxorubicin", "vincristine", "prednisone"]
ALLOWED = {200, 400, 401, 404, 412, 413}


class _Tracebacks(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or record.levelno >= logging.ERROR:
            self.records.append(record)


@pytest.fixture(scope="module")
def service(tmp_path_factory: Any) -> Any:
    directory: Path = tmp_path_factory.mktemp("fuzz")
    app = create_app(
        {
            "TESTING": True,
            "BASE_URL": BASE,
            "CDS_CLIENTS": str(write_clients(directory / "clients.json")),
            "DATABASE_URL": str(directory / "salvage.db"),
            "CDS_MAX_BODY_BYTES": 2_000_000,
        }
    )
    tracebacks = _Tracebacks()
    logging.getLogger().addHandler(tracebacks)
    client = app.test_client()

    def post(body: Any, path: str = "/cds-services/salvage-order-sign") -> int:
        try:
            data = json.dumps(body)
        except (ValueError, TypeError):
            return 400
        reply = client.post(
            path,
            data=data,
            headers={"Authorization": f"Bearer {signed(path)}"},
            content_type="application/json",
        )
        return int(reply.status_code)

    yield post, tracebacks
    logging.getLogger().removeHandler(tracebacks)


VALID = hook_body("order-sign", PATIENT, R_CHOP, fixture_prefetch(PATIENT))
VIEW = hook_body("patient-view", PATIENT, None, fixture_prefetch(PATIENT))
PATHS = sorted(set(paths(VALID)), key=repr)


def _check(service: Any, status: int) -> None:
    _, tracebacks = service
    assert status in ALLOWED, status
    assert not tracebacks.records, tracebacks.records[0].getMessage()


@FUZZ
@given(path=st.sampled_from(PATHS), value=json_values)
def test_a_hook_request_with_any_value_anywhere_never_fails(service, path, value) -> None:
    _check(service, service[0](replaced(VALID, path, value)))


@FUZZ
@given(
    extra=st.lists(resources(), min_size=1, max_size=6),
    key=st.sampled_from(list(VALID["prefetch"])),
)
def test_hostile_prefetch_resources_never_fail(service, extra, key) -> None:
    body = json.loads(json.dumps(VALID))
    value = body["prefetch"][key]
    if value.get("resourceType") == "Bundle":
        value["entry"] = [*value.get("entry", []), *({"resource": r} for r in extra)]
    else:
        body["prefetch"][key] = extra[0]
    _check(service, service[0](body))


@FUZZ
@given(drafts=st.lists(resources(), max_size=4))
def test_hostile_draft_orders_never_fail(service, drafts) -> None:
    body = json.loads(json.dumps(VALID))
    body["context"]["draftOrders"]["entry"] = [{"resource": d} for d in drafts]
    _check(service, service[0](body))


@FUZZ
@given(
    context=st.dictionaries(
        st.sampled_from(["patientId", "userId", "draftOrders", "x"]), json_values
    )
)
def test_patient_view_with_any_context_never_fails(service, context) -> None:
    body = json.loads(json.dumps(VIEW))
    body["context"].update(context)
    _check(service, service[0](body, "/cds-services/salvage-patient-view"))


feedback_items = st.fixed_dictionaries(
    {
        "card": st.text(max_size=8) | json_values,
        "outcome": st.sampled_from(["accepted", "overridden", "x"]),
    },
    optional={
        "outcomeTimestamp": st.just("2026-11-26T10:00:00Z") | json_values,
        "overrideReason": json_values
        | st.fixed_dictionaries(
            {"reason": json_values | st.fixed_dictionaries({"code": json_values})}
        ),
        "acceptedSuggestions": json_values,
    },
)


@FUZZ
@given(body=st.fixed_dictionaries({"feedback": st.lists(feedback_items, max_size=3)}) | json_values)
def test_any_feedback_body_never_fails(service, body) -> None:
    _check(service, service[0](body, "/cds-services/salvage-order-sign/feedback"))
