"""``runner.py SPEC --masks``: draw the attention masks of chosen finished runs.

For each run picked by ``--datasets``, ``--conditions`` and ``--seeds`` (all the spec's runs
without them), the store folder that serves it holds ``attention_examples.npz`` (written by
:func:`monetk.experiment.run_experiment` at the end of an ok run: the first evaluation images,
their reconstruction, each slot's mask and component, and the ground-truth segmentation). Each
is drawn as :func:`analysis.figures.attention_figure` draws the report's (input, reconstruction,
each slot's mask; ground truth, argmax segmentation, each mask times its component) into
``OUT/<spec>/masks/<dataset>_<condition>_seed-<n>.png`` and ``.pdf``.

A run that cannot be drawn (not trained, partial, failed, no examples) is an error naming its
dataset, condition and seed; then nothing is drawn (exit status 2).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from monetk_runner.collect import effective_result
from monetk_runner.folder import Made, recorded
from monetk_runner.plan import Planned, plan
from monetk_runner.spec import Spec
from monetk_runner.store import RunStore

MASKS = "masks"
EXAMPLES = "attention_examples.npz"


def examples_path(planned: Planned, store: RunStore) -> Path:
    """The ``attention_examples.npz`` of the store folder that serves ``planned``."""
    return store.run_dir(planned.found.run_id) / EXAMPLES


def problem(planned: Planned, store: RunStore) -> str | None:
    """Why ``planned``'s masks cannot be drawn, or None."""
    run, state = planned.run, planned.state
    where = f"{run.dataset} / {run.condition} / seed {run.seed}"
    if state == "todo":
        return f"{where}: not trained yet (run id {run.run_id})"
    if state == "partial":
        return f"{where}: not finished (partial: a checkpoint, no result; run id {run.run_id})"
    result = planned.found.result or {}
    if result.get("status") != "ok":
        reason = f": {result['reason']}" if result.get("reason") else ""
        return f"{where}: {result.get('status', 'no')} result{reason} (run id {run.run_id})"
    if not examples_path(planned, store).is_file():
        return f"{where}: finished, but {examples_path(planned, store)} is absent"
    return None


def title(planned: Planned) -> str:
    """``"objects_room / NLL+M / seed 3: FG-ARI 0.812, 4,000 steps"`` and, for a stopped run
    served by its continued twin, that the masks are the continued run's."""
    run, result = planned.run, effective_result(planned) or {}
    fg_ari = (result.get("final") or {}).get("fg_ari")
    parts = [f"{run.dataset} / {run.condition} / seed {run.seed}:"]
    if fg_ari is not None:
        parts.append(f"FG-ARI {fg_ari:.3f},")
    parts.append(f"{result.get('steps') or 0:,} steps")
    found = planned.found.result or {}
    if planned.found.aliased and found.get("steps") != result.get("steps"):
        parts.append(f"(masks of the continued run at step {found.get('steps') or 0:,})")
    return " ".join(parts)


def file_name(planned: Planned) -> str:
    """``objects_room_NLL+M_seed-3.png``: characters other than letters, digits and ``_.+-``
    become ``_``."""
    run = planned.run
    name = f"{run.dataset}_{run.condition}_seed-{run.seed}"
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", name) + ".png"


def draw(planned: list[Planned], store: RunStore, folder: Path,
         max_images: int = 3) -> list[Path]:
    """Draw each run of ``planned`` (all drawable) into ``folder``; return the PNG paths (a
    PDF lies beside each)."""
    from analysis.figures import attention_figure, load_attention_examples  # matplotlib

    folder.mkdir(parents=True, exist_ok=True)
    return [attention_figure(load_attention_examples(examples_path(p, store)), title(p),
                             folder / file_name(p), max_images)
            for p in planned]


def masks_command(spec: Spec, selected: list, store: RunStore, made: Made) -> int:
    """``--masks``: draw the selected runs' masks and print the paths (exit 0), or name each run
    that cannot be drawn and draw nothing (exit 2)."""
    planned = plan(spec.name, selected, store)
    problems = [text for p in planned if (text := problem(p, store)) is not None]
    if problems:
        print("\n".join(problems), file=sys.stderr)
        before = recorded(store.out / spec.name)
        if before is not None and (before.profile, before.sets) != (made.profile, made.sets):
            print(f"(the runs in {store.out / spec.name} were trained by {before.describe()}; "
                  "give the same --profile and --set values)", file=sys.stderr)
        print(f"{len(problems)} of the {len(planned)} chosen run(s) cannot be drawn; nothing "
              "was drawn.", file=sys.stderr)
        return 2
    for path in draw(planned, store, store.out / spec.name / MASKS):
        print(f"Masks: {path} (and {path.with_suffix('.pdf').name})")
    return 0
