"""Loading results.csv and pairing runs by seed."""

from pathlib import Path

import pandas as pd
import pytest

from analysis.results import (
    BlockDroppedWarning,
    load_results,
    paired_values,
    parameter_columns,
    status_counts,
)

FIXTURES = Path(__file__).parent / "fixtures"


def test_condition_names_stay_text():
    df = load_results(FIXTURES / "section3_1_results.csv")
    assert set(df["condition"]) == {"11", "01", "10", "00"}
    assert df["seed"].dtype.kind == "i" and df["continued"].dtype == bool
    assert df["continued"].sum() == 16  # seeds 1-2 x 4 conditions x 2 datasets


def test_paired_values_drops_the_failed_seed_with_a_warning():
    df = load_results(FIXTURES / "section3_1_results.csv")
    with pytest.warns(
        BlockDroppedWarning, match="objects_room, condition '10', seed 7: run failed"
    ):
        wide, dropped = paired_values(df, "objects_room", ["11", "10"], "fg_ari", "t")
    assert 7 not in wide.index and len(wide) == 19
    assert list(wide.columns) == ["11", "10"]
    assert dropped == [
        "objects_room, condition '10', seed 7: run failed; block dropped from test t"
    ]
    row = df[(df["dataset"] == "objects_room") & (df["condition"] == "11") & (df["seed"] == 3)]
    assert wide.loc[3, "11"] == row["fg_ari"].item()


def test_paired_values_names_absent_runs():
    df = pd.DataFrame(
        {
            "dataset": ["d"] * 3,
            "condition": ["a", "a", "b"],
            "seed": [1, 2, 1],
            "status": ["ok"] * 3,
            "fg_ari": [0.1, 0.2, 0.3],
        }
    )
    with pytest.warns(BlockDroppedWarning, match="d, condition 'b', seed 2: run absent"):
        wide, _ = paired_values(load_results(df), "d", ["a", "b"], "fg_ari")
    assert list(wide.index) == [1]


def test_status_counts_in_spec_order():
    df = load_results(FIXTURES / "section3_1_results.csv")
    counts = status_counts(df, ["objects_room"], ["11", "10"])
    assert counts.to_dict("records") == [
        {
            "dataset": "objects_room",
            "condition": "11",
            "ok": 20,
            "failed": 0,
            "missing": 0,
            "total": 20,
        },
        {
            "dataset": "objects_room",
            "condition": "10",
            "ok": 19,
            "failed": 1,
            "missing": 0,
            "total": 20,
        },
    ]


def test_parameter_columns_include_leaves_the_conditions_set():
    conditions = {
        "A": {"loss": {"gamma": {"per_dataset": {"x": 0.1}}}, "train": {"learning_rate": 1e-3}},
        "B": {"model": {"num_slots": 7}},
    }
    names = parameter_columns(conditions)
    assert names[:6] == ["reconstruction", "mask", "latent", "beta", "gamma", "sigmas"]
    assert names[6:] == ["learning_rate", "num_slots"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"status": "done"},
            r"results.status: \['done'\] not allowed "
            r"\(allowed: ok, failed, missing, not selected\)",
        ),
        ({"seed": 1}, "duplicate row"),
    ],
)
def test_bad_results_are_refused(change, message):
    df = pd.DataFrame({"dataset": ["d", "d"], "condition": ["a", "a"], "seed": [1, 2]})
    df["status"] = "ok"
    for column, value in change.items():
        df[column] = value
    with pytest.raises(ValueError, match=message):
        load_results(df)


def test_missing_column_is_named():
    with pytest.raises(ValueError, match="missing column"):
        load_results(pd.DataFrame({"dataset": ["d"], "condition": ["a"], "seed": [1]}))


def test_a_table_mixing_numerics_versions_is_refused_and_one_version_is_not():
    df = pd.DataFrame({"dataset": ["d"] * 3, "condition": ["a"] * 3, "seed": [1, 2, 3],
                       "status": ["ok", "ok", "missing"], "numerics": [2, 3, None]})
    with pytest.raises(ValueError, match=r"results.numerics: .*\(2: 1 runs, 3: 1 runs\)"):
        load_results(df)
    df.loc[0, "numerics"] = 3
    assert len(load_results(df)) == 3


def test_not_selected_runs_are_counted_apart_from_missing_ones():
    from analysis.results import status_counts

    df = load_results(pd.DataFrame([
        {"dataset": "d", "condition": "A", "seed": 1, "status": "ok"},
        {"dataset": "d", "condition": "A", "seed": 2, "status": "missing"},
        {"dataset": "e", "condition": "A", "seed": 1, "status": "not selected"},
    ]))
    counts = status_counts(df, ["d", "e"], ["A"]).set_index("dataset")
    assert counts.loc["d", ["ok", "missing", "not selected", "total"]].tolist() == [1, 1, 0, 2]
    assert counts.loc["e", ["missing", "not selected"]].tolist() == [0, 1]
    assert "not selected" not in status_counts(df[df["dataset"] == "d"], ["d"], ["A"]).columns
