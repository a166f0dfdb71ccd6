"""Run the classify grid's (cell x split) tasks on a Dask cluster through joblib.

:func:`classify.run.benchmark.run_benchmark` submits one joblib task per (cell, split)
with ``joblib.Parallel`` and no fixed backend. Inside :func:`joblib_backend` those
tasks go to the Dask cluster instead of local processes::

    with joblib_backend("tcp://10.0.0.5:8786", scatter=[fs.X, fs.y]):
        Parallel(n_jobs=-1)(delayed(classify.run.cell_task.run_split)(...) for ...)

or, for a whole benchmark, :func:`classify.run.benchmark.run_benchmark_on_dask`.
This module never imports :mod:`classify.run.benchmark` (no import cycle).

Results are identical to a local run: every task is seeded and limited to
``threads_per_task`` BLAS threads, and joblib returns results in submission order.
``scatter`` pre-sends the feature matrix and labels to every worker once (otherwise
joblib's Dask backend scatters large arguments lazily, per call). Workers must have
this package importable (same environment); results are written by the driver.

Dask is optional (``pip install -c constraints.txt 'cxr-fusion-pipeline[dask]'``);
nothing here imports it until a scheduler is given.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

from pipeline.errors import ConfigError

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install -c constraints.txt 'cxr-fusion-pipeline[dask]'"


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ConfigError(
            f"a Dask scheduler was given but Dask is not installed; {INSTALL_HINT}, or omit "
            "--scheduler to run on local processes"
        ) from None
    return distributed


@contextlib.contextmanager
def dask_client(scheduler: Any, *, timeout: str = "15s") -> Iterator[Any]:
    """Yield a ``distributed.Client`` for an address (closed on exit) or pass a Client through."""
    distributed = _distributed()
    if isinstance(scheduler, distributed.Client):
        yield scheduler
        return
    if not isinstance(scheduler, str) or not scheduler.strip():
        raise ConfigError(
            f"--scheduler must be a Dask scheduler address such as 'tcp://10.0.0.5:8786', got "
            f"{scheduler!r}"
        )
    try:
        client = distributed.Client(scheduler.strip(), set_as_default=False, timeout=timeout)
    except OSError as exc:
        raise ConfigError(
            f"cannot reach the Dask scheduler at {scheduler!r} ({exc}); start one with "
            "`dask scheduler` plus `dask worker <address> --nthreads 1` per core, or fix "
            "--scheduler"
        ) from exc
    try:
        n = len(client.scheduler_info().get("workers", {}))
        log.info("connected to Dask scheduler %s (%d workers)", scheduler, n)
        yield client
    finally:
        client.close()


@contextlib.contextmanager
def joblib_backend(scheduler: Any = None, *, scatter: Sequence[Any] = ()) -> Iterator[Any]:
    """Route ``joblib.Parallel`` calls without an explicit backend to Dask while active.

    ``scheduler`` None is a no-op (local joblib); otherwise an address or a Client.
    Yields the client (or None).
    """
    if scheduler is None:
        yield None
        return
    import joblib

    with dask_client(scheduler) as client:
        params: dict[str, Any] = {"client": client}
        if scatter:
            params["scatter"] = list(scatter)
        with joblib.parallel_config(backend="dask", **params):
            yield client


def cluster_cores(client: Any) -> int:
    """Total worker threads of a cluster (the useful n_jobs)."""
    return max(1, int(sum(client.nthreads().values())))

