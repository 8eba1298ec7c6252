"""`calibrate_on_slice`: fits a model's `SliceCalibration` on a randomly exposed slice.

After training on the biased log, the exposure counts of every user and item are taken
from the training files (one pass over their id columns), and per binary task a
logistic regression of the slice's labels on ``(served logit, log(1 + item count),
log(1 + user count))`` gives the four weights the served logit is corrected with. How
much slice this needs is the few-parameter budget of a logistic regression: a few
hundred rows with some positives of each task (the public collections' 5% slices hold
500–1,000 ratings); fewer than `MIN_SLICE_ROWS` rows, or a task with no positive or no
negative in the slice, leaves that task's logit as it was.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tfrs_debias.backend import tf
from tfrs_debias.data.io.reader import make_dataset, read_columns
from tfrs_debias.layers.slice_calibration import TERMS
from tfrs_debias.schema import ImpressionSchema

MIN_SLICE_ROWS = 50


def exposure_counts(model, files: Sequence[str], schema: ImpressionSchema):
    """``(user counts, item counts)`` per vocabulary index over the rows of ``files``."""
    users = np.zeros(model.calibration.num_users, np.int64)
    items = np.zeros(model.calibration.num_items, np.int64)
    rows = make_dataset(files, schema, 65536, shuffle=False, include_labels=False, check=False)
    for batch in rows:
        for name, counts in ((schema.user_id.name, users), (schema.item_id.name, items)):
            index = model.embedding.index(name, batch[name]).numpy()
            counts += np.bincount(index, minlength=len(counts))
    return users, items


def calibrate_on_slice(
    model, train_files: Sequence[str], slice_files: Sequence[str], schema: ImpressionSchema
) -> dict:
    """Fits ``model.calibration`` (which the model has when built with
    ``slice_calibration``); returns per task the weights (`TERMS`), the slice rows and
    the slice AUC of the served score before and after."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    layer = model.calibration
    if layer is None:
        raise ValueError("the model has no slice calibration (build it with slice_calibration)")
    layer.set_counts(*exposure_counts(model, train_files, schema))
    columns = read_columns(slice_files, schema)
    served = {n: tf.constant(columns[n]) for n in (f.name for f in model.served_features)}
    logits = model.uncalibrated_logits(served)
    user, item = schema.user_id.name, schema.item_id.name
    terms = layer.features(
        logits,
        model.embedding.index(user, served[user]),
        model.embedding.index(item, served[item]),
    ).numpy()  # [rows, tasks, 4]
    report: dict = {"rows": int(terms.shape[0]), "tasks": {}}
    for t, task in enumerate(model.task_names):
        labels = columns.get(task)
        if (
            labels is None
            or model.config.task_losses[t] != "bce"
            or terms.shape[0] < MIN_SLICE_ROWS
            or len(np.unique(labels)) < 2
        ):
            report["tasks"][task] = None
            continue
        x = terms[:, t, 1:]
        fit = LogisticRegression(C=1.0).fit(x, labels)
        weights = np.concatenate([fit.intercept_, fit.coef_[0]])
        layer.set_task_weights(t, weights)
        report["tasks"][task] = {
            "weights": dict(zip(TERMS, np.round(weights.astype(float), 4).tolist(), strict=True)),
            "slice_auc_before": float(roc_auc_score(labels, x[:, 0])),
            "slice_auc_after": float(roc_auc_score(labels, fit.decision_function(x))),
        }
    return report
