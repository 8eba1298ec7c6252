"""Helpers shared by the training tests."""

import os

from tfrs_debias.schema import ImpressionSchema

SMALL = dict(embedding_dim=8, hidden_units=(16,), component_units=(8,), gate_units=(4,))


def load_schema(d):
    return ImpressionSchema.load(os.path.join(d, "schema.json"))
