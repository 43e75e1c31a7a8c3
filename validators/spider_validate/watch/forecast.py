"""When a pool runs out: a least-squares line through its used addresses over a recent window.

The slope of used addresses against time (addresses per second) over the samples of the last `window` seconds;
the forecast is free / slope. A pool that is not filling (fewer than two samples, no time between them, a slope
of zero or less) never runs out: +Inf, which Prometheus stores and compares as it does any number. The same
rule as PromQL's `predict_linear` (an ordinary least-squares fit), computed here so that the metric exists
without a recording rule and a dashboard can show it per pool.
"""

from __future__ import annotations

import math
from collections import deque


def seconds_until_full(samples: list[tuple[float, float]], free: float) -> float:
    """Seconds until `free` addresses are used at the trend of the (time, used) samples; +Inf when not filling."""
    if len(samples) < 2 or free <= 0:
        return 0.0 if free <= 0 else math.inf
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_u = sum(u for _, u in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    if var == 0:
        return math.inf
    slope = sum((t - mean_t) * (u - mean_u) for t, u in samples) / var
    return free / slope if slope > 0 else math.inf


class Trend:
    """The (time, used) samples of one pool within the window: bounded, whatever the run's length."""

    def __init__(self, window: float) -> None:
        self.window = window
        self.samples: deque[tuple[float, float]] = deque()

    def add(self, when: float, used: float) -> None:
        self.samples.append((when, used))
        while self.samples and self.samples[0][0] < when - self.window:
            self.samples.popleft()

    def forecast(self, free: float) -> float:
        return seconds_until_full(list(self.samples), free)
