import numpy as np

from tests.training.support import SMALL, load_schema
from tfrs_debias.models import EstimatorConfig
from tfrs_debias.training import train


def test_checkpoint_retention_keeps_the_last_and_the_best(small_sim_dir, tmp_path):
    from tfrs_debias.training.checkpoint_retention import CheckpointRetention

    history = {"val_loss": [0.9, 0.5, 0.7, 0.8, 0.6]}
    rule = CheckpointRetention("e-{epoch:02d}", lambda: history, keep_last=2)
    assert rule.kept_epochs(5) == {1, 3, 4}  # the best (0.5, epoch 2) and the last two
    assert rule.kept_epochs(2) == {0, 1}
    out = tmp_path / "run"
    result = train(
        f"{small_sim_dir}/train-*",
        str(out),
        EstimatorConfig(model="multi_task", **SMALL),
        load_schema(small_sim_dir),
        epochs=4,
        steps_per_epoch=2,
        early_stopping_patience=0,
        keep_checkpoints=1,
        verbose=0,
        validate="none",
    )
    best = int(np.argmin(result.history["val_loss"])) + 1
    kept = sorted({p.name.split(".")[0] for p in (out / "checkpoints").glob("epoch-*.index")})
    assert kept == sorted({f"epoch-{best:02d}", "epoch-04"})
