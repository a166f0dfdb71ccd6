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
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

from pipeline.errors import ConfigError

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install -c constraints.txt 'cxr-fusion-pipeline[dask]'"

#: The start of the UserWarning joblib's process pool (loky) gives when it replaces a worker.
WORKER_RESTART = "A worker stopped while some jobs were given to the executor"


@contextlib.contextmanager
def explained_worker_restarts() -> Iterator[list[str]]:
    """Turn joblib's "A worker stopped while some jobs were given to the executor" UserWarning
    into one INFO line that says what happened; yields the list of explanations logged.

    joblib's local process pool (loky) checks each worker's memory between tasks and shuts a
    worker down once it has grown by more than 300 MB since its first task (loky's leak guard,
    ``_MAX_MEMORY_LEAK_SIZE``); fitting gradient boosting or the attention fusion on a few
    thousand samples gets there. loky starts a new worker and hands it the queued tasks, so
    no task is lost and results are unchanged, but with tasks queued it warns as above. Every
    other warning raised inside the context is re-issued once when it ends.
    """
    explained: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield explained
    restarts = [w for w in caught if str(w.message).startswith(WORKER_RESTART)]
    others = {(w.category, str(w.message)): w for w in caught
              if not str(w.message).startswith(WORKER_RESTART)}
    for w in others.values():  # each once, as the default filter would show them
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
    if restarts:
        explained.append(
            f"joblib replaced a worker process {len(restarts)} time(s): its memory had grown by "
            "more than 300 MB (loky's leak guard); the queued tasks went to a new worker, "
            "nothing was lost")
        log.info("%s", explained[-1])


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

