"""Files through `tf.io.gfile`: simulate, train and evaluate on a `ram://` filesystem."""

from tfrs_debias.backend import tf
from tfrs_debias.data import ImpressionSimulator, LogDirectory, SimulatorConfig
from tfrs_debias.evaluation import Evaluator, Scorer
from tfrs_debias.models import EstimatorConfig
from tfrs_debias.training import load_run, train


def test_ram_filesystem_simulate_train_evaluate():
    data = LogDirectory("ram://tfrs_debias_test/data")
    config = SimulatorConfig.small(
        num_users=300, num_items=100, num_requests=1000, num_test_users=50, truth_candidates=20
    )
    ImpressionSimulator(config).write(data.path, progress=False)
    assert {"train", "full_train", "test"} <= set(data.splits)
    run = "ram://tfrs_debias_test/run"
    train(
        data.require("train"),
        run,
        EstimatorConfig(),
        data.schema(),
        epochs=1,
        steps_per_epoch=2,
        verbose=0,
    )
    model = load_run(run)
    result = Evaluator(data.truth()).evaluate(Scorer.from_estimator(model))
    assert 0 < result["ranking"]["ndcg"]["click"]["@10"] <= 1
    assert tf.io.gfile.exists(f"{run}/metrics.json")
