"""How old the failure that drives advice is: a failure documented long ago may no longer describe
the disease now (order_checks.yaml delay.stale_failure_days, an institution default)."""

from __future__ import annotations

from datetime import date

from salvage.engine.model import Failure
from salvage.engine.wording import counted
from salvage.knowledge.model import KnowledgeBase

DAYS_PER_YEAR = 365.25
DAYS_PER_MONTH = 30.44


def stale_failure(failure: Failure | None, kb: KnowledgeBase, as_of: date) -> str | None:
    """The sentence asking to confirm the disease status, or None when the failure is recent."""
    rule = kb.order_checks.delay
    if failure is None or not rule.stale_failure_text:
        return None
    days = (as_of - failure.when).days
    if days <= rule.stale_failure_days:
        return None
    years = int(days // DAYS_PER_YEAR)
    age = counted(years, "year") if years else counted(int(days // DAYS_PER_MONTH), "month")
    what = failure.kind.replace("-", " ")
    if failure.line is not None:
        what += f" of line {failure.line}"
    return rule.stale_failure_text.format(failure=what, date=failure.when.isoformat(), age=age)
