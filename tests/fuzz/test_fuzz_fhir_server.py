"""Property-based fuzzing of FHIR server answers (issue 14): a hostile server on 127.0.0.1
answers with any status, headers, framing and body; the reader returns a ReadResult (never an
exception), within its deadline, and its problems never carry the token."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from salvage.fhir import client
from tests.fhir.hostile_server import hostile_server
from tests.fuzz.strategies import FUZZ, json_values, resources

TOKEN = "fuzz-token-Zx"
STATUSES = [200, 200, 200, 201, 204, 301, 302, 307, 400, 401, 404, 429, 500, 503]


@st.composite
def answers(draw: Any) -> bytes:
    kind = draw(st.sampled_from(["bundle", "json", "bytes"]))
    if kind == "bundle":
        document: Any = {
            "resourceType": "Bundle",
            "entry": draw(
                st.lists(st.fixed_dictionaries({"resource": resources()}), max_size=4) | json_values
            ),
            "link": draw(
                st.lists(
                    st.fixed_dictionaries(
                        {
                            "relation": st.just("next") | json_values,
                            "url": st.sampled_from(["PAGE", "http://127.0.0.1:1/fhir/x"])
                            | json_values,
                        }
                    ),
                    max_size=2,
                )
                | json_values
            ),
        }
        body = json.dumps(document).encode()
    elif kind == "json":
        body = json.dumps(draw(json_values)).encode()
    else:
        body = draw(st.binary(max_size=64))
    status = draw(st.sampled_from(STATUSES))
    framing = draw(st.sampled_from(["length", "short", "chunked", "bad-chunk", "close"]))
    head = [f"HTTP/1.1 {status} X"]
    head += draw(
        st.lists(
            st.sampled_from(
                [
                    "Location: http://127.0.0.1:1/x",
                    "Retry-After: 0",
                    "Retry-After: x",
                    "Content-Type: application/fhir+json",
                    "X-Long: " + "a" * 70_000,
                ]
            ),
            max_size=2,
        )
    )
    if framing == "length":
        head.append(f"Content-Length: {len(body)}")
    elif framing == "short":
        head.append(f"Content-Length: {len(body) + 10}")
    elif framing in ("chunked", "bad-chunk"):
        head.append("Transfer-Encoding: chunked")
        size = f"{len(body):x}" if framing == "chunked" else "zz"
        body = f"{size}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


@pytest.fixture(scope="module")
def server() -> Any:
    with hostile_server() as s:
        yield s


@FUZZ
@given(answer=answers())
def test_any_server_answer_is_a_read_result_never_an_exception(server, answer) -> None:
    answer = answer.replace(b"PAGE", f"{server.base}/next".encode())
    server.route("/fhir/", lambda _target, sock: sock.sendall(answer))
    reader = client.FhirReader(server.base, client.TokenHolder(TOKEN), budget_seconds=0.5)
    started = time.monotonic()
    result = reader.read("Condition?patient=p", "Condition")
    assert time.monotonic() - started < 2.5
    assert isinstance(result, client.ReadResult)
    assert all(isinstance(r, dict) for r in result.resources)
    assert all(TOKEN not in p.text for p in result.problems)
