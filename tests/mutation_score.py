"""The mutation score of shared/ from mutmut's results in mutants/, as `make mutation` prints it.

`python -m tests.mutation_score` prints killed / total per module and in all, and each surviving
mutant that tests/mutation-equivalents.txt does not list. `--forget` first clears the verdicts to
test again: those survivors, and the listed mutants a run found killed or timed out (by a test that
failed for another reason, or a listing gone stale). mutmut keeps a verdict until it is cleared, even
once a new test would change it, and tests every mutant without one on its next run.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "shared"
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
    """Killed / total per module and in all; timeouts and harness failures apart, never counted as kills.

    A listed equivalent that comes out "killed" is a harness failure: plain pytest passes with it planted,
    so some test failed for another reason. It counts in the total, not among the kills.
    """
    lines = []
    totals: Counter[str] = Counter()
    killed: Counter[str] = Counter()
    timed_out: Counter[str] = Counter()
    for mutant, code in found.items():
        module = module_of(mutant)
        totals[module] += 1
        killed[module] += code in KILLED and mutant not in listed
        timed_out[module] += code in TIMEOUT
    for module in sorted(totals):
        lines.append(line(module, killed[module], totals[module], timed_out[module]))
    lines.append(line("shared/", killed.total(), totals.total(), timed_out.total()))
    harness = [m for m, code in found.items() if m in listed and code in KILLED]
    lines.append(f"{len(harness)} listed as equivalent but failed a test (harness failures, not counted as killed)")
    survivors = [m for m, code in found.items() if code == SURVIVED]
    lines.append(f"{len(survivors)} survived: {sum(m in listed for m in survivors)} listed as equivalent")
    others = Counter(_status(code) for code in found.values() if code not in KILLED | TIMEOUT | {SURVIVED})
    lines += [f"{count} {status}" for status, count in sorted(others.items())]
    lines += [f"  not listed: {m}" for m in survivors if m not in listed]
    lines += [f"  listed but no longer surviving: {m}" for m in listed if found.get(m) not in {SURVIVED, None}]
    lines += [f"  listed but not a mutant of this code (renumbered?): {m}" for m in listed if m not in found]
    return lines


def line(module: str, killed: int, total: int, timed_out: int) -> str:
    if not total:
        return f"{module:15} no mutants yet: run `make mutation`"
    return f"{module:15} {killed:4} / {total:4}  {100 * killed / total:6.2f} % killed, {timed_out} timed out"


def _status(code: int | None) -> str:
    return {None: "not tested yet", 5: "without tests", 33: "without tests", 34: "skipped"}.get(code, "suspicious")


def left_alone(source: Path = SOURCE) -> dict[str, list[str]]:
    """The functions of shared/ that mutmut 3 never mutates, by why: "decorated", under a decorator other
    than a lone @staticmethod or @classmethod; "marked", with `# pragma: no mutate` on the line that opens
    their body. (It never mutates code outside functions either: constants, class fields.)"""
    found: dict[str, list[str]] = {"decorated": [], "marked": []}

    def visit(node: ast.AST, prefix: str, lines: list[str]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.", lines)
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name, decorators = f"{prefix}{child.name}", child.decorator_list
                plain = not decorators or (
                    len(decorators) == 1
                    and isinstance(decorators[0], ast.Name)
                    and decorators[0].id in {"staticmethod", "classmethod"}
                )
                header = lines[child.lineno - 1 : child.body[0].lineno - 1]
                if not plain:
                    found["decorated"].append(name)
                elif any("# pragma: no mutate" in line for line in header):
                    found["marked"].append(name)
                else:
                    visit(child, f"{name}.", lines)

    for module in sorted(source.glob("*.py")):
        text = module.read_text(encoding="utf-8")
        visit(ast.parse(text), f"{module.stem}.", text.splitlines())
    return found


def to_retest(found: dict[str, int | None], listed: dict[str, str]) -> list[str]:
    return [
        m
        for m, code in found.items()
        if (code == SURVIVED and m not in listed) or (m in listed and code in KILLED | TIMEOUT)
    ]


def forget(mutants: list[str]) -> None:
    """Clear these mutants' verdicts in mutmut's files, so that its next run tests them again."""
    for meta in sorted(RESULTS.glob("*.py.meta")):
        data = json.loads(meta.read_text(encoding="utf-8"))
        verdicts_ = data["exit_code_by_key"]
        cleared = [m for m in mutants if m in verdicts_]
        if cleared:
            verdicts_.update(dict.fromkeys(cleared))
            meta.write_text(json.dumps(data), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--forget",
        action="store_true",
        help="clear the verdicts of the unlisted survivors and of the listed mutants found killed or timed out",
    )
    args = parser.parse_args(argv)
    found, listed = verdicts(), equivalents()
    if args.forget:
        retest = to_retest(found, listed)
        forget(retest)
        sys.stdout.write(f"{len(retest)} earlier verdicts cleared, to be tested again\n")
    else:
        sys.stdout.write("".join(f"{line}\n" for line in report(found, listed)))
        for why, names in left_alone().items():
            sys.stdout.write(f"Not mutated ({why}): {', '.join(names)}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
