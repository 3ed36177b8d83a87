"""Issue 18 section 1: the presets/ files load and validate, the new registry fields are checked
at start-up, and a dev_only entry is refused in a production-like configuration."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from salvage.app import create_app
from salvage.errors import ConfigError

PRESETS = Path(__file__).resolve().parents[1] / "presets"


def _app(tmp_path: Path, **config):
    return create_app({"INSTANCE_PATH": str(tmp_path / "instance"), "TESTING": True, **config})


def _filled(tmp_path: Path, name: str) -> Path:
    """The preset with its '<...>' placeholders replaced, as an integrator would."""
    text = (PRESETS / name).read_text()
    text = text.replace('"<your Epic non-production client id>"', "epic-client-1")
    text = text.replace('"<your Oracle provider client id>"', "oracle-provider-1")
    text = text.replace('"<your Oracle patient client id>"', "oracle-patient-1")
    out = tmp_path / name
    out.write_text(text)
    return out


@pytest.mark.parametrize(
    "name",
    ["smart-launcher.yaml", "epic-sandbox.yaml", "oracle-sandbox.yaml", "open-servers.yaml"],
)
def test_every_smart_preset_loads_on_a_development_instance(tmp_path, name) -> None:
    app = _app(tmp_path, SMART_CLIENTS=str(_filled(tmp_path, name)))
    assert app.extensions["salvage_smart_registrations"]


def test_the_cds_hooks_sandbox_preset_loads_with_its_fields(tmp_path) -> None:
    app = _app(tmp_path, CDS_CLIENTS=str(PRESETS / "cds-hooks-sandbox.yaml"))
    client = app.extensions["salvage_cds_clients"]["https://sandbox.cds-hooks.org"]
    assert client.dev_only
    assert client.jwks_url == "https://sandbox.cds-hooks.org/.well-known/jwks.json"
    assert client.allows_fhir_server("https://launch.smarthealthit.org/v/r4/fhir")


def test_the_epic_preset_carries_epic_s_rules(tmp_path) -> None:
    app = _app(tmp_path, SMART_CLIENTS=str(_filled(tmp_path, "epic-sandbox.yaml")))
    (reg,) = app.extensions["salvage_smart_registrations"].values()
    assert reg.id_token_issuers == ("https://fhir.epic.com/interconnect-fhir-oauth/oauth2",)
    assert dict(reg.metadata_headers) == {"Epic-Client-ID": "epic-client-1"}
    assert reg.authorize_method == "post" and reg.offline_access == "never"
    assert reg.search_profile is not None and "laboratory" in (
        reg.search_profile.observation_categories
    )


def test_an_unreplaced_placeholder_stops_start_up(tmp_path) -> None:
    with pytest.raises(ConfigError, match="placeholder"):
        _app(tmp_path, SMART_CLIENTS=str(PRESETS / "epic-sandbox.yaml"))


def test_the_oracle_preset_asks_only_for_listed_v1_scopes(tmp_path) -> None:
    app = _app(tmp_path, SMART_CLIENTS=str(_filled(tmp_path, "oracle-sandbox.yaml")))
    for reg in app.extensions["salvage_smart_registrations"].values():
        assert reg.scope and "*" not in reg.scope
        assert "MedicationStatement" not in reg.scope and "Medication.read" not in reg.scope
        assert all(s.endswith(".read") for s in reg.scope.split() if s.startswith("patient/"))
        assert reg.id_token_issuers[0].startswith("https://authorization.cerner.com/tenants/")


@pytest.mark.parametrize(
    ("variable", "preset"),
    [("CDS_CLIENTS", "cds-hooks-sandbox.yaml"), ("SMART_CLIENTS", "open-servers.yaml")],
)
def test_a_dev_only_entry_is_refused_on_a_public_https_base(tmp_path, variable, preset) -> None:
    with pytest.raises(ConfigError, match="dev_only"):
        _app(tmp_path, BASE_URL="https://cds.hospital.example", **{variable: str(PRESETS / preset)})


def test_a_dev_only_entry_loads_when_explicitly_allowed_and_says_so(tmp_path, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="salvage"):
        _app(
            tmp_path,
            BASE_URL="https://cds.hospital.example",
            ALLOW_DEV_ENTRIES=True,
            CDS_CLIENTS=str(PRESETS / "cds-hooks-sandbox.yaml"),
        )
    assert "DEV-ONLY" in caplog.text and "sandbox.cds-hooks.org" in caplog.text


def test_a_dev_only_entry_loads_on_loopback(tmp_path) -> None:
    _app(
        tmp_path,
        BASE_URL="https://127.0.0.1:8700",
        CDS_CLIENTS=str(PRESETS / "cds-hooks-sandbox.yaml"),
    )


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("id_token_issuer", "'not a url'", "id_token_issuer"),
        ("id_token_issuer", "['https://ok.example', 'ftp://x']", "id_token_issuer"),
        ("aud", "'no-scheme.example/fhir'", "aud"),
        ("authorize_method", "put", "authorize_method"),
        ("offline_access", "always", "offline_access"),
        ("frame_ancestors", "['https://ehr.example/path']", "frame_ancestors"),
        ("metadata_headers", "{Authorization: 'Bearer x'}", "metadata_headers"),
        ("metadata_headers", "{'Bad Header': x}", "metadata_headers"),
        ("search_profile", "{observation_category: [laboratory]}", "observation_category"),
        ("dev_only", "'perhaps'", "dev_only"),
    ],
)
def test_each_new_smart_field_is_validated_at_start_up(tmp_path, field, value, named) -> None:
    bad = tmp_path / "smart.yaml"
    bad.write_text(
        "servers:\n  - {iss: 'https://ehr.example/fhir', client_id: a, client_type: public, "
        f"{field}: {value}}}\n"
    )
    with pytest.raises(ConfigError, match=named):
        _app(tmp_path, SMART_CLIENTS=str(bad))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("audience_aliases", "['localhost:8700/cds-services']"),
        ("open_fhir_servers", "['not a url']"),
        ("dev_only", "'sometimes'"),
    ],
)
def test_each_new_cds_field_is_validated_at_start_up(tmp_path, field, value) -> None:
    bad = tmp_path / "cds.yaml"
    bad.write_text(
        f"clients:\n  - {{iss: ehr, jwks_url: 'https://k.example/j', {field}: {value}}}\n"
    )
    with pytest.raises(ConfigError, match=field):
        _app(tmp_path, CDS_CLIENTS=str(bad))


def test_an_open_server_entry_cannot_hold_credentials(tmp_path) -> None:
    bad = tmp_path / "smart.yaml"
    bad.write_text(
        "servers:\n  - {iss: 'https://hapi.example/baseR4', client_id: a, "
        "client_type: confidential-symmetric, client_secret: s, open_server: true}\n"
    )
    with pytest.raises(ConfigError, match="open_server"):
        _app(tmp_path, SMART_CLIENTS=str(bad))
