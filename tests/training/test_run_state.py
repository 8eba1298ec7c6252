import json

import numpy as np

from tfrs_debias.backend import keras
from tfrs_debias.training.plateau_stopping import PlateauStopping


def test_run_state_replays_early_stopping_by_hand(tmp_path):
    """val_loss 1.0, 0.8, 0.9 with patience 2: best 0.8 at epoch 2 (index 1), one epoch
    waited; the best weights come from that epoch's checkpoint."""
    from tfrs_debias.training.run_state import RunState

    model = keras.Sequential([keras.layers.Dense(1, input_shape=(2,))])
    pattern = str(tmp_path / "epoch-{epoch:02d}")
    model.set_weights([np.full((2, 1), 7.0), np.zeros(1)])
    model.save_weights(pattern.format(epoch=2))
    model.set_weights([np.zeros((2, 1)), np.zeros(1)])
    stopper = PlateauStopping(patience=2, tolerance=0.0)
    state = RunState(str(tmp_path / "history.json"), stopper, pattern)
    state.set_model(model)
    stopper.set_model(model)
    history = [{"loss": 2.0, "val_loss": v} for v in (1.0, 0.8, 0.9)]
    (tmp_path / "history.json").write_text(json.dumps({"epochs": history + [history[0]]}))
    stopper.on_train_begin()
    state.on_train_begin()
    state.on_epoch_begin(3)  # the backup says 3 epochs were done: the 4th entry is dropped
    assert state.history["val_loss"] == [1.0, 0.8, 0.9]
    assert (stopper.best, stopper.best_epoch, stopper.wait) == (0.8, 1, 1)
    assert stopper.best_weights[0].tolist() == [[7.0], [7.0]]
    assert model.get_weights()[0].tolist() == [[0.0], [0.0]]  # current weights kept
