"""The mutation score of shared/ from mutmut's results in mutants/, as `make mutation` prints it.

`python -m tests.mutation_score` prints killed / total per module and in all, and each surviving
mutant that tests/mutation-equivalents.txt does not list; `--retest` prints only the names to test
again (`--among FILE`: only those also named in FILE): those survivors, and the listed mutants a run
found killed or timed out (by a test that failed for another reason, or a listing gone stale). mutmut keeps a
verdict, even once a new test would change it, until the mutant is named on its command line.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "mutants" / "shared"
EQUIVALENTS = ROOT / "tests" / "mutation-equivalents.txt"
# mutmut's exit codes: a test failed (1, 3), the tests ran out of time (24, 36, 152, 255; -24 SIGXCPU).
KILLED = {1, 3}
TIMEOUT = {24, 36, 152, 255, -24}
SURVIVED = 0


def verdicts() -> dict[str, int | None]:
    """Each mutant of shared/ and mutmut's exit code for it (None: not tested yet)."""
    found: dict[str, int | None] = {}
    for meta in sorted(RESULTS.glob("*.py.meta")):
        found.update(json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"])
    return found


def equivalents() -> dict[str, str]:
    """The mutants listed as equivalent: name, then why no behaviour tells them apart."""
    listed: dict[str, str] = {}
    for line in EQUIVALENTS.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, reason = line.partition(" ")
            listed[name] = reason.strip()
    return listed


def module_of(mutant: str) -> str:
    return mutant.split(".")[1]


def report(found: dict[str, int | None], listed: dict[str, str]) -> list[str]:
    lines = []
    totals: Counter[str] = Counter()
    detected: Counter[str] = Counter()
    for mutant, code in found.items():
        totals[module_of(mutant)] += 1
        detected[module_of(mutant)] += code in KILLED or code in TIMEOUT
    for module in sorted(totals):
        lines.append(line(module, detected[module], totals[module]))
    lines.append(line("shared/", detected.total(), totals.total()))
    survivors = [m for m, code in found.items() if code == SURVIVED]
    lines.append(f"{len(survivors)} survived: {sum(m in listed for m in survivors)} listed as equivalent")
    others = Counter(_status(code) for code in found.values() if code not in KILLED | TIMEOUT | {SURVIVED})
    lines += [f"{count} {status}" for status, count in sorted(others.items())]
    lines += [f"  not listed: {m}" for m in survivors if m not in listed]
    lines += [f"  listed but no longer surviving: {m}" for m in listed if found.get(m, SURVIVED) != SURVIVED]
    return lines


def line(module: str, detected: int, total: int) -> str:
    if not total:
        return f"{module:15} no mutants yet: run `make mutation`"
    return f"{module:15} {detected:4} / {total:4}  {100 * detected / total:6.2f} % killed"


def _status(code: int | None) -> str:
    return {None: "not tested yet", 5: "without tests", 33: "without tests", 34: "skipped"}.get(code, "suspicious")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--retest",
        action="store_true",
        help="only the unlisted survivors and the listed mutants found killed or timed out",
    )
    parser.add_argument("--among", type=Path, help="with --retest: only the mutants this file names")
    args = parser.parse_args(argv)
    found, listed = verdicts(), equivalents()
    if args.retest:
        lines = [
            m
            for m, code in found.items()
            if (code == SURVIVED and m not in listed) or (m in listed and code in KILLED | TIMEOUT)
        ]
        if args.among:
            lines = [m for m in lines if m in set(args.among.read_text(encoding="utf-8").split())]
    else:
        lines = report(found, listed)
    sys.stdout.write("".join(f"{line}\n" for line in lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
