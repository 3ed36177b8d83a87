"""S19: the token response is read leniently where the spec allows and strictly where it matters."""

from __future__ import annotations

import pytest

from smart_app.signin import LaunchError, check_token_response


@pytest.mark.parametrize("token_type", ["Bearer", "bearer", "BEARER"])
def test_s19_bearer_in_any_case_and_unknown_keys_are_accepted(token_type: str) -> None:
    check_token_response({"access_token": "a", "token_type": token_type, "future_field": {"x": 1}})


@pytest.mark.parametrize(
    "token", [{"access_token": "a", "token_type": "mac"}, {"token_type": "Bearer"}, {}]
)
def test_s19_a_non_bearer_or_missing_token_is_refused(token: dict) -> None:
    with pytest.raises(LaunchError):
        check_token_response(token)
