"""Where each run of a spec stands in the store, which runs are shared, and the dry-run table."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from monetk_runner.expand import Run
from monetk_runner.store import STATES, Found, RunStore


@dataclass(frozen=True)
class Planned:
    """A run, the store folder that serves it, its state, and the other views of that folder."""

    run: Run
    found: Found
    shared_with: tuple[str, ...]

    @property
    def state(self) -> str:
        return self.found.state

    @property
    def note(self) -> str:
        notes = []
        if self.run.continued:
            notes.append("continues past the stop")
        if self.found.aliased:
            notes.append(
                "served by the " + ("stopped" if self.run.continued else "continued") + " run"
            )
        if self.shared_with:
            more = len(self.shared_with) - 2
            notes.append(
                "shared with "
                + ", ".join(self.shared_with[:2])
                + (f" (+{more} more)" if more > 0 else "")
            )
        return "; ".join(notes)


def plan(spec_name: str, runs: list[Run], store: RunStore) -> list[Planned]:
    """State and sharing of ``runs``: sharing counts views on disk (any spec) and other runs of
    ``runs`` served by the same store folder."""
    found = [store.find(run) for run in runs]
    users: dict[str, list[str]] = {}
    for run, where in zip(runs, found, strict=True):
        users.setdefault(where.run_id, []).append(f"{spec_name}/{run.label}")
    for run_id, views in store.views().items():
        users.setdefault(run_id, []).extend(views)
    planned = []
    for run, where in zip(runs, found, strict=True):
        own = f"{spec_name}/{run.label}"
        others = tuple(dict.fromkeys(v for v in users[where.run_id] if v != own))
        planned.append(Planned(run, where, others))
    return planned


#: The states of the runs the runner trains (``failed`` too with ``--retry-failed``).
UNFINISHED = ("todo", "partial")


def to_train(planned: list[Planned], states: tuple[str, ...] = UNFINISHED) -> list[Planned]:
    """The runs of ``planned`` in ``states``, one per distinct store folder, in the order the
    runner trains them: seed by seed, and within a seed in ``planned``'s order (the spec's
    datasets, then its conditions), so paired results come early."""
    todo: dict[str, Planned] = {}
    for p in sorted(planned, key=lambda p: p.run.seed):
        if p.state in states and p.found.run_id not in todo:
            todo[p.found.run_id] = p
    return list(todo.values())


def summary(planned: list[Planned]) -> str:
    """``"8 runs (8 distinct): 2 done, 0 failed, 1 partial, 5 todo; 2 shared"``."""
    counts = Counter(p.state for p in planned)
    distinct = len({p.found.run_id for p in planned})
    states = ", ".join(f"{counts[state]} {state}" for state in STATES)
    shared = sum(1 for p in planned if p.shared_with)
    return (
        f"{len(planned)} runs ({distinct} distinct): {states}; "
        f"{shared} shared with another spec or condition"
    )


def table(planned: list[Planned]) -> str:
    """One line per run: dataset, condition, seed, run id, state, note; then the summary."""
    width_d = max([len("dataset"), *(len(p.run.dataset) for p in planned)])
    width_c = max([len("condition"), *(len(p.run.condition) for p in planned)])
    lines = [
        f"{'dataset':<{width_d}}  {'condition':<{width_c}}  {'seed':>4}  "
        f"{'run id':<16}  {'state':<7}  note"
    ]
    for p in planned:
        lines.append(
            f"{p.run.dataset:<{width_d}}  {p.run.condition:<{width_c}}  {p.run.seed:>4}  "
            f"{p.found.run_id:<16}  {p.state:<7}  {p.note}".rstrip()
        )
    lines.append(summary(planned))
    return "\n".join(lines)
