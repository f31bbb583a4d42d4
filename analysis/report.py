"""Write the report of one spec's results: report.md, CSV and LaTeX tables, figures."""

from __future__ import annotations

import numbers
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis import figures
from analysis.curves import load_histories, median_curves
from analysis.findings import (
    MEDIAN_GAP,
    VERDICTS,
    findings_table,
    report_rules,
    still_moving,
)
from analysis.formatting import format_number, format_p
from analysis.results import load_results, ordered, parameter_columns, status_counts
from analysis.sequential_report import sequential_section, summarise_sequential
from analysis.spec_tests import DROPPED_SEPARATOR, analyse, normalise_test, validate_tests
from analysis.summary import (
    SUMMARY_METRICS,
    stop_effect_table,
    summary_table,
    trivial_baseline,
)
from analysis.tables import (
    latex_table,
    markdown_table,
    posthoc_display,
    summary_display,
    tests_display,
)

BOXPLOT_METRICS = ("fg_ari", "fg_ari_multi", "ari")


def write_report(
    spec: Mapping[str, Any],
    results: pd.DataFrame | str | Path,
    out_dir: str | Path,
    results_dir: str | Path | None = None,
) -> dict[str, Path]:
    """Analyse ``results`` (results.csv or its DataFrame) as ``spec`` declares; return the paths.

    ``results_dir`` is the folder that ``run_dir`` entries are relative to (default: the folder of
    results.csv); without it the attention-mask figures are skipped. Everything is computed before
    anything is written, so an invalid spec or results table (ValueError) writes nothing; a
    comparison that cannot be computed is marked in the report instead. The report is written
    into a new folder that then replaces ``out_dir`` whole (an earlier report or an empty folder;
    any other non-empty folder is refused), so no file of an earlier report survives.
    """
    df = load_results(results)
    if results_dir is None and not isinstance(results, pd.DataFrame):
        results_dir = Path(results).parent
    datasets = ordered([str(d) for d in spec.get("datasets") or {}], df["dataset"].unique())
    conditions = ordered([str(c) for c in spec.get("conditions") or {}], df["condition"].unique())
    paper = spec.get("paper")
    problems = validate_tests(spec.get("tests"), paper, conditions, datasets)
    if problems:
        raise ValueError("spec tests/paper invalid:\n" + "\n".join(problems))
    paper_medians = (paper or {}).get("medians")
    declared = [normalise_test(t) for t in spec.get("tests") or []]
    analysis = analyse(declared, df, datasets, parameter_columns(spec.get("conditions")), paper)
    tests = analysis.tests
    summary = summary_table(df, datasets, conditions)
    stop = stop_effect_table(df, datasets, conditions)
    main_metric = [m for m in SUMMARY_METRICS if m in df.columns][:1]
    other_metrics = [m for m in SUMMARY_METRICS[1:] if m in df.columns]
    shown_summary = summary_display(summary, main_metric, paper_medians)
    shown_other = summary_display(summary, other_metrics) if other_metrics else None
    shown_tests = tests_display(tests, with_paper=bool((paper or {}).get("p_values")))
    histories = load_histories(df, results_dir)
    curves = median_curves(histories, datasets, conditions)
    claim_curves = median_curves(histories, datasets, conditions, up_to_claims=True)
    findings = findings_table(spec, tests, summary, stop, df,
                              curves=None if histories.empty else claim_curves)
    sequential = None  # computed (and checked) before anything is written
    if spec.get("sequential") is not None:
        sequential = summarise_sequential(spec, df, datasets, conditions)
    title = spec.get("title") or spec.get("name") or "results"
    summary_tex = latex_table(shown_summary, f"{title}: FG-ARI per condition", "tab:summary")
    if shown_other is not None:
        summary_tex += latex_table(shown_other, f"{title}: other metrics", "tab:summary-other")
    final = Path(out_dir)
    if final.exists() and any(final.iterdir()) and not (final / "report.md").is_file():
        raise ValueError(f"{final}: not empty and not a report folder (no report.md); the report "
                         "replaces its folder whole, so give a new or empty folder")
    out = final.parent / f".{final.name}.writing-{os.getpid()}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    written = {
        "summary_csv": out / "summary.csv",
        "tests_csv": out / "tests.csv",
        "posthoc_csv": out / "posthoc.csv",
        "summary_tex": out / "summary.tex",
        "tests_tex": out / "tests.tex",
        "findings_csv": out / "findings.csv",
    }
    findings.to_csv(written["findings_csv"], index=False)
    summary.to_csv(written["summary_csv"], index=False)
    tests.to_csv(written["tests_csv"], index=False)
    analysis.posthoc.to_csv(written["posthoc_csv"], index=False)
    written["summary_tex"].write_text(summary_tex)
    written["tests_tex"].write_text(latex_table(shown_tests, f"{title}: tests", "tab:tests"))
    baselines = {d: trivial_baseline(df, d) for d in datasets}
    if not histories.empty:
        written["curves_csv"] = out / "curves.csv"
        curves.to_csv(written["curves_csv"], index=False)
        written["learning_curves"] = figures.learning_curves(
            histories, curves, datasets, conditions, out / "learning_curves.png", baselines)
    for metric in BOXPLOT_METRICS:
        if metric in df.columns and np.isfinite(pd.to_numeric(df[metric], errors="coerce")).any():
            written[f"boxplot_{metric}"] = figures.boxplot(
                df, metric, datasets, conditions, out / f"boxplot_{metric}.png",
                baselines if metric == "fg_ari" else None,
                paper_medians if metric == "fg_ari" else None,
            )  # fmt: skip
    for test in declared:
        comparisons = test["pairs"] if test["kind"] == "wilcoxon" else [test["conditions"]]
        written[_file_key("paired", test["name"])] = figures.paired_plot(
            df, test["metric"], datasets, comparisons,
            out / f"{_file_key('paired', test['name'])}.png",
            f"{test['name']}: {test['metric']} per seed (one line per seed; black: medians)",
        )  # fmt: skip
    _cd_figures(analysis.posthoc, out, written)
    sequential_text = ""
    if sequential is not None:
        sequential_text, figures_written = sequential_section(spec["sequential"], sequential,
                                                              datasets, out)
        written["sequential_csv"] = out / "sequential.csv"
        sequential.table.to_csv(written["sequential_csv"], index=False)
        written.update(figures_written)
    mask_lines = _mask_figures(df, datasets, conditions, results_dir, out, written)
    sections = [
        _header(spec, title, df, datasets),
        _findings_section(findings, report_rules(spec)),
        _curves_section(histories, curves, claim_curves, report_rules(spec), written),
        _what_was_run(spec, datasets, conditions, df),
        _runs(df, datasets, conditions),
        _summary_section(shown_summary, shown_other),
        _figure_lines(written, any(np.isfinite(list(baselines.values()))), bool(paper_medians)),
        *([sequential_text] if sequential_text else []),
        _tests_section(tests, shown_tests),
        _posthoc_section(analysis.posthoc, written),
        _stop_section(stop),
        "## Attention masks (median-FG-ARI run per condition)\n\n" + "\n".join(mask_lines) + "\n",
    ]
    written["report"] = out / "report.md"
    written["report"].write_text("\n".join(sections))
    _replace_folder(out, final)
    return {key: final / path.name for key, path in written.items()}


