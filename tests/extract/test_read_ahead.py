"""extract.read_ahead: the next batch decodes while the current one is encoded, in order."""

from __future__ import annotations

import threading

import pytest

from extract.read_ahead import read_ahead


def test_results_come_in_task_order() -> None:
    assert list(read_ahead(lambda i=i: i * i for i in range(7))) == [i * i for i in range(7)]
    assert list(read_ahead([])) == []


def test_next_task_runs_while_the_consumer_holds_the_current_result() -> None:
    second_started = threading.Event()

    def second() -> str:
        second_started.set()
        return "b"

    it = read_ahead([lambda: "a", second])
    assert next(it) == "a"
    # the consumer has not asked for "b" yet, but its task is already running
    assert second_started.wait(timeout=10)
    assert list(it) == ["b"]


def test_an_exception_reaches_the_consumer_at_its_own_item() -> None:
    def boom() -> int:
        raise OSError("disk gone")

    it = read_ahead([lambda: 1, boom, lambda: 3])
    assert next(it) == 1
    with pytest.raises(OSError, match="disk gone"):
        next(it)


def test_closing_early_runs_at_most_one_task_ahead() -> None:
    ran: list[int] = []

    def task(i: int):
        return lambda: ran.append(i) or i

    it = read_ahead(task(i) for i in range(100))
    assert next(it) == 0
    it.close()  # waits for the one task in flight, starts no other
    assert ran == [0, 1]
