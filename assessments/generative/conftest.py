"""Session fixtures of the generative area: the model store, the independent classifier, real digits."""
from __future__ import annotations

import pytest

from assessments.generative._helpers import ModelStore, digits
from implementations.config import load_experiment


@pytest.fixture(scope="session")
def store(artifacts, budget, request) -> ModelStore:
    """Trained VAE/GAN/diffusion and their samples, cached under <run-dir>/artifacts/generative/."""
    return ModelStore(artifacts("generative"), budget, request.config.getoption("--seed"))


@pytest.fixture(scope="session")
def digit_classifier():
    """digit-recognizer-py's pretrained MNIST CNN (not trained by the project), eval mode."""
    from implementations.architectures.generative.digit_features import load_digit_classifier

    return load_digit_classifier()


@pytest.fixture(scope="session")
def real_digits(budget):
    """(train pixels tensor (N, 28, 28), y_train, held-out pixels (M, 28, 28) float64, y_test)."""
    return digits(load_experiment("generative", "data", budget))


@pytest.fixture(scope="session")
def real_features(digit_classifier, real_digits):
    """Held-out real digits' 256-d classifier features (M, 256) and probabilities (M, 10)."""
    from implementations.architectures.generative.digit_features import digit_features

    return digit_features(digit_classifier, real_digits[2])
