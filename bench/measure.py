"""Repeated timings taken side by side, and the statistics the table reports."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence

Sampler = Callable[[], float]


def rounds(count: int, samplers: Sequence[Sampler], warmup: int = 0) -> list[list[float]]:
    """Each sampler's figures over `count` rounds, the samplers taking turns within every round,
    so that a machine busier at one moment weighs on all of them alike."""
    for _ in range(warmup):
        for sample in samplers:
            sample()
    figures: list[list[float]] = [[] for _ in samplers]
    for _ in range(count):
        for sample, kept in zip(samplers, figures, strict=True):
            kept.append(sample())
    return figures


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest rank: a value actually observed, as latency percentiles are usually given."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def paired_ratio(values: Sequence[float], baselines: Sequence[float]) -> float:
    """The median of each round's ratio: steadier than a ratio of medians when the machine's speed
    drifts between rounds, since both figures of a round were taken moments apart."""
    return statistics.median(v / b for v, b in zip(values, baselines, strict=True))