def _replace_folder(new: Path, final: Path) -> None:
    """Put the folder ``new`` at ``final`` (an earlier report, or empty), so that no file of an
    earlier report survives: the old folder is renamed aside first and removed after ``new`` is in
    place."""
    old = final.parent / f".{final.name}.old-{os.getpid()}"
    if final.exists():
        os.replace(final, old)
    os.replace(new, final)
    shutil.rmtree(old, ignore_errors=True)


def _findings_section(findings: pd.DataFrame, rules: Mapping[str, Any]) -> str:
    head = "## Findings: the paper's claims and ours\n\n"
    if findings.empty:
        return head + "The spec has no `paper:` block, so there is nothing to compare.\n"
    moving = rules["under_trained"]
    return head + "\n".join([
        "One row per claim of the spec's `paper:` block. Verdicts: "
        + "; ".join(f"*{v}*" for v in VERDICTS) + ". The rules (each defined once, in "
        "`analysis/findings.py`; thresholds from the spec's `report:` block):",
        "",
        "- *reproduced*: the same test decision at the spec's alpha and correction, and the same "
        "direction where the paper finds a difference; a medians row needs the same strict order "
        f"of every two conditions whose paper medians differ by at least {MEDIAN_GAP} (ties are "
        "no order; levels are not compared).",
        "- *direction only*: the paper's difference, our direction, not significant.",
        "- *not reproduced*: the other direction, tied medians, or a difference the paper does "
        "not find.",
        "- *not testable at this scale*: not computable; or no p-value attainable with this many "
        "seeds is below alpha; or every condition of the claim has not segmented: its median "
        "FG-ARI is at most the trivial segmentation's (all foreground in one segment) plus "
        f"`report.chance_margin` = {rules['chance_margin']:g}"
        + ("; or the profile declares `report.verdicts: false` (its numbers mean nothing)."
           if not rules["verdicts"] else "."),
        f"- caveat *may be under-trained*: a condition of the claim whose median FG-ARI moved by "
        f"more than {moving['fg_ari']:g}, or median monitored MSE by more than "
        f"{moving['mse_relative']:.0%}, between its last check and the check {moving['checks']} "
        "before it (`report.under_trained`), on the runs' curves up to the step their metrics "
        "come from; also when it has too few checks to tell.",
        "- caveat *incomplete*: a condition of the claim has runs of the design that are not "
        "finished (missing, failed or still training); its numbers come from the finished ones.",
        "- caveat *not segmented here, unlike the paper*: a condition of the claim that has not "
        "segmented (as above) while its paper median is above the same bound: its verdicts "
        "compare a condition that has not started to segment, which at a short budget looks "
        "the same as one that never will.",
        "",
        markdown_table(findings),
    ])


