"""Fixture Bundles validate against the FHIR R4B models of fhir.resources."""

from __future__ import annotations

import json

import pytest
from fhir.resources.R4B.bundle import Bundle

from tests.conftest import FIXTURES


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.json")), ids=lambda p: p.stem)
def test_fixture_bundle_validates(path) -> None:
    bundle = Bundle.model_validate(json.loads(path.read_text()))
    assert bundle.entry, "a fixture bundle must hold resources"
