"""Shared fixtures for the chemomet tests."""

import numpy as np
import pytest

import chemomet as cm


@pytest.fixture(scope="session")
def population():
    return cm.Population()


@pytest.fixture(scope="session")
def cohort(population):
    """A seeded virtual cohort of 400 patients: (covariates, parameters)."""
    return population.sample(400, np.random.SeedSequence(2026))
