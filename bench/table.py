"""The one table `make bench` prints: each app figure beside its baseline, the ratio and the target."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

HEADER = ("measure", "app", "baseline", "app/baseline", "target")
TIMES = "\u00d7"


class Bound(enum.Enum):
    """Which side of its limit a figure must stay: at most for a cost, at least for a throughput."""

    AT_MOST = "≤"
    AT_LEAST = "≥"

    def holds(self, figure: float, limit: float) -> bool:
        return figure <= limit if self is Bound.AT_MOST else figure >= limit


@dataclass(frozen=True)
class Target:
    """A regression guard on a row: its ratio to the baseline, or (for counts) the app's own figure."""

    limit: float
    bound: Bound = Bound.AT_MOST
    of_ratio: bool = True

    def met(self, app: float, ratio: float) -> bool:
        return self.bound.holds(ratio if self.of_ratio else app, self.limit)

    def verdict(self, app: float, ratio: float) -> str:
        mark = "✓" if self.met(app, ratio) else "✗"
        return f"{self.bound.value}{self.limit:g}{TIMES if self.of_ratio else ''} {mark}"


@dataclass(frozen=True)
class Row:
    measure: str
    app: float
    baseline: float
    target: Target
    count: bool = False  # the figures count things; otherwise they are seconds
    per_second: bool = False  # the figures count things per second
    paired_ratio: float | None = None  # measured round by round; otherwise app / baseline

    def cells(self) -> tuple[str, ...]:
        ratio = self.app / self.baseline if self.paired_ratio is None else self.paired_ratio
        target = self.target.verdict(self.app, ratio)
        return (self.measure, self._figure(self.app), self._figure(self.baseline), _ratio(ratio), target)

    def _figure(self, value: float) -> str:
        if self.per_second:
            return f"{value:,.1f}/s"
        if self.count:
            return f"{value:,.0f}"
        return f"{value * 1e6:.1f} µs" if value < 1e-3 else f"{value * 1e3:.1f} ms"


def render(rows: Sequence[Row]) -> str:
    """A Markdown table, padded so that it also reads well in a terminal."""
    lines = [HEADER, *(row.cells() for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER))]
    rule = tuple("-" * width for width in widths)
    return "\n".join(
        "| " + " | ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) + " |"
        for line in (lines[0], rule, *lines[1:])
    )


def _ratio(value: float) -> str:
    return f"{value:.2f}{TIMES}" if value >= 0.1 else f"{value:.2g}{TIMES}"
