"""requirements.txt installs on every Python that Flex Consumption runs, as wheels for its Linux x86_64 hosts.

pip's `--python-version` checks Requires-Python against the target but evaluates environment markers
against the running interpreter, so the markers of requirements.txt are evaluated here for each target
first; what pip resolves from the result must hold exactly the pins that apply, every one a wheel.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
PYTHONS = ("3.11", "3.12", "3.13", "3.14")
# pip matches manylinux tags literally: name every glibc level the hosts (glibc 2.28 and newer) accept.
PLATFORMS = [f"manylinux_2_{minor}_x86_64" for minor in range(28, 4, -1)] + [
    "manylinux2014_x86_64",
    "manylinux2010_x86_64",
    "manylinux1_x86_64",
]


def requirements_for(python: str) -> list[Requirement]:
    environment = {name: str(value) for name, value in default_environment().items()}
    environment |= {"python_version": python, "python_full_version": f"{python}.0"}
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    requirements = [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]
    return [req for req in requirements if req.marker is None or req.marker.evaluate(environment)]


def pinned(requirement: Requirement) -> str:
    (specifier,) = requirement.specifier
    assert specifier.operator == "=="
    return specifier.version


def resolve(python: str, requirements: list[Requirement], workdir: Path) -> list[dict[str, Any]]:
    """What pip would install on that Python, from wheels only; its JSON report's `install` list."""
    (workdir / "requirements.txt").write_text("".join(f"{req.name}=={pinned(req)}\n" for req in requirements))
    platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--no-input"]
    command += ["--disable-pip-version-check", "--target", str(workdir / "target"), "--report", "-"]
    command += ["--python-version", python, "--implementation", "cp", "--only-binary=:all:", *platforms]
    command += ["-r", str(workdir / "requirements.txt")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"Python {python}: {result.stderr.strip().splitlines()[-1:]}"
    installs: list[dict[str, Any]] = json.loads(result.stdout)["install"]
    return installs


@pytest.mark.parametrize("python", PYTHONS)
def test_requirements_pick_the_azure_functions_line_for_each_python(python: str) -> None:
    (functions,) = [req for req in requirements_for(python) if req.name == "azure-functions"]

    assert pinned(functions).startswith("1." if python < "3.13" else "2.")


@pytest.mark.processes
@pytest.mark.parametrize("python", PYTHONS)
def test_requirements_resolve_as_linux_wheels_for_each_python(python: str, tmp_path: Path) -> None:
    requirements = requirements_for(python)

    installs = resolve(python, requirements, tmp_path)

    versions = {item["metadata"]["name"].lower(): item["metadata"]["version"] for item in installs}
    assert {req.name.lower(): pinned(req) for req in requirements}.items() <= versions.items()
    urls = [item["download_info"]["url"] for item in installs]
    assert all(url.endswith(".whl") for url in urls), urls
