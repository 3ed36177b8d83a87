"""Hypothesis strategies for hostile input: any JSON value, FHIR-shaped resources with any field
values, and a valid hook request with one value anywhere replaced."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# Seeded (derandomize), bounded, no example database written into the work tree.
FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=50,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["", "#", "#med", "Patient/", "Medication/x", "2024-13-45", "http://x//y"])
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=16,
)
RESOURCE_TYPES = [
    "Patient",
    "MedicationRequest",
    "MedicationAdministration",
    "MedicationStatement",
    "Medication",
    "Observation",
    "Condition",
    "Procedure",
    "Bundle",
    "OperationOutcome",
]
FIELDS = [
    "status",
    "code",
    "subject",
    "authoredOn",
    "effectiveDateTime",
    "effectivePeriod",
    "medicationCodeableConcept",
    "medicationReference",
    "contained",
    "dispenseRequest",
    "dosageInstruction",
    "statusReason",
    "valueQuantity",
    "valueString",
    "valueCodeableConcept",
    "clinicalStatus",
    "verificationStatus",
    "onsetDateTime",
    "performedDateTime",
    "performedPeriod",
    "ingredient",
    "birthDate",
    "issued",
    "dateAsserted",
    "entry",
    "link",
]


@st.composite
def resources(draw: Any) -> Any:
    """Mostly FHIR-shaped resources with hostile field values, sometimes anything at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values)
    resource: dict[str, Any] = {
        "resourceType": draw(st.sampled_from(RESOURCE_TYPES) | json_values),
        "id": draw(st.sampled_from(["r1", "r2", "med", ""]) | json_values),
        "subject": draw(st.just({"reference": "Patient/dlbcl-early-relapse"}) | json_values),
    }
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=5, unique=True)):
        resource[name] = draw(json_values)
    return resource


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value[:3]):
            yield from paths(child, (*prefix, index))


def replaced(body: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    out = copy.deepcopy(body)
    target = out
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return out
