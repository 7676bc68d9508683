"""Where the app's log records go during `make bench`: a file, so that no warning lands amid the table."""

from __future__ import annotations

import logging
from pathlib import Path

from devtools.functions import ROOT

LOG = ROOT / ".run" / "bench.log"  # .run/ holds what local runs write; git and deploys ignore it
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class WarningCount(logging.Handler):
    """How many records of WARNING and above the log received, for the line after the table."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


def to_file(path: Path = LOG) -> WarningCount:
    """Send every log record of WARNING and above, and Python's warnings, to `path`, emptied first.

    WARNING, as logging's last resort had it: the app's INFO records, one per call placed, would add
    file writes to the requests timed."""
    path.parent.mkdir(exist_ok=True)
    written = logging.FileHandler(path, mode="w", encoding="utf-8")
    written.setFormatter(logging.Formatter(FORMAT))
    counted = WarningCount()
    logging.basicConfig(level=logging.WARNING, handlers=[written, counted], force=True)
    logging.captureWarnings(True)
    return counted