def _curves_section(histories: pd.DataFrame, curves: pd.DataFrame, claim_curves: pd.DataFrame,
                    rules: Mapping[str, Any], written: Mapping[str, Path]) -> str:
    head = "## Learning curves\n\n"
    if histories.empty:
        return head + "No run folder with a `history.csv` was found: no curves.\n"
    moving = still_moving(claim_curves, rules["under_trained"])
    states = histories.drop_duplicates(["dataset", "condition", "seed"])["state"].value_counts()
    lines = [
        f"![learning curves]({written['learning_curves'].name})",
        "",
        "Runs drawn: " + ", ".join(f"{n} {state}" for state, n in states.items())
        + ". The medians are over the finished ok runs (a run that stopped earlier keeps its "
        "last value); all checks are in `curves.csv`.",
        "",
        ("No run has finished: nothing to judge yet." if claim_curves.empty else
         "Still moving at the end (may be under-trained): "
         + ("; ".join(f"{d}: {why}" for (d, _), why in moving.items()) if moving else "none")
         + "."),
        "",
    ]
    for dataset, rows in curves.groupby("dataset", sort=False):
        table = rows.pivot_table(index="step", columns="condition", values="fg_ari_median",
                                 sort=False)
        mse = rows.pivot_table(index="step", columns="condition", values="mse_median",
                               sort=False)
        steps = table.index.to_numpy()
        keep = steps[np.unique(np.linspace(0, len(steps) - 1, min(len(steps), 10)).round()
                               .astype(int))]
        shown = pd.DataFrame({"step": [f"{int(s):,}" for s in keep]})
        for condition in table.columns:
            shown[f"{condition} FG-ARI"] = [format_number(table.loc[s, condition]) for s in keep]
            shown[f"{condition} MSE"] = [f"{mse.loc[s, condition]:.4g}" for s in keep]
        lines += [f"Medians at the checks, {dataset}"
                  + (f" ({len(keep)} of {len(steps)} checks)" if len(keep) < len(steps) else "")
                  + ":", "", markdown_table(shown)]
    return head + "\n".join(lines)


def _file_key(kind: str, *parts: str) -> str:
    """A file-name-safe key such as ``paired_pairs`` or ``cd_omnibus_objects_room``."""
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", "_".join([kind, *parts]))


def _cd_figures(posthoc: pd.DataFrame, out: Path, written: dict[str, Path]) -> None:
    """One critical-difference diagram per post-hoc family (dataset x test x comparison)."""
    for index, ((dataset, test, comparison), pairs) in enumerate(
        posthoc.groupby(["dataset", "test", "comparison"], sort=False)
    ):
        ranks = dict(zip(pairs["first"], pairs["mean_rank_first"], strict=True))
        ranks.update(zip(pairs["second"], pairs["mean_rank_second"], strict=True))
        key = _file_key("cd", test, dataset)
        key = key if key not in written else f"{key}_{index}"
        omnibus = pairs["omnibus_p"].iloc[0]
        written[key] = figures.cd_diagram(
            ranks, float(pairs["cd"].iloc[0]), out / f"{key}.png",
            f"{dataset} / {test} ({comparison}): Nemenyi CD at alpha "
            f"{pairs['alpha'].iloc[0]:g}; Friedman p = {format_p(omnibus)}",
        )  # fmt: skip


