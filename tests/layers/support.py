"""Features shared by the layer tests."""

from tfrs_debias.schema import Feature

POSITION = Feature("position", "int64", "bias", num_values=5)


DEVICE = Feature("device", "string", "bias", vocabulary=("phone", "tv"))
