"""Helpers shared by the reader and writer tests."""

import numpy as np

from tfrs_debias.schema import Feature, ImpressionSchema

# A schema that declares the rank range and the known devices (the default leaves both open).
SCHEMA = ImpressionSchema.default(
    tasks=("click",), num_positions=10, devices=("phone", "desktop", "tv")
).replace(add=[Feature("ips", "float32", "propensity")])


def sample_columns(n=7):
    return {
        "user_id": np.arange(n) + 100,
        "item_id": np.arange(n) * 3,
        "request_id": np.arange(n) // 3,
        "position": np.arange(n) % 3,
        "device": np.array(["phone", "tv", "desktop"] * 3)[:n],
        "click": np.arange(n) % 2,
        "ips": np.linspace(0.1, 1.0, n),
    }