def _header(spec: Mapping[str, Any], title: str, df: pd.DataFrame,
            datasets: list[str]) -> str:
    """What ran, read from the runs (results.csv's settings and machine columns) and the command
    the runner recorded; then the profile's own description, as its author's intent."""
    profile = spec.get("profile")
    lines = [f"# {title}", "", f"Spec `{spec.get('name', '?')}`, profile `{profile or 'none'}`"
             + (" (the paper's settings)." if profile == "paper" else
                " (not the paper's settings).")]
    if spec.get("command"):
        overrides = spec.get("overrides") or []
        lines += ["", f"Command: `{spec['command']}`; overrides of the spec: "
                  + (", ".join(f"`{o}`" for o in overrides) if overrides else "none") + "."]
    ran = df[df["status"].isin(["ok", "failed"])]
    if ran.empty:
        lines += ["", "No run has finished: nothing is known of what ran."]
    elif not any(column.startswith("config.") for column in ran.columns):
        lines += ["", "The runs' records hold no settings (`config.*` columns: results.csv written "
                  "before monetk 0.4), so what ran is known only from the profile's description "
                  f"below; {len(ran)} finished runs, seeds "
                  f"{_seed_ranges(sorted(int(s) for s in ran['seed'].unique()))}, steps "
                  f"{_ran_row('', ran)['steps (max; reached)'].split('; ')[1]}."]
    else:
        rows = [_ran_row(d, ran[ran["dataset"] == d]) for d in datasets
                if (ran["dataset"] == d).any()]
        lines += ["", "What ran (from the finished runs' records):", "",
                  markdown_table(pd.DataFrame(rows)).rstrip(), "",
                  "Software and machines: " + _distinct(ran, "monetk", "monetk ") + "; "
                  + _distinct(ran, "machine") + "; " + _distinct(ran, "threads", "threads: ")
                  + "; " + _distinct(ran, "cpu_kernels", "torch CPU kernels: ") + "."]
    description = spec.get("profile_description")
    if description:
        lines += ["", f"The profile's description (its author's intent): {description}"]
    return "\n".join(lines) + "\n"


def _ran_row(dataset: str, runs: pd.DataFrame) -> dict[str, str]:
    """One dataset's effective settings over its finished runs (a range where they differ)."""
    def values(column: str) -> str:
        if column not in runs.columns:
            return "not recorded"
        found = list(dict.fromkeys(_plain(v) for v in runs[column] if not pd.isna(v)))
        return " / ".join(found) if found else "not recorded"

    steps = (pd.to_numeric(runs["steps"], errors="coerce").dropna() if "steps" in runs.columns
             else pd.Series(dtype=float))
    reached = (f"{int(steps.min()):,}" + (f"-{int(steps.max()):,}" if steps.max() > steps.min()
                                          else "")) if len(steps) else "?"
    seeds = sorted(int(s) for s in runs["seed"].unique())
    image = values("config.image_size")
    return {"dataset": dataset, "image": image + (" px" if image != "not recorded" else ""),
            "K": values("config.num_slots"),
            "steps (max; reached)": f"{values('config.max_steps')}; {reached}",
            "checks every": values("config.check_every"),
            "batch": values("config.batch_size"),
            "optimiser (lr)": _schedules(runs),
            "objects": f"{values('config.min_objects')}-{values('config.max_objects')}",
            "eval images": values("config.num_eval"),
            "data": values("config.data_source") + (
                f" ({values('config.data_path')})"
                if values("config.data_path") not in ("not recorded", "nan") else ""),
            "seeds": f"{_seed_ranges(seeds)} ({len(seeds)})"}


def _plain(value: Any) -> str:
    """A recorded setting as written, a whole number with thousands separators ("10,000"),
    also one read back as a float (a column with gaps: no ".0")."""
    whole = isinstance(value, numbers.Integral) or (isinstance(value, float) and value.is_integer())
    return f"{int(value):,}" if whole and not isinstance(value, bool) else str(value)


