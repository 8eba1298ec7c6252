"""Shared fixtures: one small simulated dataset per test session."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

import tfrs_debias  # noqa: F401  (sets up Keras 2 before TensorFlow loads)
from tfrs_debias.data import ImpressionSimulator, SimulatorConfig


@pytest.fixture(scope="session")
def small_sim_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    ImpressionSimulator(SimulatorConfig.small(seed=3)).write(str(out), progress=False)
    return str(out)
