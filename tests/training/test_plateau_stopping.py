import numpy as np
import pytest

from tfrs_debias.backend import keras
from tfrs_debias.training.plateau_stopping import PlateauStopping, plateau_tolerance


def test_kept_epoch_is_the_last_within_the_tolerance_of_the_lowest():
    # Running lowest 1.0, 0.9, 0.9, 0.9, 0.89; on the plateau (<= lowest * 1.01):
    # epochs 0, 1, 2 (0.905 <= 0.909), not 3 (0.95), and 4 (a new lowest).
    assert PlateauStopping.kept_epoch([1.0, 0.9, 0.905, 0.95, 0.89], 0.01) == 4
    assert PlateauStopping.kept_epoch([1.0, 0.9, 0.905, 0.95], 0.01) == 2
    # Keras's rule would keep epoch 1 (the lowest): 0.905 is 0.6% above it.
    assert PlateauStopping.kept_epoch([1.0, 0.9, 0.905, 0.95], 0.0) == 1
    assert PlateauStopping.kept_epoch([1.0, 0.9, 0.9], 0.0) == 2  # the last of ties
    assert PlateauStopping.kept_epoch([]) is None
    assert PlateauStopping.kept_epoch([float("nan")]) is None


def test_the_kept_value_is_within_the_tolerance_of_the_final_lowest():
    values = [0.5, 0.45, 0.455, 0.44, 0.4442, 0.46, 0.4439]
    kept = PlateauStopping.kept_epoch(values, 0.01)
    assert kept == 6
    assert values[kept] <= min(values) * 1.01


def test_plateau_tolerance_is_two_over_root_rows():
    assert plateau_tolerance(10_000) == pytest.approx(0.02)
    assert plateau_tolerance(739) == pytest.approx(0.0736, abs=1e-4)


def _model():
    model = keras.Sequential([keras.layers.Dense(1, input_shape=(1,))])
    model.compile(loss="mse")
    return model


def test_stops_after_patience_epochs_off_the_plateau_and_restores_the_kept_weights():
    model = _model()
    stopper = PlateauStopping(patience=2, tolerance=0.01)
    stopper.set_model(model)
    stopper.on_train_begin()
    kernel = model.layers[0].kernel
    for epoch, loss in enumerate([1.0, 0.9, 0.905, 0.95, 0.96]):
        kernel.assign([[float(epoch)]])  # the weights "of" each epoch
        stopper.on_epoch_end(epoch, {"val_loss": loss})
        assert model.stop_training == (epoch == 4)
    stopper.on_train_end()
    assert stopper.best_epoch == 2
    np.testing.assert_allclose(kernel.numpy(), [[2.0]])


def test_a_negative_control_keras_rule_keeps_the_earlier_epoch():
    model = _model()
    keras_stopper = keras.callbacks.EarlyStopping(patience=2, restore_best_weights=True)
    keras_stopper.set_model(model)
    keras_stopper.on_train_begin()
    for epoch, loss in enumerate([1.0, 0.9, 0.905, 0.95, 0.96]):
        model.layers[0].kernel.assign([[float(epoch)]])
        keras_stopper.on_epoch_end(epoch, {"val_loss": loss})
    keras_stopper.on_train_end()
    np.testing.assert_allclose(model.layers[0].kernel.numpy(), [[1.0]])
