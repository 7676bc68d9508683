"""The one table `make bench` prints: each app figure beside its baseline, the ratio and the target."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

HEADER = ("measure", "app", "baseline", "app/baseline", "target")
TIMES = "\u00d7"


@dataclass(frozen=True)
class Target:
    """The most a row may show: the ratio to its baseline, or (for counts) the app's own figure."""

    limit: float
    of_ratio: bool = True

    def verdict(self, app: float, ratio: float) -> str:
        met = (ratio if self.of_ratio else app) <= self.limit
        return f"≤{self.limit:g}{TIMES if self.of_ratio else ''} {'✓' if met else '✗'}"


@dataclass(frozen=True)
class Row:
    measure: str
    app: float
    baseline: float
    target: Target | None = None
    count: bool = False  # the figures count things; otherwise they are seconds
    per_second: bool = False  # the figures count things per second
    paired_ratio: float | None = None  # measured round by round; otherwise app / baseline

    def cells(self) -> tuple[str, ...]:
        ratio = self.app / self.baseline if self.paired_ratio is None else self.paired_ratio
        target = "—" if self.target is None else self.target.verdict(self.app, ratio)
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
