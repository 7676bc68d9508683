"""The pinned npm packages the dev tools run (Prism, Azurite), installed from their committed lock files."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def npm_ci(directory: Path, needed_for: str) -> None:
    """`npm ci` in `directory`, so that exactly the locked versions are installed."""
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(f"npm is needed for {needed_for}; install Node.js")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--silent"], cwd=directory, check=True)
