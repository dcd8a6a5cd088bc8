"""map_tuples and submit_tuples: worker processes give the same results, in order, as a
plain loop."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date
from functools import partial

import pytest

from linkage import parallel
from linkage.ingest.field_parts import date_parts as _date_parts
from linkage.ingest.field_parts import phone_parts as _phone_parts
from linkage.parallel import map_tuples, submit_tuples

PHONES = [
    ("070-123 45 67", "SE"),
    ("+46 70 123 45 67", None),
    ("0151 23456789", "DE"),
    ("not a phone", "SE"),
    ("07700 900123", "GB"),
    ("22 12 34 56", "NO"),
]
DATES = ["1980-02-01", "1980-02-30", "garbage", "1880-01-01", "2001-12-31"]


@pytest.fixture(autouse=True)
def stop_workers() -> Iterator[None]:
    """Each test starts from no pool and leaves none behind."""
    parallel.shutdown()
    yield
    parallel.shutdown()


def test_workers_give_the_serial_results_in_order() -> None:
    items = PHONES * 50
    serial = map_tuples(_phone_parts, items, max_workers=1)
    assert serial == [_phone_parts(*item) for item in items]
    assert map_tuples(_phone_parts, items, min_items=1, min_seconds=0, max_workers=2) == serial


def test_a_partial_of_a_module_level_function_runs_in_workers() -> None:
    dob_parts = partial(
        _date_parts, fmt="%Y-%m-%d", earliest=date(1900, 1, 1), latest=date(2025, 1, 1)
    )
    items = [(raw,) for raw in DATES * 40]
    expected = [dob_parts(*item) for item in items]
    assert map_tuples(dob_parts, items, min_items=1, min_seconds=0, max_workers=2) == expected
    assert expected[:4] == [
        (date(1980, 2, 1), None),
        (None, "impossible_date"),
        (None, "unparseable_date"),
        (None, "date_out_of_range"),
    ]


def test_large_inputs_run_in_other_processes_and_small_ones_here() -> None:
    few = map_tuples(os.getpid, [()] * 100, min_items=1000, min_seconds=0, max_workers=2)
    assert set(few) == {os.getpid()}
    many = map_tuples(os.getpid, [()] * 1000, min_items=1000, min_seconds=0, max_workers=2)
    assert os.getpid() not in set(many)


def test_the_first_items_are_timed_here_to_decide_whether_workers_pay() -> None:
    items = [()] * (parallel.SAMPLE_ITEMS * 3)
    cheap = map_tuples(os.getpid, items, min_items=1, min_seconds=60, max_workers=2)
    assert set(cheap) == {os.getpid()}
    costly = map_tuples(os.getpid, items, min_items=1, min_seconds=1e-9, max_workers=2)
    sample, rest = costly[: parallel.SAMPLE_ITEMS], costly[parallel.SAMPLE_ITEMS :]
    assert set(sample) == {os.getpid()}
    assert len(rest) == len(items) - parallel.SAMPLE_ITEMS and os.getpid() not in set(rest)


def test_one_worker_runs_here_so_closures_are_fine() -> None:
    offset = 3
    assert map_tuples(lambda x: x + offset, [(1,), (2,)], min_items=1, max_workers=1) == [4, 5]


def test_an_error_in_a_worker_reaches_the_caller() -> None:
    items = [(str(n),) for n in range(200)] + [("x",)]
    with pytest.raises(ValueError, match="invalid literal for int"):
        map_tuples(int, items, min_items=1, min_seconds=0, max_workers=2)
    # The pool survives a failing function.
    assert map_tuples(int, items[:-1], min_items=1, min_seconds=0, max_workers=2) == list(
        range(200)
    )


def test_empty_input_gives_empty_output() -> None:
    assert map_tuples(int, [], min_items=0, min_seconds=0, max_workers=2) == []


def test_submitted_maps_run_in_workers_while_small_ones_wait_for_their_result() -> None:
    large = submit_tuples(os.getpid, [()] * 1000, min_items=1000, min_seconds=0, max_workers=2)
    small = submit_tuples(os.getpid, [()] * 10, min_items=1000, min_seconds=0, max_workers=2)
    assert (large.in_process, small.in_process) == (False, True)
    phones = submit_tuples(_phone_parts, PHONES * 50, min_items=1, min_seconds=0, max_workers=2)
    assert set(small.result()) == {os.getpid()}
    assert os.getpid() not in set(large.result())
    assert len(large.result()) == 1000  # asking twice gives the same results
    assert phones.result() == [_phone_parts(*item) for item in PHONES * 50]


def test_a_failing_function_raises_when_its_results_are_asked_for() -> None:
    pending = submit_tuples(divmod, [(1, 0)] * 50, min_items=1, min_seconds=0, max_workers=2)
    with pytest.raises(ZeroDivisionError):
        pending.result()
