import os

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, settings

# The suite runs in two xdist workers on two cores: one torch thread each avoids the
# oversubscription that makes small-batch training many times slower.
torch.set_num_threads(1)

SMALL = dict(
    n_experts=3,
    expert_layer_sizes=(16,),
    tower_layer_sizes=(8,),
    max_epochs=30,
    batch_size=64,
    lr=0.01,
    random_state=0,
)


@pytest.fixture
def small_params():
    """Constructor arguments for a network that trains in well under a second."""
    return dict(SMALL)


@pytest.fixture
def mixed_data():
    """Features and a DataFrame with a regression, a binary and a 3-class target.

    Each target is a clear function of the features, so a fitted model scores well.
    """
    rng = np.random.RandomState(0)
    X = rng.normal(size=(400, 6))
    y = pd.DataFrame(
        {
            "amount": 3.0 * X[:, 0] + X[:, 1] + 0.1 * rng.normal(size=400) + 50.0,
            "churn": np.where(X[:, 1] + X[:, 2] > 0, "yes", "no"),
            "segment": np.digitize(X[:, 3], [-0.5, 0.5]).astype(np.int64),
        }
    )
    return X, y


# Property-based tests (tests/test_properties.py): a fixed, derandomized budget in CI, and a
# longer search with HYPOTHESIS_PROFILE=long.
settings.register_profile(
    "ci",
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "long",
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