_SCHEDULE_COLUMNS = ["config.optimizer", "config.learning_rate", "config.warmup_steps",
                     "config.lr_decay", "config.lr_final_ratio"]


def _schedules(runs: pd.DataFrame) -> str:
    """Each distinct optimiser schedule of the runs, as "adam (0.001)" or "adam (0.001, 500
    warm-up steps, cosine to x0.1)", joined by " / " where conditions differ."""
    present = [c for c in _SCHEDULE_COLUMNS if c in runs.columns]
    if not present:
        return "not recorded (not recorded)"
    combos = runs[present].astype(object).where(runs[present].notna(), None).drop_duplicates()
    return " / ".join(_schedule(row) for row in combos.to_dict("records"))


def _schedule(row: Mapping[str, Any]) -> str:
    def value(column: str) -> str:
        found = row.get(column)
        return "not recorded" if found is None else _plain(found)

    parts = [value("config.learning_rate")]
    warmup = value("config.warmup_steps")
    if warmup not in ("0", "not recorded"):
        parts.append(f"{warmup} warm-up steps")
    decay = value("config.lr_decay")
    if decay not in ("none", "not recorded"):
        parts.append(f"{decay} to x{value('config.lr_final_ratio')}")
    return f"{value('config.optimizer')} ({', '.join(parts)})"


def _seed_ranges(seeds: list[int]) -> str:
    parts, start = [], None
    for i, seed in enumerate(seeds):
        start = seed if start is None else start
        if i + 1 == len(seeds) or seeds[i + 1] != seed + 1:
            parts.append(f"{start}-{seed}" if seed > start else f"{seed}")
            start = None
    return ",".join(parts)


def _distinct(runs: pd.DataFrame, column: str, prefix: str = "") -> str:
    if column not in runs.columns or runs[column].isna().all():
        return f"{prefix}not recorded"
    counts = runs[column].dropna().map(_plain).value_counts()
    if len(counts) == 1:
        return f"{prefix}{counts.index[0]}"
    return prefix + ", ".join(f"{value} ({n} run{'s' if n > 1 else ''})"
                              for value, n in counts.items())


def _what_was_run(
    spec: Mapping[str, Any], datasets: list[str], conditions: list[str], df: pd.DataFrame
) -> str:
    spec_datasets = spec.get("datasets") or {}
    default_data = (spec.get("defaults") or {}).get("data") or {}
    sources = []
    for d in datasets:
        data = (spec_datasets.get(d) or {}).get("data") or {}
        source = data.get("source") or default_data.get("source") or "monetk default (not in spec)"
        path = data.get("path") or default_data.get("path")
        sources.append({"dataset": d, "data source": source + (f" ({path})" if path else "")})
    spec_conditions = spec.get("conditions") or {}
    settings = [
        {"condition": c, "settings": _flatten(spec_conditions.get(c) or {}) or "-"}
        for c in conditions
    ]
    seeds = spec.get("seeds", "not in spec")
    continued = spec.get("continue_seeds")
    return "\n".join(
        [
            "## What was run",
            "",
            markdown_table(pd.DataFrame(sources)),
            markdown_table(pd.DataFrame(settings)),
            f"Seeds: `{seeds}`"
            + (f"; trained past the stopping rule: `{continued}`" if continued else "")
            + f". The results have {len(df)} rows (dataset x condition x seed).",
            "",
        ]
    )


def _flatten(node: Mapping[str, Any], prefix: str = "") -> str:
    parts = []
    for key, value in node.items():
        if isinstance(value, Mapping) and "per_dataset" in value:
            picks = ", ".join(f"{d}: {v}" for d, v in value["per_dataset"].items())
            parts.append(f"{prefix}{key} = ({picks})")
        elif isinstance(value, Mapping):
            parts.append(_flatten(value, f"{prefix}{key}."))
        else:
            parts.append(f"{prefix}{key} = {value}")
    return "; ".join(parts)


