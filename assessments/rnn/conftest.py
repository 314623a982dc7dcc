"""RNN area: every test runs torch on one intra-op thread (the harness's `single_thread`)."""
import pytest


@pytest.fixture(autouse=True)
def _one_torch_thread(single_thread):
    yield
