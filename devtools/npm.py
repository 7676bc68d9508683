"""The pinned npm packages the dev tools run (Prism, Azurite), installed from their committed lock
files: by `make setup`, and by the dev tools themselves when a run or a test finds them missing."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path


def npm_ci(directory: Path, needed_for: str) -> None:
    """`npm ci` in `directory`, so that exactly the locked versions are installed."""
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(f"npm is needed for {needed_for}; install Node.js")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--silent"], cwd=directory, check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Install the npm packages a folder's lock file pins.")
    parser.add_argument("directory", type=Path, help="a folder with package.json and package-lock.json")
    args = parser.parse_args(argv)
    npm_ci(args.directory, str(args.directory))
    return 0


if __name__ == "__main__":
    sys.exit(main())
