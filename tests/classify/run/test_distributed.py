"""The classify grid on a Dask cluster (joblib's dask backend) gives the local results."""

from __future__ import annotations

import os
import sys

import joblib
import pandas as pd
import pytest

from classify.run.backends import dask_client, joblib_backend
from pipeline.errors import ConfigError


def _scores(result) -> pd.DataFrame:
    df = pd.concat([c.scores for c in result.cells], ignore_index=True)
    return df.sort_values(["cell_key", "repeat", "fold", "metric"]).reset_index(drop=True)


def _oof(result) -> pd.DataFrame:
    df = pd.concat([c.oof.assign(cell=c.key) for c in result.cells], ignore_index=True)
    return df.sort_values(["cell", "repeat", "sample_id"]).reset_index(drop=True)


def test_no_scheduler_is_a_no_op() -> None:
    with joblib_backend(None) as client:
        assert client is None
        # still the default local backend
        assert joblib.parallel.get_active_backend()[0].__class__.__name__ != "DaskDistributedBackend"


def test_missing_dask_is_a_config_error(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # makes `import distributed` fail
    with pytest.raises(ConfigError, match=r"\[dask\]"):
        with joblib_backend("tcp://127.0.0.1:8786"):
            pass


@pytest.mark.slow  # > 0.9 s: keeps make test-fast under 60 s
def test_bad_or_unreachable_scheduler_is_a_config_error() -> None:
    pytest.importorskip("distributed")
    with pytest.raises(ConfigError, match="scheduler address"):
        with dask_client(""):
            pass
    with pytest.raises(ConfigError, match="cannot reach the Dask scheduler"):
        with dask_client("tcp://127.0.0.1:9", timeout="1s"):
            pass


@pytest.mark.slow
def test_dask_grid_equals_local_grid(toy_project, tmp_path) -> None:
    pytest.importorskip("distributed")
    from distributed import Client, LocalCluster, get_task_stream

    from classify.config.experiment import experiment_from_dict
    from classify.run.benchmark import run_benchmark, run_benchmark_on_dask

    base = toy_project["config"](classifiers=["logistic", "knn"], cv={"folds": 3, "repeats": 1,
                                                                       "seed": 0})
    local = run_benchmark(experiment_from_dict({**base, "results_root": str(tmp_path / "local")}),
                          n_jobs=1)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        with joblib_backend(client):
            backend = joblib.parallel.get_active_backend()[0]
            assert backend.__class__.__name__ == "DaskDistributedBackend"
        with get_task_stream(client) as stream:
            remote = run_benchmark_on_dask(
                experiment_from_dict({**base, "results_root": str(tmp_path / "dask")}), client)
    # the (cell, split) tasks ran on the cluster (joblib may batch several per Dask task)
    assert len(stream.data) >= 1
    assert remote.n_computed == local.n_computed == len(local.cells) == 6
    assert [c.key for c in remote.cells] == [c.key for c in local.cells]
    pd.testing.assert_frame_equal(_scores(remote), _scores(local))
    pd.testing.assert_frame_equal(_oof(remote), _oof(local))


@pytest.mark.slow  # starts a LocalCluster of worker processes (~5 s)
def test_dask_grid_on_worker_processes_equals_local_grid(toy_project, tmp_path) -> None:
    """Worker PROCESSES (not threads, as a real cluster has): each task's arrays are pickled
    to another interpreter and back; the scores must not move by one bit."""
    pytest.importorskip("distributed")
    from distributed import Client, LocalCluster, get_task_stream

    from classify.config.experiment import experiment_from_dict
    from classify.run.benchmark import run_benchmark, run_benchmark_on_dask

    base = toy_project["config"](classifiers=["logistic", "knn", "random_forest"],
                                 cv={"folds": 3, "repeats": 1, "seed": 0})
    local = run_benchmark(experiment_from_dict({**base, "results_root": str(tmp_path / "local")}),
                          n_jobs=1)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        pids = client.run(os.getpid)  # worker address -> its process id
        with get_task_stream(client) as stream:
            remote = run_benchmark_on_dask(
                experiment_from_dict({**base, "results_root": str(tmp_path / "dask")}), client)
    assert len(set(pids.values())) == 2 and os.getpid() not in pids.values()
    assert stream.data and {t["worker"] for t in stream.data} <= set(pids)  # ran in them
    assert remote.n_computed == local.n_computed == len(local.cells) == 9
    assert [c.key for c in remote.cells] == [c.key for c in local.cells]
    pd.testing.assert_frame_equal(_scores(remote), _scores(local))
    pd.testing.assert_frame_equal(_oof(remote), _oof(local))
