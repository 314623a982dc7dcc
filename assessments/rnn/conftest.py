"""RNN area: every test runs torch on one intra-op thread (see _helpers.single_thread)."""
import pytest

from assessments.rnn._helpers import single_thread


@pytest.fixture(autouse=True)
def _one_torch_thread(_seed_everything):
    # Depends on the harness's seeding fixture so it runs after it sets the thread count.
    with single_thread():
        yield
