"""Shared fixtures for the chemomet tests."""

import numpy as np
import pytest
from hypothesis import settings

import chemomet as cm

# Property tests draw the same examples on every run (reproducible CI); explore more by hand with
# `pytest --hypothesis-profile=explore`.
settings.register_profile("reproducible", derandomize=True)
settings.register_profile("explore", derandomize=False, max_examples=500)
settings.load_profile("reproducible")


@pytest.fixture(scope="session")
def population():
    return cm.Population()


@pytest.fixture(scope="session")
def cohort(population):
    """A seeded virtual cohort of 400 patients: (covariates, parameters)."""
    return population.sample(400, np.random.SeedSequence(2026))
