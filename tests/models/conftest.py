"""Fixtures shared by this package's tests (built once per package)."""

import os

import pytest

from tfrs_debias.data import make_dataset
from tfrs_debias.schema import ImpressionSchema


@pytest.fixture(scope="package")
def data(small_sim_dir):
    schema = ImpressionSchema.load(os.path.join(small_sim_dir, "schema.json"))
    batch = next(iter(make_dataset(f"{small_sim_dir}/train-*", schema, 256, shuffle=False)))
    return schema, batch
