import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tests.serving.support import PLAIN_SELECT, relevance_inputs
from tfrs_debias.cli import main
from tfrs_debias.serving import export_saved_model


def test_layout_versions_and_atomic_writes(exported, monkeypatch):
    model, base, path, _, _ = exported
    assert path == os.path.join(base, "1")
    assert os.path.exists(os.path.join(path, "saved_model.pb"))
    with pytest.raises(FileExistsError, match="--force"):
        export_saved_model(model, base, version=1)
    before = sorted(os.listdir(base))

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(tf.saved_model, "save", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        export_saved_model(model, base, version=1, force=True)
    assert sorted(os.listdir(base)) == before  # nothing half-written, version 1 intact
    assert os.path.exists(os.path.join(path, "saved_model.pb"))


def test_saved_model_cli_lists_signatures_and_default_has_no_bias(exported):
    _, _, path, _, _ = exported
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    text = subprocess.run(
        [cli, "show", "--dir", path, "--all"], capture_output=True, text=True, check=True
    ).stdout
    for sig in ("serving_default", "examples", "regress", "biased", "components", "select_top_k"):
        assert f"signature_def['{sig}']" in text
    default = text.split("signature_def['serving_default']")[1].split("signature_def[")[0]
    assert "inputs['user_id']" in default and "inputs['item_genre']" in default
    assert "position" not in default and "device" not in default
    regress = text.split("signature_def['regress']")[1].split("signature_def[")[0]
    assert "Method name is: tensorflow/serving/regress" in regress


FRESH = """
import json, sys
import tensorflow as tf
import numpy as np
loaded = tf.saved_model.load(sys.argv[1])
inputs = json.loads(open(sys.argv[2]).read())
out = {}
for sig, feats in inputs.items():
    fn = loaded.signatures[sig]
    specs = fn.structured_input_signature[1]
    res = fn(**{k: tf.constant(v, specs[k].dtype) for k, v in feats.items()})
    out[sig] = {k: v.numpy().tolist() for k, v in res.items()}
assert "tfrs_debias" not in sys.modules
print(json.dumps(out))
"""


def test_fresh_process_with_only_tensorflow_matches_model(exported, tmp_path):
    model, _, path, batch, _ = exported
    rel = {k: v.numpy().tolist() for k, v in relevance_inputs(batch, model).items()}
    full = {
        **rel,
        "position": batch["position"].numpy().tolist(),
        "device": [d.decode() for d in batch["device"].numpy()],
    }
    examples = []
    for i in range(64):
        ex = tf.train.Example()
        for k, v in rel.items():
            ex.features.feature[k].int64_list.value.append(v[i])
        examples.append(ex.SerializeToString())
    inputs_file = tmp_path / "inputs.json"
    inputs_file.write_text(
        json.dumps(
            {
                "serving_default": rel,
                "biased": full,
                "components": full,
                "select_top_k": {
                    "user_id": rel["user_id"][0],
                    "user_segment": rel["user_segment"][0],
                    "item_id": rel["item_id"],
                    "item_genre": rel["item_genre"],
                    "exclude_item_ids": rel["item_id"][:3],
                    "k": 5,
                    **PLAIN_SELECT,
                },
            }
        )
    )
    script = tmp_path / "fresh.py"
    script.write_text(FRESH)
    env = {"PATH": os.environ["PATH"], "TF_CPP_MIN_LOG_LEVEL": "3", "TF_USE_LEGACY_KERAS": "1"}
    proc = subprocess.run(
        [sys.executable, str(script), path, str(inputs_file)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    probs = tf.sigmoid(model.debiased_logits(relevance_inputs(batch, model))).numpy()
    np.testing.assert_allclose(out["serving_default"]["click"], probs[:, 0], rtol=1e-5)
    np.testing.assert_allclose(out["serving_default"]["like"], probs[:, 1], rtol=1e-5)
    np.testing.assert_allclose(out["serving_default"]["score"], probs @ [1.0, 3.0], rtol=1e-5)
    biased = tf.sigmoid(model(batch)).numpy()
    np.testing.assert_allclose(out["biased"]["click"], biased[:, 0], rtol=1e-5)
    comps = model.components(batch)
    np.testing.assert_allclose(
        out["components"]["bias_click"], comps["components"][:, 0, 3].numpy(), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        out["components"]["gate_interaction_like"], comps["gates"][:, 1, 0].numpy(), rtol=1e-5
    )
    # select_top_k: same user for all 64 candidates, 3 excluded, best 5 by score
    user = {
        "user_id": tf.fill([64], batch["user_id"][0]),
        "user_segment": tf.fill([64], batch["user_segment"][0]),
        "item_id": batch["item_id"],
        "item_genre": batch["item_genre"],
    }
    score = tf.sigmoid(model.debiased_logits(user)).numpy() @ [1.0, 3.0]
    items = batch["item_id"].numpy()
    score[np.isin(items, items[:3])] = -np.inf
    top = np.argsort(-score, kind="stable")[:5]
    assert out["select_top_k"]["item_ids"] == items[top].tolist()
    np.testing.assert_allclose(out["select_top_k"]["scores"], score[top], rtol=1e-5)


def test_examples_and_regress_signatures(exported):
    model, _, path, batch, _ = exported
    loaded = tf.saved_model.load(path)
    rel = relevance_inputs(batch, model)
    serialized = []
    for i in range(64):
        ex = tf.train.Example()
        for k, v in rel.items():
            ex.features.feature[k].int64_list.value.append(int(v[i]))
        ex.features.feature["position"].int64_list.value.append(9)  # ignored
        serialized.append(ex.SerializeToString())
    by_examples = loaded.signatures["examples"](examples=tf.constant(serialized))
    default = loaded.signatures["serving_default"](**rel)
    np.testing.assert_allclose(by_examples["score"], default["score"], rtol=1e-6)
    regress = loaded.signatures["regress"](inputs=tf.constant(serialized))
    np.testing.assert_allclose(regress["outputs"], default["score"], rtol=1e-6)


def test_export_and_select_cli(exported, tmp_path, capsys):
    _, _, _, batch, run = exported
    base = str(tmp_path / "cli_models" / "r")
    assert main(["export", "--run", run, "--out", base, "--value-weights", "click=2"]) == 0
    assert main(["export", "--run", run, "--out", base, "--version", "1"]) == 2
    assert "--force" in capsys.readouterr().err
    meta = json.loads(Path(base, "1", "assets.extra", "tfrs_debias.json").read_text())
    assert meta["value_weights"] == [2.0, 0.0]
    cands = tmp_path / "cands.csv"
    cands.write_text(
        "item_id,item_genre\n"
        + "".join(
            f"{i},{g}\n"
            for i, g in zip(
                batch["item_id"].numpy()[:20], batch["item_genre"].numpy()[:20], strict=True
            )
        )
    )
    assert (
        main(
            [
                "select",
                "--model",
                base,
                "--user",
                "3",
                "--user-feature",
                "user_segment=1",
                "--candidates",
                str(cands),
                "--k",
                "4",
                "--json",
            ]
        )
        == 0
    )
    picks = json.loads(capsys.readouterr().out)
    assert len(picks) == 4 and picks[0]["score"] == pytest.approx(2 * picks[0]["click"], rel=1e-5)
    # Re-ranking flags: caps of 1 per genre, freshness from an item_age column, --explain.
    items, genres = batch["item_id"].numpy()[:20], batch["item_genre"].numpy()[:20]
    aged = tmp_path / "aged.csv"
    aged.write_text(
        "item_id,item_genre,item_age\n"
        + "".join(f"{i},{g},{20 - n}\n" for n, (i, g) in enumerate(zip(items, genres, strict=True)))
    )
    user = ["--user", "3", "--user-feature", "user_segment=1", "--candidates", str(aged)]
    rerank = ["--category-cap", "1", "--freshness-weight", "0.5", "--freshness-half-life", "2"]
    assert main(["select", "--model", base, *user, "--k", "4", *rerank, "--json", "--explain"]) == 0
    out = json.loads(capsys.readouterr().out)
    by_id = dict(zip(items.tolist(), genres.tolist(), strict=True))
    picked_genres = [by_id[p["item_id"]] for p in out["items"]]
    assert len(set(picked_genres)) == len(picked_genres)  # one per genre
    assert any("category_cap (because of item" in e for e in out["events"])
    assert main(["select", "--model", base, *user, *rerank, "--explain"]) == 0
    assert "re-ranking:" in capsys.readouterr().out
    bad = tmp_path / "bad_age.csv"
    bad.write_text(f"item_id,item_genre,item_age\n{items[0]},{genres[0]},new\n")
    user[-1] = str(bad)
    assert main(["select", "--model", base, *user, "--freshness-weight", "1"]) == 2
    assert (
        "bad_age.csv: line 2, column 'item_age': 'new' is not a number" in capsys.readouterr().err
    )
    user[-1] = str(aged)
    with pytest.raises(SystemExit) as refused:  # refused while parsing, naming the flag
        main(["select", "--model", base, *user, "--diversity-lambda", "2"])
    assert refused.value.code == 2
    assert "argument --diversity-lambda: must be a number in [0, 1], got '2'" in (
        capsys.readouterr().err
    )
    assert main(["export", "--run", run, "--out", base, "--similarity", "nope"]) == 2
    assert "similarity feature 'nope' is not an item feature" in capsys.readouterr().err


def test_concurrent_exports_get_their_own_versions(exported, tmp_path):
    from tfrs_debias.serving.export import _claim_next_version, remove_stale_temporaries

    model = exported[0]
    base = tmp_path / "m"
    export_saved_model(model, str(base))
    # Another export claimed version 2 after ours computed it: ours moves to 3.
    (base / "2").mkdir()
    (base / "2" / "saved_model.pb").write_bytes(b"theirs")
    ours = base / ".tmp-2-1"
    ours.mkdir()
    (ours / "saved_model.pb").write_bytes(b"ours")
    assert _claim_next_version(str(ours), str(base)) == str(base / "3")
    assert (base / "2" / "saved_model.pb").read_bytes() == b"theirs"
    assert (base / "3" / "saved_model.pb").read_bytes() == b"ours"
    # A temporary folder of an export that was killed is removed by the next export.
    (base / ".tmp-5-999999999").mkdir()
    assert remove_stale_temporaries(str(base)) == [".tmp-5-999999999"]
    with pytest.raises(FileExistsError, match="--force"):
        export_saved_model(model, str(base), version=3)


def test_export_writes_tf_serving_warmup_requests_and_keras_save_is_refused(exported):
    from tensorflow_serving.apis import prediction_log_pb2

    model, _, path, _, _ = exported
    records = list(
        tf.data.TFRecordDataset(
            os.path.join(path, "assets.extra", "tf_serving_warmup_requests")
        ).as_numpy_iterator()
    )
    assert len(records) == 1
    request = prediction_log_pb2.PredictionLog.FromString(records[0]).predict_log.request
    assert request.model_spec.signature_name == "serving_default"
    assert set(request.inputs) == {f.name for f in model.served_features}
    loaded = tf.saved_model.load(path)
    out = loaded.signatures["serving_default"](
        **{k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
    )
    assert out["score"].shape == (8,)
    with pytest.raises(NotImplementedError, match="export_saved_model"):
        model.save("somewhere")


def test_export_leaves_out_keras_layer_traces(exported):
    from tensorflow.core.protobuf import saved_model_pb2

    _, _, path, _, _ = exported
    saved = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as fh:
        saved.ParseFromString(fh.read())
    names = [f.signature.name for f in saved.meta_graphs[0].graph_def.library.function]
    assert names and not [n for n in names if "layer_call_and_return_conditional_losses" in n]
    loaded = tf.saved_model.load(path)
    assert set(loaded.signatures) == {
        "serving_default",
        "biased",
        "components",
        "examples",
        "regress",
        "select_top_k",
    }


def test_export_leaves_out_training_state_and_checkpoints_keep_it(exported, tmp_path):
    """The optimizer (Adam's two slots per weight), loss trackers and metrics stay in
    checkpoints (BackupAndRestore resumes a run from one) and out of the export."""
    from tfrs_debias.models.base import BaseEstimator

    model, _, path, _, _ = exported
    exported_keys = set(
        tf.train.load_checkpoint(
            os.path.join(path, "variables", "variables")
        ).get_variable_to_shape_map()
    )
    checkpoint = tf.train.Checkpoint(model=model).write(str(tmp_path / "ckpt"))
    checkpoint_keys = set(tf.train.load_checkpoint(checkpoint).get_variable_to_shape_map())
    training_only = tuple(f"model/{name}/" for name in BaseEstimator.TRAINING_ONLY)
    for name in ("optimizer", "loss_tracker", "ranking_tasks"):
        assert [k for k in checkpoint_keys if k.startswith(f"model/{name}/")], name
    assert not [k for k in exported_keys if k.startswith(training_only)]
    # Every model weight is still there: one exported value per variable of the model's
    # layers (its trainable weights, and the bias tower's dropout counter when it drops
    # features: not with the default bias_feature_dropout 0).
    values = [k for k in exported_keys if k.endswith("/.ATTRIBUTES/VARIABLE_VALUE")]
    counter = 1 if model.bias_tower._draws is not None else 0
    assert model.config.bias_feature_dropout == 0 and counter == 0
    assert len(values) == len(model.trainable_variables) + counter
