"""Export time against vocabulary size: ours (`export_saved_model`, six signatures) vs
the plain TFRS ranking model a user would write (IntegerLookup + Embedding 32 for user
and item, Dense 256-64, one logit per task, `tf.saved_model.save` with one signature),
in one run, at each vocabulary size.

Usage: python benchmarks/export_time.py [--ids 100000 1000000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
from plain_tfrs import PlainRanker
from scaling import size_mb

from tfrs_debias.backend import tf
from tfrs_debias.models import EstimatorConfig, build_estimator
from tfrs_debias.schema import ImpressionSchema
from tfrs_debias.serving import export_saved_model


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--ids", type=int, nargs="+", default=[100_000, 1_000_000])
    args = p.parse_args(argv)
    schema = ImpressionSchema.default(tasks=("click", "like"))
    batch = {
        "user_id": tf.constant([1, 2]),
        "item_id": tf.constant([3, 4]),
        "request_id": tf.constant([1, 1]),
        "position": tf.constant([0, 1]),
        "device": tf.constant(["phone", "tv"]),
        "click": tf.constant([1, 0]),
        "like": tf.constant([0, 0]),
    }
    print(f"{'ids':>10}{'ours s':>9}{'plain s':>9}{'ratio':>7}{'ours MB':>9}{'plain MB':>10}")
    for n in args.ids:
        ids = np.arange(n, dtype=np.int64)
        vocab = {"user_id": ids, "item_id": ids, "device": ["phone", "tv"]}
        ours = build_estimator(schema, EstimatorConfig(model="position_debiased"), vocab)
        ours(batch)
        plain = PlainRanker(ids)
        plain(batch)
        serve = tf.function(
            lambda user_id, item_id, m=plain: {
                "logits": m({"user_id": user_id, "item_id": item_id})
            }
        ).get_concrete_function(
            tf.TensorSpec([None], tf.int64, "user_id"), tf.TensorSpec([None], tf.int64, "item_id")
        )
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            path = export_saved_model(ours, os.path.join(tmp, "ours"))
            t_ours = time.perf_counter() - start
            start = time.perf_counter()
            tf.saved_model.save(plain, os.path.join(tmp, "plain"), signatures=serve)
            t_plain = time.perf_counter() - start
            mb_ours, mb_plain = size_mb(path), size_mb(os.path.join(tmp, "plain"))
        print(
            f"{n:>10,}{t_ours:>9.1f}{t_plain:>9.1f}{t_ours / t_plain:>6.1f}x"
            f"{mb_ours:>9.0f}{mb_plain:>10.0f}"
        )


if __name__ == "__main__":
    main()
