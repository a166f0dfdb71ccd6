"""joblib's "A worker stopped while some jobs were given to the executor" is explained once."""

from __future__ import annotations

import logging
import threading
import warnings

from classify.run.backends import WORKER_RESTART, explained_worker_restarts


def test_worker_restart_warning_is_explained_once_and_others_pass_through(caplog):
    def loky_thread() -> None:  # loky warns from its executor-manager thread
        for _ in range(3):
            warnings.warn(WORKER_RESTART + ". This can be caused by a too short worker "
                          "timeout or by a memory leak.", UserWarning, stacklevel=1)

    with warnings.catch_warnings(record=True) as outer:
        warnings.simplefilter("always")
        with caplog.at_level(logging.INFO, logger="classify.run.backends"):
            with explained_worker_restarts() as explained:
                t = threading.Thread(target=loky_thread)
                t.start()
                t.join()
                warnings.warn("something else", RuntimeWarning, stacklevel=1)
                warnings.warn("something else", RuntimeWarning, stacklevel=1)
    assert [str(w.message) for w in outer] == ["something else"]
    assert len(explained) == 1 and "3 time(s)" in explained[0] and "nothing was lost" in explained[0]
    assert "memory" in caplog.text