def _runs(df: pd.DataFrame, datasets: list[str], conditions: list[str]) -> str:
    lines = ["## Runs", "", markdown_table(status_counts(df, datasets, conditions))]
    bad = df[df["status"] == "failed"]
    for r in bad.to_dict("records"):
        reason = r.get("reason") if isinstance(r.get("reason"), str) else "no reason recorded"
        lines.append(
            f"- failed: {r['dataset']}, condition {r['condition']}, seed {r['seed']}: {reason}"
        )
    lines += _machines(df)
    return "\n".join(lines) + "\n"


def _machines(df: pd.DataFrame) -> list[str]:
    """A note when the runs were trained on more than one machine type or thread count."""
    ran = df[df["status"].isin(["ok", "failed"])]
    kinds = [c for c in ("machine", "threads") if c in ran.columns]
    if not kinds:
        return []
    combos = ran[kinds].dropna(how="all").astype(str).drop_duplicates()
    if len(combos) <= 1:
        return []
    counts = ran[kinds].astype(str).value_counts()
    listed = "; ".join(f"{' / '.join(key if isinstance(key, tuple) else (key,))}: {n} runs"
                       for key, n in counts.items())
    return ["", f"**Mixed machines.** These runs were trained on {len(combos)} machine types or "
            f"thread counts ({listed}). A seed's numbers agree bit for bit only on the same "
            "machine type and thread count; across them they agree in distribution only."]


def _summary_section(main: pd.DataFrame, other: pd.DataFrame | None) -> str:
    lines = ["## Segmentation performance", "", "Over the ok runs of each condition.", ""]
    lines.append(markdown_table(main))
    if other is not None:
        lines += ["Other metrics:", "", markdown_table(other)]
    return "\n".join(lines)


def _figure_lines(written: Mapping[str, Path], baseline: bool, paper: bool) -> str:
    boxes = [f"![{k}]({path.name})" for k, path in written.items() if k.startswith("boxplot_")]
    note = "Boxes: quartiles and median of the ok runs; whiskers 1.5 IQR; open circles: outliers"
    note += "; dashed line: median FG-ARI of the trivial segmentation" if baseline else ""
    note += "; red diamonds: the paper's medians" if paper else ""
    paired = [f"![{k}]({path.name})" for k, path in written.items() if k.startswith("paired_")]
    lines = [*boxes, note + "."]
    if paired:
        lines += [
            "Per seed, the same runs paired as each declared test pairs them (one line per seed "
            "with every condition of the comparison ok; solid blue: the first condition higher, "
            "dashed orange: not higher; black: the medians):",
            *paired,
        ]
    lines.append("Every figure is also in this folder as a PDF (vector, same name, `.pdf`); the "
                 "PNGs are 200 dpi.")
    return "\n\n".join(lines) + "\n"


def _tests_section(tests: pd.DataFrame, shown: pd.DataFrame) -> str:
    if tests.empty:
        return "## Statistical tests\n\nThe spec declares no tests.\n"
    families = dict.fromkeys(
        f"- `{r['test']}` ({r['dataset']}): {r['rule']}"
        + (f". {r['description']}" if r["description"] else "")
        for _, r in tests.iterrows()
    )
    details = [
        f"- `{r['test']}` ({r['dataset']}), {r['comparison']}: "
        + (f"method: {r['method']}; " if r["method"] else "")
        + f"{r['assumptions']}; {r['n_dropped']:g} block(s) dropped for missing or failed runs"
        for _, r in tests.iterrows()
        if not r["note"]
    ]
    variants = dict.fromkeys(f"- `{r['test']}`: {r['variant']}" for _, r in tests.iterrows())
    notes = [f"- {r['note']}" for _, r in tests.iterrows() if r["note"]]
    lines = [
        "## Statistical tests",
        "",
        markdown_table(shown),
        "Wilcoxon: W = min(W+, W-) (two-sided), differences first minus second; n = differences "
        "ranked (zero_method wilcox drops the zero differences first); z = normal deviate where "
        "the normal approximation is used, positive when the first condition is higher; HL = "
        "Hodges-Lehmann shift (median of the Walsh averages of all pairs, zeros included) with its "
        "95% CI; r = (W+ - W-)/(W+ + W-). Friedman: mean ranks per condition or level (higher = "
        "higher metric); Kendall's W = chi2 / (n (k - 1)); with k = 2 levels the Friedman test is "
        "the two-sided sign test (normal approximation, no continuity correction) and z = (n+ - "
        "n-)/sqrt(n+ + n-). p-values are survival functions, stored as full floats in tests.csv.",
        "",
        "Families and decision rules (m = the comparisons the spec declares; one that cannot be "
        "computed stays in its family, is never rejected, and the others are adjusted for the "
        "declared m):",
        "",
        *families,
        "",
        *(["Assumptions, method used and what was left out, per comparison:", "", *details, ""]
          if details else ["No comparison was computed, so no assumptions to check.", ""]),
        "Test variants:",
        "",
        *variants,
        "",
    ]
    if notes:
        lines += ["Not computed:", "", *notes, ""]
    dropped: dict[str, list[str]] = {}
    for text in tests["dropped"]:
        for message in text.split(DROPPED_SEPARATOR) if text else []:
            run, _, test = message.partition("; block dropped from test ")
            dropped.setdefault(run, [])
            if test not in dropped[run]:
                dropped[run].append(test)
    if dropped:
        lines += ["Blocks dropped (a run missing or failed):", ""]
        lines += [f"- {run}; dropped from {', '.join(t)}" for run, t in dropped.items()]
        lines.append("")
    return "\n".join(lines)


