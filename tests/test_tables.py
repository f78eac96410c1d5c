"""Tidy tables of an experiment: Experiment.to_frame and ``avgreward export``."""

import sys

import numpy as np
import pytest

pandas = pytest.importorskip("pandas", reason='needs pip install ".[analysis]"')

from avgreward import SoftmaxActorCritic  # noqa: E402
from avgreward.cli import main as cli  # noqa: E402
from avgreward.experiment import run_experiment  # noqa: E402
from avgreward.extras import MissingExtraError  # noqa: E402

LOOP = "avgreward/LoopMDP-v0"
AGENTS = [SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1, alpha_rbar=0.01),
          SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.5, alpha_rbar=0.01),
          SoftmaxActorCritic(alpha_w=256.0, alpha_theta=16.0, alpha_rbar=1.0)]  # diverges


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    return run_experiment(tmp_path_factory.mktemp("t") / "e", LOOP, AGENTS, 3, 2_000,
                          bin_size=100, workers=1)


def test_one_row_per_run_and_bin_with_the_settings_that_vary(experiment):
    frame = experiment.to_frame()
    assert list(frame.columns) == ["agent_index", "label", "alpha_w", "alpha_theta",
                                   "alpha_rbar", "seed", "status", "step", "reward"]
    ok = frame[frame.status == "ok"]
    assert len(ok) == 2 * 3 * 20
    for i in range(2):
        table = ok[ok.agent_index == i].pivot(index="seed", columns="step", values="reward")
        np.testing.assert_array_equal(table.to_numpy(), experiment.rewards(i))
        np.testing.assert_array_equal(table.columns.to_numpy(), experiment.bin_steps)
    assert set(ok.alpha_theta) == {0.1, 0.5} and ok.label.iloc[0] == experiment.label(0)
    failed = frame[frame.agent_index == 2]
    assert set(failed.status) == {"failed"}  # a diverged run's completed bins are kept
    assert len(failed) == sum(-(-r.steps_done // 100) for r in experiment.failed)


def test_one_row_per_run_with_its_summary(experiment):
    runs = experiment.to_frame("runs", fraction=0.5)
    assert len(runs) == 9
    ok = runs[runs.status == "ok"]
    for i in range(2):
        np.testing.assert_array_equal(ok[ok.agent_index == i].final_performance,
                                      experiment.final_performance(i, 0.5))
    failed = runs[runs.agent_index == 2]
    assert (failed.failure == "divergence").all() and failed.final_performance.isna().all()
    assert (runs.wall_time >= 0).all() and runs.error.notna().sum() == 3
    with pytest.raises(ValueError, match="what must be"):
        experiment.to_frame("seeds")


def test_export_writes_csv_and_parquet_that_read_back(experiment, tmp_path, capsys):
    out = tmp_path / "new" / "bins.csv"
    assert cli(["export", str(experiment.path), "--out", str(out)]) == 0
    assert f"bins.csv: {len(experiment.to_frame()):,} rows x 9 columns" in capsys.readouterr().out
    back = pandas.read_csv(out)
    expected = experiment.to_frame()
    assert back.shape == expected.shape
    np.testing.assert_array_equal(back.reward.to_numpy(), expected.reward.to_numpy())
    pytest.importorskip("pyarrow")
    assert cli(["export", str(experiment.path), "--out", str(tmp_path / "runs.parquet"),
                "--what", "runs", "-q"]) == 0
    pandas.testing.assert_frame_equal(pandas.read_parquet(tmp_path / "runs.parquet"),
                                      experiment.to_frame("runs"))


def test_bad_exports_are_one_line(experiment, tmp_path, capsys, monkeypatch):
    code = cli(["export", str(experiment.path), "--out", str(tmp_path / "t.xlsx")])
    assert code == 2 and ".csv, .csv.gz, .parquet" in capsys.readouterr().err
    code = cli(["export", str(tmp_path / "none"), "--out", str(tmp_path / "t.csv")])
    assert code == 2 and "is not an experiment directory" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(MissingExtraError, match=r'pip install "avgreward\[analysis\]"'):
        experiment.to_frame()
    code = cli(["export", str(experiment.path), "--out", str(tmp_path / "t.csv")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "avgreward[analysis]" in err
