"""An old driving failure is said on the cards (ux finding 2)."""

from __future__ import annotations

import re

from tests.cds_hooks.conftest import fixture_prefetch, hook_body


def test_the_card_says_it(call) -> None:  # type: ignore[no-untyped-def]
    """The service's date is today's: the 2023 relapse is always more than a year old."""
    body = hook_body(
        "order-sign",
        "dlbcl-early-relapse",
        ["rituximab", "cyclophosphamide", "doxorubicin", "vincristine", "prednisone"],
        fixture_prefetch("dlbcl-early-relapse"),
    )
    reply = call("salvage-order-sign", body)
    (card,) = [c for c in reply.get_json()["cards"] if "R-CHOP" in c["summary"]]
    assert re.search(
        r"\*\*The last documented failure \(relapse of line 1 on 2023-11-20\) is \d+ years? old: "
        r"confirm the current disease status\.\*\*",
        card["detail"],
    )


def test_the_reminder_says_it_once(call) -> None:  # type: ignore[no-untyped-def]
    """The patient-view reminder lists missing data too: the old failure is said at the top only."""
    body = hook_body(
        "patient-view", "prostate-rt-recurrence", [], fixture_prefetch("prostate-rt-recurrence")
    )
    reply = call("salvage-patient-view", body)
    (card,) = [
        c for c in reply.get_json()["cards"] if c["source"]["topic"]["code"] == "salvage-delay"
    ]
    assert card["detail"].lower().count("the last documented failure") == 1