def _posthoc_section(posthoc: pd.DataFrame, written: Mapping[str, Path]) -> str:
    head = "## Post-hoc tests after Friedman (k >= 3)\n\n"
    if posthoc.empty:
        return head + "No Friedman comparison with k >= 3 was computed.\n"
    diagrams = [f"![{k}]({path.name})" for k, path in written.items() if k.startswith("cd_")]
    return head + "\n".join(
        [
            "All pairs of the omnibus test's conditions. Nemenyi: mean-rank difference against "
            "the studentized range (family-wise error controlled over the m pairs by itself; "
            "different when |difference| >= CD, Demsar 2006). Conover: t on rank sums with the "
            "residual rank variance, df = (n-1)(k-1), then Holm over the m pairs. Read them only "
            "where the omnibus test rejects (its p is in the diagram's title).",
            "",
            markdown_table(posthoc_display(posthoc)),
            "Critical-difference diagrams (mean ranks, higher = higher metric; a thick bar joins "
            "conditions the Nemenyi test does not separate):",
            "",
            "\n\n".join(diagrams),
            "",
        ]
    )


def _stop_section(stop: pd.DataFrame) -> str:
    head = "## Effect of the stopping rule (Table 1)\n\n"
    if stop.empty:
        return head + "No run was trained past the stopping rule (`continued`), so no Table 1.\n"
    shown = stop.assign(
        difference=stop["difference"].map(lambda v: f"{v:.2e}"),
        ratio_percent=stop["ratio_percent"].map(lambda v: format_number(v)),
    )
    return head + (
        "Mean over the continued seeds of (metric at max_steps - metric when the rule fired), and "
        "as % of the condition's median metric.\n\n" + markdown_table(shown)
    )


def _mask_figures(
    df: pd.DataFrame,
    datasets: list[str],
    conditions: list[str],
    results_dir: str | Path | None,
    out: Path,
    written: dict[str, Path],
) -> list[str]:
    lines = []
    for dataset in datasets:
        for condition in conditions:
            seed = figures.median_seed(df, dataset, condition) if "fg_ari" in df.columns else None
            if seed is None:
                lines.append(f"- {dataset} / {condition}: no ok run, figure skipped.")
                continue
            row = df[(df["dataset"] == dataset) & (df["condition"] == condition)]
            row = row[row["seed"] == seed].iloc[0]
            run_dir = row.get("run_dir")
            if results_dir is None or not isinstance(run_dir, str):
                lines.append(f"- {dataset} / {condition} (seed {seed}): no run directory known.")
                continue
            npz = Path(results_dir) / run_dir / "attention_examples.npz"
            if not npz.is_file():
                lines.append(f"- {dataset} / {condition} (seed {seed}): {npz} absent, skipped.")
                continue
            name = re.sub(r"[^A-Za-z0-9_.+-]", "_", f"masks_{dataset}_{condition}")
            title = f"{dataset} / {condition} / seed {seed} (FG-ARI {row['fg_ari']:.3f})"
            arrays = figures.load_attention_examples(npz)
            written[name] = figures.attention_figure(arrays, title, out / f"{name}.png")
            lines.append(f"![{dataset} {condition}]({name}.png)")
    return lines
