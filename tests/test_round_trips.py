"""Sequential round trips from the emulator's log: what the benchmarks report per phase."""

from __future__ import annotations

import pytest

from dbx_promote.emulator.control import sequential_round_trips


def spans(*pairs: tuple[float, float]) -> list[dict[str, float]]:
    return [{"start": a, "ts": b} for a, b in pairs]


@pytest.mark.parametrize(
    ("log", "expected"),
    [
        ([], 0),
        (spans((0, 1)), 1),
        (spans((0, 1), (1, 2), (2, 3)), 3),
        (spans((0, 1), (0, 1), (0.5, 1.5)), 1),
        (spans((0, 1), (1.5, 2), (1, 3), (3, 4)), 3),
        (spans(*[(i * 0.3, i * 0.3 + 1) for i in range(10)]), 3),  # a paced batch
    ],
)
def test_longest_chain_of_requests_each_sent_after_the_last_answer(log, expected):
    assert sequential_round_trips(log) == expected


def test_two_calls_one_after_the_other_are_two_round_trips(workspace_client, emulator):
    workspace_client.workspace.get_status("/Shared")
    workspace_client.workspace.get_status("/Users")
    log = emulator.request_log()
    assert all(e["start"] <= e["ts"] for e in log)
    assert sequential_round_trips(log) == 2
