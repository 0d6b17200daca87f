"""Bounded parallel requests that stop at the first failure."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import TypeVar

A = TypeVar("A")
B = TypeVar("B")
R = TypeVar("R")


def run_parallel(fn: Callable[[A], R], items: Iterable[A], workers: int) -> list[R]:
    """``fn`` over ``items`` with at most ``workers`` at once; results in item order.

    The first failure is raised once the requests in flight have finished; queued ones
    are dropped, so whoever handles the failure starts from a folder nobody writes to.
    """
    todo = list(items)
    if not todo:
        return []
    pool = ThreadPoolExecutor(
        max_workers=max(1, min(workers, len(todo))), thread_name_prefix="dbx-promote"
    )
    try:
        futures: list[Future[R]] = [pool.submit(fn, item) for item in todo]
        finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for f in finished:
            exc = f.exception()
            if exc is not None:
                raise exc
        return [f.result() for f in futures]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def together(first: Callable[[], A], second: Callable[[], B]) -> tuple[A, B]:
    """Run two independent reads at once: one round trip instead of two."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        later = pool.submit(second)
        a = first()
        return a, later.result()
