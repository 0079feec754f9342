"""Kaplan–Meier: how long compromised sites stay compromised after the first notice.

A site cleaned after *d* days is an event at *d*; a site still open is right-censored
at its age: it counts as "at risk" up to then and not after. That is what keeps a
young campaign (most sites still open, but only for days) from looking worse than an
old one, which a plain "share resolved" would do.

Conventions: the curve always starts with Step(0, 1.0, n, 0, 0). Sites cleaned (or
censored) on day 0 get a second step at t=0 carrying the drop, so the curve is lowered
at 0 and a plot draws a vertical line there; survival_at(steps, 0) is the value after
it. Censorings at the same time as events leave the risk set just after those events,
the usual product-limit rule. Negative days (clock skew) count as 0.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    """The curve from ``t`` on: ``survival`` is the share still compromised."""

    t: float
    survival: float
    at_risk: int
    events: int
    censored: int


def kaplan_meier(observations: Iterable[tuple[float, bool]]) -> list[Step]:
    """The product-limit estimate from (days, resolved) pairs; [] for no data.

    The first step is at t=0 with survival 1.0 and every observation at risk; then
    one step per distinct time with an event or a censoring.
    """
    events: Counter[float] = Counter()
    censored: Counter[float] = Counter()
    total = 0
    for days, resolved in observations:
        t = max(0.0, float(days))
        (events if resolved else censored)[t] += 1
        total += 1
    if not total:
        return []
    steps = [Step(0.0, 1.0, total, 0, 0)]
    survival, at_risk = 1.0, total
    for t in sorted(set(events) | set(censored)):
        d, c = events[t], censored[t]
        if d:
            survival *= 1 - d / at_risk
        steps.append(Step(t, survival, at_risk, d, c))
        at_risk -= d + c
    return steps


def survival_at(steps: list[Step], t: float) -> float:
    """The curve's value at ``t`` (1.0 before the first step; right-continuous)."""
    value = 1.0
    for step in steps:
        if step.t > t:
            break
        value = step.survival
    return value


def median_time(steps: list[Step]) -> float | None:
    """The first time at which half the sites or fewer are still compromised."""
    return next((s.t for s in steps if s.survival <= 0.5), None)
