"""The package azd and Core Tools deploy, built the way `.funcignore` says, holds exactly the app."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pathspec
import pytest

ROOT = Path(__file__).resolve().parents[2]
APP_FOLDERS = (
    "make_call",
    "voice_url",
    "sms_url",
    "send_sms",
    "call_status",
    "message_status",
    "call_outcome",
    "message_outcome",
    "sweep_state",
    "shared",
)
APP_FILES = {"function_app.py", "host.json", "requirements.txt"}
# What tools leave in a working tree: none of it may be deployed.
ARTEFACTS = (
    ".venv/bin/python",
    ".venv-3.13/bin/python",
    ".venv-infra/bin/checkov",
    ".azure/dev/.env",
    "local.settings.json",
    ".run/address",
    "shared/__pycache__/settings.cpython-311.pyc",
    "devtools/twilio-sandbox/node_modules/.bin/prism",
    ".pytest_cache/v/cache/nodeids",
    ".mypy_cache/3.11/shared/settings.data.json",
    ".ruff_cache/CACHEDIR.TAG",
    ".hypothesis/examples/0/0",
    "mutants/shared/settings.py",
    ".python_packages/lib/site-packages/twilio/__init__.py",
    "node_modules/.bin/azurite",
)


def working_tree() -> list[str]:
    """Tracked files and untracked ones git does not ignore: what a deploy from this folder sees."""
    command = ["git", "ls-files", "--cached", "--others", "--exclude-standard"]
    listing = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [path for path in listing.splitlines() if (ROOT / path).is_file()]


def package(paths: list[str]) -> set[str]:
    spec = pathspec.GitIgnoreSpec.from_lines((ROOT / ".funcignore").read_text().splitlines())
    return {path for path in paths if not spec.match_file(path)}


@pytest.mark.processes
def test_package_holds_exactly_the_app() -> None:
    tree = working_tree()
    app = APP_FILES | {path for path in tree if path.split("/")[0] in APP_FOLDERS}

    assert package(tree) == app


def test_package_leaves_out_what_tools_write() -> None:
    assert package(list(ARTEFACTS)) == set()


@pytest.mark.processes
def test_package_indexes_every_function_on_its_own(tmp_path: Path) -> None:
    for path in package(working_tree()):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / path, tmp_path / path)
    script = (
        "import function_app; print(' '.join(sorted(f.get_function_name() for f in function_app.app.get_functions())))"
    )

    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True)

    assert result.stdout.split() == sorted(APP_FOLDERS[:-1])
