"""Issue 14 item 12: the SMART launcher's FHIR proxy collapses '//' anywhere in the URL. The
app's reads, through a proxy that does the same in front of the real sandbox FHIR server, still
find the patient's observations, so the relapse is found."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from salvage.fhir.client import TokenHolder
from salvage.knowledge import load_knowledge
from smart_app import fhir_reader, scopes
from smart_app.summary import summarise
from tests.fhir.hostile_server import hostile_server, http_answer
from tests.support_sandbox import http

PATIENT = "dlbcl-early-relapse"


def test_reads_through_a_proxy_that_collapses_slashes_still_find_the_data(sandbox) -> None:
    token = sandbox.access_token(patient=PATIENT)["access_token"]
    upstream = re.sub(r"/fhir$", "", sandbox.config.fhir_base)
    with hostile_server() as proxy:

        def collapse(target: str, sock: Any) -> None:
            forwarded = re.sub("/{2,}", "/", target)  # what the launcher's proxy does
            reply = http("GET", upstream + forwarded, headers={"Authorization": f"Bearer {token}"})
            http_answer(reply.body, f"{reply.status} X")(target, sock)

        proxy.route("/fhir", collapse)
        kb = load_knowledge()
        result = fhir_reader.read_patient(
            proxy.base,
            PATIENT,
            scopes.readable_types("patient/*.rs"),
            TokenHolder(token),
            kb.loinc_index,
        )
    assert any(r["resourceType"] == "Observation" for r in result.resources)
    summary = summarise(result.resources, PATIENT, kb, [], date(2026, 6, 30))
    assert summary["patients"][0]["failure"]["kind"] == "relapse"
