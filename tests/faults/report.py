"""The delay table: for each fault, the longest extra wait it caused a user, printed at the end.

Each fault test records the waits of its users (command → result post, reply → edit result,
reaction → revert post) next to the same waits without the fault; `pytest_terminal_summary` in
tests/faults/conftest.py prints the table (visible with or without `-s`).
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.faults.invariants import Outcome


@dataclass
class Row:
    fault: str
    kind: str
    with_fault: float
    without: float

    @property
    def added(self) -> float:
        return self.with_fault - self.without


ROWS: list[Row] = []
DATABASE: str | None = None  # the database the current test runs on, named in its rows


def record(fault: str, outcome: Outcome, baseline: Outcome | dict[str, float]) -> Row:
    """Keep the user result that the fault delayed most, against the same result without it.

    `baseline` is either a same-scenario run without the fault (compared result by result) or the
    typical no-fault wait per kind of result ("create", "edit", "kept edit", "revert").
    """
    worst: Row | None = None
    for (kind, name), wait in outcome.waits.items():
        if isinstance(baseline, Outcome):
            without = baseline.waits.get((kind, name))
            if without is None:
                continue
        else:
            without = baseline[kind]
        row = Row(fault, kind, wait, without)
        if worst is None or row.added > worst.added:
            worst = row
    assert worst is not None, f"{fault}: no user result to measure"
    if DATABASE:
        worst.fault = f"{worst.fault} [{DATABASE}]"
    ROWS.append(worst)
    return worst


def table() -> str:
    lines = [
        "| fault | result | wait with fault (s) | without (s) | added (s) |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for r in ROWS:
        lines.append(f"| {r.fault} | {r.kind} | {r.with_fault:.2f} | {r.without:.2f} | {r.added:+.2f} |")
    return "\n".join(lines)
