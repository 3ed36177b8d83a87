"""`salvage export` against the sandbox's real FHIR server (sekmet-fhir serves $export) and its
authorization server (SMART Backend Services), then `salvage cohort` on what arrived."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from salvage import cli
from salvage.errors import ExportError
from salvage.population.backend_auth import BackendServices, discover_token_url
from salvage.population.export import STAGING, STATE_FILE, BulkExport, ExportRequest
from tests.support_sandbox import SandboxHandle, http


def _auth(sandbox: SandboxHandle, client_id: str = "test-backend") -> BackendServices:
    session = requests.Session()
    return BackendServices(
        client_id=client_id,
        key=sandbox.client_key,
        token_url=discover_token_url(sandbox.config.fhir_base, session),
        scope="system/Patient.read system/Observation.read system/Condition.read "
        "system/MedicationRequest.read system/MedicationAdministration.read "
        "system/MedicationStatement.read system/Medication.read system/Procedure.read "
        "system/DiagnosticReport.read",
        session=session,
    )


class _Sleeps:
    def __init__(self) -> None:
        self.asked: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        time.sleep(min(seconds, 0.2))


class _CountingSession(requests.Session):
    def __init__(self) -> None:
        super().__init__()
        self.files: list[str] = []

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        if "/bulk-files/" in str(url):
            self.files.append(str(url).rsplit("/", 1)[-1])
        return super().request(method, url, *args, **kwargs)


def _key_file(sandbox: SandboxHandle, tmp_path: Path) -> str:
    path = tmp_path / "backend-key.json"
    path.write_text(json.dumps(sandbox.client_key.as_dict(private=True)))
    return str(path)


def test_backend_services_token_carries_system_scopes_only(sandbox: SandboxHandle) -> None:
    auth = _auth(sandbox)
    auth.scope += " patient/*.rs openid"
    token = auth.token()
    record = sandbox.state.store.get("token", "access_token", token)
    assert record["patient"] is None and record["user"] is None
    assert record["scope"].split() and all(s.startswith("system/") for s in record["scope"].split())


def test_a_client_registered_without_system_scopes_gets_no_backend_token(
    sandbox: SandboxHandle,
) -> None:
    with pytest.raises(ExportError, match="refused"):
        _auth(sandbox, client_id="test-asymmetric").token()
    reply = http(
        "POST",
        f"{sandbox.config.ehr_base}/auth/token",
        data={"grant_type": "client_credentials", "client_id": "salvage-public"},
    )
    assert reply.status == 400 or reply.status == 401


def test_a_patient_token_cannot_start_an_export(sandbox: SandboxHandle) -> None:
    token = sandbox.access_token()["access_token"]
    reply = http(
        "GET",
        f"{sandbox.config.fhir_base}/$export",
        headers={"Authorization": f"Bearer {token}", "Prefer": "respond-async"},
    )
    assert reply.status == 403


def test_export_without_credentials_says_authorization_is_needed(
    sandbox: SandboxHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = cli.main(["export", "--fhir", sandbox.config.fhir_base, "--out", str(tmp_path)])
    assert status == 2
    assert "--client-id and --private-key" in capsys.readouterr().err


def test_export_then_cohort_end_to_end(
    sandbox: SandboxHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "export"
    status = cli.main(
        [
            "export",
            "--fhir",
            sandbox.config.fhir_base,
            "--out",
            str(out),
            "--client-id",
            "test-backend",
            "--private-key",
            _key_file(sandbox, tmp_path),
        ]
    )
    err = capsys.readouterr().err
    assert status == 0, err
    assert "export complete" in err
    names = sorted(p.name for p in out.glob("*.ndjson"))
    assert "Patient.001.ndjson" in names and "MedicationRequest.001.ndjson" in names
    assert not any(n.startswith(("Practitioner", "Encounter")) for n in names)  # only _type
    assert not (out / STAGING).exists()
    assert json.loads((out / STATE_FILE).read_text())["complete"] is True
    # The exported population goes through the cohort analytics.
    cohort = tmp_path / "cohort"
    status = cli.main(["cohort", str(out), "--out", str(cohort), "--as-of", "2026-01-01"])
    assert status == 0, capsys.readouterr().err
    import pyarrow.parquet as pq

    lines = pq.read_table(cohort / "lines.parquet").to_pylist()
    early = [r for r in lines if r["patient"] == "Patient/dlbcl-early-relapse"]
    assert [r["regimen"] for r in sorted(early, key=lambda r: r["number"])][:1] == ["R-CHOP"]
    failures = pq.read_table(cohort / "failures.parquet").to_pylist()
    assert any(
        f["patient"] == "Patient/dlbcl-early-relapse" and f["kind"] == "relapse" for f in failures
    )
    html = (cohort / "report.html").read_text()
    assert "<svg" in html and "Kaplan-Meier" in html and "<script" not in html


def test_a_group_export_holds_only_that_groups_patients(
    sandbox: SandboxHandle, tmp_path: Path
) -> None:
    group = {
        "resourceType": "Group",
        "id": "salvage-cohort-a",
        "type": "person",
        "actual": True,
        "member": [{"entity": {"reference": "Patient/dlbcl-early-relapse"}}],
    }
    status, _ = sandbox.running.fhir.request("PUT", "Group/salvage-cohort-a", group)
    assert status in (200, 201)
    request = ExportRequest(base=sandbox.config.fhir_base, out=tmp_path, group="salvage-cohort-a")
    result = BulkExport(request, _auth(sandbox), sleep=_Sleeps()).run()
    patients = {
        json.loads(line)["id"]
        for line in (tmp_path / "Patient.001.ndjson").read_text().splitlines()
    }
    assert patients == {"dlbcl-early-relapse"}
    assert result.resources > 1


def test_retry_after_is_honoured_while_the_export_runs(
    sandbox: SandboxHandle, tmp_path: Path
) -> None:
    sandbox.faults(retry_after=3)
    sleeps = _Sleeps()
    BulkExport(
        ExportRequest(base=sandbox.config.fhir_base, out=tmp_path), _auth(sandbox), sleep=sleeps
    ).run()
    assert 3.0 in sleeps.asked


def test_a_file_failing_mid_export_leaves_a_resumable_state_not_a_partial_result(
    sandbox: SandboxHandle, tmp_path: Path
) -> None:
    sandbox.faults(bulk_file_fail=["Observation.ndjson"], bulk_file_truncate=["Condition.ndjson"])
    session = _CountingSession()
    auth = _auth(sandbox)
    auth.session = session
    request = ExportRequest(base=sandbox.config.fhir_base, out=tmp_path)
    with pytest.raises(ExportError) as failed:
        BulkExport(request, auth, session, sleep=_Sleeps()).run()
    message = str(failed.value)
    assert "Observation.001.ndjson" in message and "HTTP 503" in message
    assert "Condition.001.ndjson" in message and "truncated" in message
    assert list(tmp_path.glob("*.ndjson")) == []  # nothing a later run could take as complete
    state = json.loads((tmp_path / STATE_FILE).read_text())
    assert not state.get("complete") and "Patient.001.ndjson" in state["done"]
    # The server recovers: the same command fetches only what is missing.
    sandbox.faults()
    session.files.clear()
    result = BulkExport(request, auth, session, sleep=_Sleeps()).run()
    assert sorted(session.files) == ["Condition.ndjson", "Observation.ndjson"]
    assert (tmp_path / "Observation.001.ndjson").exists()
    assert result.resources == sum(
        len(p.read_text().splitlines()) for p in tmp_path.glob("*.ndjson")
    )


def test_another_export_in_the_same_folder_is_refused(
    sandbox: SandboxHandle, tmp_path: Path
) -> None:
    (tmp_path / STATE_FILE).write_text(
        json.dumps({"identity": {"base": "https://elsewhere.example/fhir"}, "status_url": None})
    )
    with pytest.raises(ExportError, match="another export"):
        BulkExport(ExportRequest(base=sandbox.config.fhir_base, out=tmp_path), _auth(sandbox)).run()


def test_a_failing_status_url_keeps_the_export_to_resume_without_a_new_kickoff(
    sandbox: SandboxHandle, tmp_path: Path
) -> None:
    request = ExportRequest(base=sandbox.config.fhir_base, out=tmp_path)
    auth = _auth(sandbox)
    sandbox.faults(bulk_status=503)
    with pytest.raises(ExportError, match="resumes"):
        BulkExport(request, auth, sleep=_Sleeps()).run()
    status_url = json.loads((tmp_path / STATE_FILE).read_text())["status_url"]
    assert status_url.startswith(sandbox.config.fhir_base)
    sandbox.faults()
    BulkExport(request, auth, sleep=_Sleeps()).run()
    state = json.loads((tmp_path / STATE_FILE).read_text())
    assert state["status_url"] == status_url and state["complete"] is True


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--since", "last tuesday"], "--since must be a date or an instant"),
        (["--group", "../../admin"], "--group must be a FHIR id"),
        (["--client-id", "only-the-id"], "give both --client-id and --private-key"),
        (["--client-id", "x", "--private-key", "/nonexistent/key.jwk"], "cannot read the private"),
    ],
)
def test_bad_export_arguments_get_one_clear_line(
    extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["export", "--fhir", "http://127.0.0.1:9/fhir", "--out", str(tmp_path), *extra]
    try:
        status = cli.main(argv)
    except SystemExit as exit_:  # argparse refuses a malformed --since itself
        status = int(exit_.code or 0)
    err = capsys.readouterr().err
    assert status == 2 and message in err and "Traceback" not in err


def test_export_refuses_plain_http_to_a_remote_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["export", "--fhir", "http://ehr.example/fhir", "--out", str(tmp_path)]) == 2
    assert "https" in capsys.readouterr().err
