"""Operator configuration is validated when the app is created: a mistake names file and field."""

from __future__ import annotations

import pytest

from salvage.app import create_app
from salvage.errors import ConfigError


def _app(tmp_path, **config):
    return create_app({"INSTANCE_PATH": str(tmp_path / "instance"), "TESTING": True, **config})


def test_a_misspelt_smart_field_stops_start_up_naming_file_and_field(tmp_path) -> None:
    bad = tmp_path / "smart.yaml"
    bad.write_text(
        "servers:\n  - {iss: 'https://ehr.example/fhir', client_id: a, client_typ: public}\n"
    )
    with pytest.raises(ConfigError) as error:
        _app(tmp_path, SMART_CLIENTS=str(bad))
    assert str(bad) in str(error.value) and "client_typ" in str(error.value)


def test_an_unknown_client_type_is_refused(tmp_path) -> None:
    bad = tmp_path / "smart.yaml"
    bad.write_text(
        "servers:\n  - {iss: 'https://ehr.example/fhir', client_id: a, client_type: magic}\n"
    )
    with pytest.raises(ConfigError, match="client_type"):
        _app(tmp_path, SMART_CLIENTS=str(bad))


def test_a_cds_client_with_a_plain_http_jwks_url_is_refused(tmp_path) -> None:
    bad = tmp_path / "cds.yaml"
    bad.write_text("clients:\n  - {iss: ehr, jwks_url: 'http://keys.example/jwks.json'}\n")
    with pytest.raises(ConfigError, match="https"):
        _app(tmp_path, CDS_CLIENTS=str(bad))


def test_a_missing_file_is_named(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"nowhere\.yaml"):
        _app(tmp_path, CDS_CLIENTS=str(tmp_path / "nowhere.yaml"))


def test_valid_files_are_loaded_at_start_up(tmp_path) -> None:
    smart = tmp_path / "smart.yaml"
    smart.write_text(
        "servers:\n  - {iss: 'https://ehr.example/fhir/', client_id: a, client_type: public}\n"
    )
    app = _app(tmp_path, SMART_CLIENTS=str(smart))
    assert list(app.extensions["salvage_smart_registrations"]) == ["https://ehr.example/fhir"]
