"""One thread for torch and the BLAS libraries, for tests built from many small operations.

Recurrences, small matmuls, SARIMA likelihoods and tiny NumPy layers gain nothing from a
second thread; on a loaded 2-core machine its spin-waiting made such tests 10-50x slower.
Under `pytest -n 2` every worker already has one thread (conftest), so this matters for
single-process runs (`pytest -m rnn`). Tests get it as the `single_thread` fixture (conftest);
module-scoped fixtures use the context manager directly.
"""
from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def single_thread() -> Iterator[None]:
    from threadpoolctl import threadpool_limits

    torch = sys.modules.get("torch")
    previous = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            yield
    finally:
        if torch is not None:
            torch.set_num_threads(previous)
