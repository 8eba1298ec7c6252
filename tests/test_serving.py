import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tfrs_debias.cli import main
from tfrs_debias.data import make_dataset
from tfrs_debias.models import EstimatorConfig
from tfrs_debias.schema import ImpressionSchema
from tfrs_debias.serving import TopItemSelector, export_saved_model, make_server
from tfrs_debias.training import train

SMALL = dict(
    embedding_dim=8,
    hidden_units=(16,),
    component_units=(8,),
    gate_units=(4,),
    value_weights=(1.0, 3.0),
    item_marginal_alpha=0.2,
)


@pytest.fixture(scope="module")
def exported(small_sim_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serving")
    schema = ImpressionSchema.load(os.path.join(small_sim_dir, "schema.json"))
    result = train(
        f"{small_sim_dir}/train-*",
        str(tmp / "run"),
        EstimatorConfig(model="factorized", **SMALL),
        schema,
        epochs=1,
        steps_per_epoch=5,
        verbose=0,
        validate="none",
    )
    base = str(tmp / "saved_models" / "ranker")
    path = export_saved_model(result.model, base)
    batch = next(iter(make_dataset(f"{small_sim_dir}/test-*", schema, 64, shuffle=False)))
    return result.model, base, path, batch, str(tmp / "run")


#: The select_top_k inputs beyond features, exclusions and k, set for a plain top-k.
PLAIN_SELECT = {
    "not_interested_item_ids": [],
    "item_age": [],
    "value_weights": [1.0, 3.0],
    "diversity_lambda": 1.0,
    "similarity_threshold": 1.0,
    "category_cap": 0,
    "freshness_weight": 0.0,
    "freshness_half_life": 7.0,
    "not_interested_threshold": 0.9,
}


def _relevance(batch, model):
    return {f.name: batch[f.name] for f in model.schema.relevance_features}


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
    rel = {k: v.numpy().tolist() for k, v in _relevance(batch, model).items()}
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
    probs = tf.sigmoid(model.debiased_logits(_relevance(batch, model))).numpy()
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
    rel = _relevance(batch, model)
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


def test_selector_from_model_and_saved_model_agree(exported):
    model, base, _, batch, _ = exported
    user = {"user_id": int(batch["user_id"][0]), "user_segment": int(batch["user_segment"][0])}
    cands = {
        "item_id": batch["item_id"].numpy().tolist(),
        "item_genre": batch["item_genre"].numpy().tolist(),
    }
    a = TopItemSelector.from_estimator(model).select(user, cands, k=5, exclude=cands["item_id"][:2])
    b = TopItemSelector.from_saved_model(base).select(
        user, cands, k=5, exclude=cands["item_id"][:2]
    )
    assert [p.item_id for p in a] == [p.item_id for p in b]
    assert not {p.item_id for p in a} & set(cands["item_id"][:2])
    for p in b:  # score = Σ_t w_t · p_t with the export's weights (1, 3)
        assert p.score == pytest.approx(
            p.probabilities["click"] + 3 * p.probabilities["like"], rel=1e-5
        )
    only_click = TopItemSelector.from_saved_model(base).select(
        user, cands, k=64, value_weights={"click": 1.0}
    )
    scores = [p.score for p in only_click]
    assert scores == sorted(scores, reverse=True)
    assert all(p.score == pytest.approx(p.probabilities["click"]) for p in only_click)
    with pytest.raises(ValueError, match="candidate feature 'item_genre' is missing"):
        TopItemSelector.from_saved_model(base).select(user, [1, 2, 3])


def test_select_top_k_signature_equals_the_python_selector_with_reranking(exported):
    model, base, _, batch, _ = exported
    user = {"user_id": int(batch["user_id"][0]), "user_segment": int(batch["user_segment"][0])}
    items = batch["item_id"].numpy()
    genres = batch["item_genre"].numpy()
    cands = {"item_id": items.tolist(), "item_genre": genres.tolist()}
    ages = np.arange(len(items), dtype=np.float32)[::-1]  # the last candidates are fresh
    request = dict(
        k=10,
        exclude=items[:2].tolist(),
        not_interested=items[2:3].tolist(),
        item_age=ages,
        options=dict(
            diversity_lambda=0.5,
            similarity_threshold=0.95,
            category_cap=2,
            freshness_weight=0.3,
            freshness_half_life=5.0,
        ),
    )
    in_memory = TopItemSelector.from_estimator(model).rank(user, cands, **request)
    exported_ = TopItemSelector.from_saved_model(base).rank(user, cands, **request)
    assert [p.item_id for p in in_memory.picks] == [p.item_id for p in exported_.picks]
    np.testing.assert_allclose(
        [p.score for p in in_memory.picks], [p.score for p in exported_.picks], rtol=1e-5
    )
    assert in_memory.events == exported_.events
    picked = [p.item_id for p in exported_.picks]
    assert len(picked) == 10
    by_id = dict(zip(items.tolist(), genres.tolist(), strict=False))
    assert max(np.unique([by_id[i] for i in picked], return_counts=True)[1]) <= 2
    assert not set(picked) & set(items[:3].tolist())
    actions = {e.action for e in exported_.events}
    assert {"excluded", "not_interested", "category_cap", "moved"} <= actions
    plain = TopItemSelector.from_saved_model(base).select(user, cands, k=10)
    assert [p.item_id for p in plain] != picked  # the re-ranking changed the list
    assert all(p.base_rank == r for r, p in enumerate(plain))


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
    assert main(["select", "--model", base, *user, "--diversity-lambda", "2"]) == 2
    assert "diversity_lambda must be in [0, 1]" in capsys.readouterr().err
    assert main(["export", "--run", run, "--out", base, "--similarity", "nope"]) == 2
    assert "similarity feature 'nope' is not an item feature" in capsys.readouterr().err


def _select_request(rel, k):
    """A REST ``select_top_k`` request: the first user, the given items, ``k``."""
    inputs = {"user_id": rel["user_id"][0], "user_segment": 1, "exclude_item_ids": [], "k": k}
    inputs.update(PLAIN_SELECT)
    inputs.update(item_id=rel["item_id"], item_genre=rel["item_genre"])
    return {"signature_name": "select_top_k", "inputs": inputs}


def _request(url, body=None, raw=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.fixture(scope="module")
def server(exported, tmp_path_factory):
    model, _, _, _, _ = exported
    base = str(tmp_path_factory.mktemp("rest") / "models" / "ranker")
    export_saved_model(model, base)
    httpd = make_server(base, port=0, max_body_bytes=200_000)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1/models/ranker", base
    httpd.shutdown()
    httpd.server_close()


def test_rest_api_like_tf_serving(server, exported):
    url, _ = server
    model, _, _, batch, _ = exported
    rel = {k: v.numpy().tolist()[:3] for k, v in _relevance(batch, model).items()}
    assert _request(url) == (
        200,
        {
            "model_version_status": [
                {
                    "version": "1",
                    "state": "AVAILABLE",
                    "status": {"error_code": "OK", "error_message": ""},
                }
            ]
        },
    )
    status, meta = _request(url + "/metadata")
    sigs = meta["metadata"]["signature_def"]["signature_def"]
    assert status == 200 and set(sigs["serving_default"]["inputs"]) == set(rel)
    assert sigs["serving_default"]["inputs"]["user_id"]["dtype"] == "DT_INT64"
    assert sigs["regress"]["method_name"] == "tensorflow/serving/regress"
    probs = tf.sigmoid(model.debiased_logits({k: tf.constant(v) for k, v in rel.items()})).numpy()
    instances = [{k: v[i] for k, v in rel.items()} for i in range(3)]
    status, rows = _request(url + ":predict", {"instances": instances})
    assert status == 200 and len(rows["predictions"]) == 3
    np.testing.assert_allclose([r["click"] for r in rows["predictions"]], probs[:, 0], rtol=1e-5)
    status, cols = _request(
        url + "/versions/1:predict", {"inputs": rel, "signature_name": "serving_default"}
    )
    np.testing.assert_allclose(cols["outputs"]["score"], probs @ [1.0, 3.0], rtol=1e-5)
    status, top = _request(url + ":predict", _select_request(rel, k=2))
    assert status == 200 and len(top["outputs"]["item_ids"]) == 2


@pytest.mark.parametrize(
    "path, body, raw, code, message",
    [
        (":predict", None, b"{not json", 400, "JSON Parse error"),
        (":predict", {"instances": [{"user_id": 1}]}, None, 400, "missing input"),
        (
            ":predict",
            {"inputs": {"user_id": ["a"], "item_id": [1], "user_segment": [1], "item_genre": [1]}},
            None,
            400,
            "input 'user_id'",
        ),
        (
            ":predict",
            {"inputs": {"user_id": [1.5], "item_id": [1], "user_segment": [1], "item_genre": [1]}},
            None,
            400,
            "expected integers",
        ),
        (
            ":predict",
            {"signature_name": "nope", "instances": [1]},
            None,
            400,
            'signature name: "nope" not found',
        ),
        (":predict", {"instances": [], "inputs": {}}, None, 400, "exactly one"),
        ("/versions/7:predict", {"instances": [1]}, None, 404, "Specific(ranker, 7)"),
        (":predict", None, b"x" * 300_000, 413, "exceeds the limit"),
    ],
)
def test_bad_requests_get_tf_serving_errors_and_server_keeps_serving(
    server, path, body, raw, code, message
):
    url, _ = server
    status, payload = _request(url + path, body, raw)
    assert status == code and message in payload["error"]
    assert _request(url)[0] == 200
    assert _request(url.replace("ranker", "other"))[0] == 404


def _wait_for(url, condition, seconds=20):
    """Polls the status until ``condition(model_version_status)`` holds (the manager loads
    new versions in the background, every 1 s by default)."""
    deadline = time.time() + seconds
    while True:
        status = _request(url)[1]["model_version_status"]
        if condition(status):
            return status
        assert time.time() < deadline, status
        time.sleep(0.2)


def test_new_version_is_picked_up_without_restart(server, exported):
    # Last test of the module: it adds version 2 to the shared server's model base.
    url, base = server
    model, _, _, batch, _ = exported
    rel = {k: v.numpy().tolist()[:2] for k, v in _relevance(batch, model).items()}
    before = _request(url + ":predict", {"inputs": rel})[1]["outputs"]["score"]
    export_saved_model(model, base, value_weights=[0.0, 10.0])
    _wait_for(url, lambda status: status[0]["version"] == "2")
    after = _request(url + ":predict", {"inputs": rel})[1]["outputs"]
    np.testing.assert_allclose(after["score"], np.asarray(after["like"]) * 10, rtol=1e-5)
    assert after["score"] != before
    assert _request(url + "/versions/1:predict", {"inputs": rel})[1]["outputs"]["score"] == before


# -- the model manager: versions switch only once loaded, never on the request path ----


@pytest.fixture()
def managed(exported, tmp_path):
    """A server over its own model base (versions 1-3), polling disabled: the test calls
    ``refresh()`` where the poller would run."""
    model, _, _, batch, _ = exported
    base = str(tmp_path / "models" / "ranker")
    for weights in ([1.0, 0.0], [0.0, 1.0], [1.0, 1.0]):
        export_saved_model(model, base, value_weights=weights)
    httpd = make_server(base, port=0, poll_seconds=0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    rel = {k: v.numpy().tolist()[:2] for k, v in _relevance(batch, model).items()}
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1/models/ranker", base, httpd, rel
    httpd.shutdown()
    httpd.server_close()


def _raw_http(port, request: bytes) -> bytes:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_versions_outside_the_policy_are_404_not_500(managed):
    url, base, httpd, rel = managed
    status = _request(url)[1]["model_version_status"]
    assert [s["version"] for s in status] == ["3", "2"]  # latest 2 served
    for _ in range(3):  # used to load v1, evict it at once and answer 500 (~1 s each)
        start = time.time()
        code, body = _request(url + "/versions/1:predict", {"inputs": rel})
        assert code == 404 and "Specific(ranker, 1)" in body["error"]
        assert time.time() - start < 0.5
    code, body = _request(url + "/versions/2:predict", {"inputs": rel})
    assert code == 200
    np.testing.assert_allclose(body["outputs"]["score"], body["outputs"]["like"], rtol=1e-6)


def test_force_reexport_is_served_after_reload_not_stale(managed, exported):
    url, base, httpd, rel = managed
    model = exported[0]
    before = _request(url + "/versions/3:predict", {"inputs": rel})[1]["outputs"]
    export_saved_model(model, base, version=3, value_weights=[0.0, 5.0], force=True)
    httpd.model.manager.refresh()
    after = _request(url + "/versions/3:predict", {"inputs": rel})[1]["outputs"]
    np.testing.assert_allclose(after["score"], np.asarray(after["like"]) * 5, rtol=1e-5)
    assert after["score"] != before["score"]


def test_partial_version_folder_keeps_the_previous_version_serving(managed):
    url, base, httpd, rel = managed
    good = _request(url + ":predict", {"inputs": rel})[1]["outputs"]
    os.makedirs(os.path.join(base, "9"))  # an empty (half-copied) version folder
    httpd.model.manager.refresh()
    code, body = _request(url + ":predict", {"inputs": rel})
    assert code == 200 and body["outputs"] == good  # still version 3
    states = {s["version"]: s["state"] for s in _request(url)[1]["model_version_status"]}
    assert states == {"9": "LOADING", "3": "AVAILABLE"}
    with open(os.path.join(base, "9", "saved_model.pb"), "wb") as fh:
        fh.write(b"not a SavedModel")  # now broken: reported, never served
    httpd.model.manager.refresh()
    status = {s["version"]: s for s in _request(url)[1]["model_version_status"]}
    assert status["9"]["state"] == "END" and status["9"]["status"]["error_code"] == "UNKNOWN"
    assert _request(url + ":predict", {"inputs": rel})[1]["outputs"] == good


@pytest.mark.parametrize(
    "raw, message",
    [
        (b'{"inputs": {"user_id": [1e30]}}', "expected integers"),
        (b'{"inputs": {"user_id": [Infinity]}}', "expected integers"),
        (b'{"inputs": {"user_id": [9223372036854775808]}}', "does not fit in int64"),
        (b'{"inputs": {"user_id": [true]}}', "expected numbers"),
        (b'{"signature_name": ["serving_default"], "inputs": {}}', "must be a string"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_malformed_values_are_400_naming_the_input(managed, raw, message):
    url, _, httpd, rel = managed
    if raw.startswith(b'{"inputs"'):  # the other inputs valid, the one under test bad
        body = json.loads(raw.replace(b"Infinity", b"0").replace(b"1e30", b"0"))
        body["inputs"] = {**rel, **{k: v for k, v in body["inputs"].items()}}
        text = json.dumps(body)
        for bad in ("Infinity", "1e30"):
            if bad.encode() in raw:
                text = text.replace('"user_id": [0]', f'"user_id": [{bad}]')
        raw = text.encode()
    code, body = _request(url + ":predict", raw=raw)
    assert code == 400 and message in body["error"], body
    assert _request(url)[0] == 200


def test_select_top_k_huge_k_and_odd_versions_and_headers(managed):
    url, _, httpd, rel = managed
    code, body = _request(url + ":predict", _select_request(rel, k=2**40))
    assert code == 400 and "does not fit in int32" in body["error"]
    code, body = _request(url + "/versions/%C2%B2:predict", {"inputs": rel})  # '²'
    assert code == 404
    port = httpd.server_address[1]
    for length in (b"abc", b"-1"):
        reply = _raw_http(
            port,
            b"POST /v1/models/ranker:predict HTTP/1.1\r\nHost: x\r\nContent-Length: "
            + length
            + b"\r\n\r\n{}",
        )
        assert reply.startswith(b"HTTP/1.1 400") and b"bad Content-Length" in reply
    big = b"x" * (17 << 20)  # over the 16 MiB default: the client reads a 413
    reply = _raw_http(
        port,
        b"POST /v1/models/ranker:predict HTTP/1.1\r\nHost: x\r\nContent-Length: "
        + str(len(big)).encode()
        + b"\r\n\r\n"
        + big,
    )
    assert reply.startswith(b"HTTP/1.1 413")
    assert _request(url)[0] == 200


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


def test_port_in_use_is_one_line(managed, capsys):
    _, base, httpd, _ = managed
    port = httpd.server_address[1]
    assert main(["serve", "--model-base", base, "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and "Traceback" not in err


# -- gRPC: the official tensorflow-serving-api stubs ----------------------------------


def test_grpc_predict_regress_metadata_status_with_official_stubs(managed, exported):
    import grpc
    from tensorflow_serving.apis import (
        get_model_metadata_pb2,
        get_model_status_pb2,
        model_service_pb2_grpc,
        predict_pb2,
        prediction_service_pb2_grpc,
        regression_pb2,
    )

    from tfrs_debias.serving.grpc_service import make_grpc_server

    url, base, httpd, rel = managed
    model = exported[0]
    server, port = make_grpc_server(httpd.models, port=0, metrics=httpd.metrics)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        predict = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        status = model_service_pb2_grpc.ModelServiceStub(channel)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "ranker"
        for k, v in rel.items():
            request.inputs[k].CopyFrom(tf.make_tensor_proto(np.asarray(v, np.int64)))
        reply = predict.Predict(request, timeout=30)
        assert reply.model_spec.version.value == 3 and reply.model_spec.signature_name == (
            "serving_default"
        )
        probs = model.debiased_probabilities({k: tf.constant(v) for k, v in rel.items()}).numpy()
        np.testing.assert_allclose(tf.make_ndarray(reply.outputs["click"]), probs[:, 0], rtol=1e-5)
        np.testing.assert_allclose(tf.make_ndarray(reply.outputs["score"]), probs.sum(1), rtol=1e-5)
        # The same as REST on the same version.
        rest = _request(url + ":predict", {"inputs": rel})[1]["outputs"]["score"]
        np.testing.assert_allclose(tf.make_ndarray(reply.outputs["score"]), rest, rtol=1e-6)
        # A specific version, and an output filter.
        request.model_spec.version.value = 2
        request.output_filter.append("score")
        reply = predict.Predict(request, timeout=30)
        assert set(reply.outputs) == {"score"}
        np.testing.assert_allclose(tf.make_ndarray(reply.outputs["score"]), probs[:, 1], rtol=1e-5)
        # Regress with tf.Examples (a shared context merged into each) = the served score.
        regress = regression_pb2.RegressionRequest()
        regress.model_spec.name = "ranker"
        group = regress.input.example_list_with_context
        group.context.features.feature["user_id"].int64_list.value.append(rel["user_id"][0])
        group.context.features.feature["user_segment"].int64_list.value.append(
            rel["user_segment"][0]
        )
        for i in range(2):
            example = group.examples.add()
            example.features.feature["item_id"].int64_list.value.append(rel["item_id"][i])
            example.features.feature["item_genre"].int64_list.value.append(rel["item_genre"][i])
        values = [r.value for r in predict.Regress(regress, timeout=30).result.regressions]
        one_user = {
            k: tf.constant([rel[k][0]] * 2 if k.startswith("user") else rel[k]) for k in rel
        }
        expected = model.debiased_probabilities(one_user).numpy().sum(1)
        np.testing.assert_allclose(values, expected, rtol=1e-5)
        meta = get_model_metadata_pb2.GetModelMetadataRequest()
        meta.model_spec.name = "ranker"
        meta.metadata_field.append("signature_def")
        sigmap = get_model_metadata_pb2.SignatureDefMap()
        predict.GetModelMetadata(meta, timeout=30).metadata["signature_def"].Unpack(sigmap)
        assert {"serving_default", "regress", "select_top_k"} <= set(sigmap.signature_def)
        assert "position" not in sigmap.signature_def["serving_default"].inputs
        req = get_model_status_pb2.GetModelStatusRequest()
        req.model_spec.name = "ranker"
        versions = status.GetModelStatus(req, timeout=30).model_version_status
        assert [(v.version, v.state) for v in versions] == [
            (3, get_model_status_pb2.ModelVersionStatus.AVAILABLE),
            (2, get_model_status_pb2.ModelVersionStatus.AVAILABLE),
        ]
        # Client mistakes get TF Serving's codes, and the server keeps serving.
        request.model_spec.version.value = 1
        with pytest.raises(grpc.RpcError) as info:
            predict.Predict(request, timeout=30)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
        request.model_spec.ClearField("version")
        request.inputs["user_id"].CopyFrom(tf.make_tensor_proto(np.asarray([1.5, 2.5])))
        with pytest.raises(grpc.RpcError) as info:
            predict.Predict(request, timeout=30)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "input 'user_id' is float64, expected int64" in info.value.details()
        assert status.GetModelStatus(req, timeout=30).model_version_status
        text = urllib.request.urlopen(url.split("/v1/")[0] + "/monitoring/prometheus/metrics")
        text = text.read().decode()
        assert 'api="grpc",code="OK",model="ranker",verb="Predict"} 2.0' in text
        assert 'api="grpc",code="NOT_FOUND",model="ranker",verb="Predict"} 1.0' in text
        assert 'api="grpc",code="INVALID_ARGUMENT",model="ranker",verb="Predict"} 1.0' in text
    finally:
        channel.close()
        server.stop(grace=None)


def test_model_config_file_labels_and_rollback(managed, tmp_path):
    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    from tfrs_debias.serving.grpc_service import make_grpc_server
    from tfrs_debias.serving.model_config import read_model_config

    _, base, _, rel = managed
    config = tmp_path / "models.config"
    text = """model_config_list {{
      config {{ name: "ranker" base_path: "{base}" model_platform: "tensorflow"
        model_version_policy {{ specific {{ versions: 2 versions: 3 }} }}
        version_labels {{ key: "stable" value: {stable} }}
        version_labels {{ key: "canary" value: 3 }} }}
      config {{ name: "other" base_path: "{base}" }}
    }}"""
    config.write_text(text.format(base=base, stable=2))
    entries = read_model_config(str(config))
    assert [(e.name, e.policy, e.versions, e.label_map) for e in entries][0] == (
        "ranker",
        "specific",
        (2, 3),
        {"canary": 3, "stable": 2},
    )
    httpd = make_server(model_config_file=str(config), port=0, poll_seconds=0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    grpc_server, grpc_port = make_grpc_server(httpd.models, port=0)
    root = f"http://127.0.0.1:{httpd.server_address[1]}/v1/models"
    try:

        def score(path):
            code, body = _request(f"{root}/{path}:predict", {"inputs": rel})
            assert code == 200, body
            return body["outputs"]["score"]

        assert score("ranker/labels/stable") == score("ranker/versions/2")
        assert (
            score("ranker/labels/canary")
            == score("ranker/versions/3")
            != score("ranker/versions/2")
        )
        assert _request(f"{root}/ranker/labels/nope:predict", {"inputs": rel})[0] == 404
        assert _request(f"{root}/ranker/versions/1:predict", {"inputs": rel})[0] == 404
        status = _request(f"{root}/other")[1]["model_version_status"]
        assert [s["version"] for s in status] == ["3"]  # the default policy: latest 1
        channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "ranker"
        request.model_spec.version_label = "canary"
        for k, v in rel.items():
            request.inputs[k].CopyFrom(tf.make_tensor_proto(np.asarray(v, np.int64)))
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        assert stub.Predict(request, timeout=30).model_spec.version.value == 3
        # Rollforward: move "stable" to 3 in the file; the watcher applies it.
        config.write_text(text.format(base=base, stable=3))
        httpd.config_watcher.apply()
        assert score("ranker/labels/stable") == score("ranker/versions/3")
        request.model_spec.version_label = "stable"
        assert stub.Predict(request, timeout=30).model_spec.version.value == 3
        channel.close()
    finally:
        grpc_server.stop(grace=None)
        httpd.shutdown()
        httpd.server_close()
    bad = tmp_path / "bad.config"
    bad.write_text("model_config_list { config { name: 1 } ")
    with pytest.raises(ValueError, match="bad.config: not a TF Serving model config"):
        read_model_config(str(bad))


def test_prometheus_metrics_count_rest_requests_and_versions(managed):
    url, _, _, rel = managed
    root = url.split("/v1/")[0]
    assert _request(url + ":predict", {"inputs": rel})[0] == 200
    assert _request(url + "/versions/1:predict", {"inputs": rel})[0] == 404
    with urllib.request.urlopen(root + "/monitoring/prometheus/metrics") as resp:
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = resp.read().decode()
    line = 'tfrs_debias_requests_total{api="rest",code="200",model="ranker",verb="predict"} 1.0'
    assert line in text
    assert 'code="404",model="ranker",verb="predict"} 1.0' in text
    assert (
        'tfrs_debias_request_latency_seconds_count{api="rest",model="ranker",verb="predict"} 2.0'
        in text
    )
    assert (
        'tfrs_debias_model_version_available{model="ranker",state="AVAILABLE",version="3"} 1.0'
        in text
    )


def test_rest_regress_and_classify_verbs(managed, exported):
    url, _, _, rel = managed
    model = exported[0]
    body = {
        "context": {"user_id": rel["user_id"][0], "user_segment": rel["user_segment"][0]},
        "examples": [
            {"item_id": rel["item_id"][i], "item_genre": rel["item_genre"][i]} for i in range(2)
        ],
    }
    code, reply = _request(url + ":regress", body)
    assert code == 200, reply
    one_user = {k: tf.constant([rel[k][0]] * 2 if k.startswith("user") else rel[k]) for k in rel}
    expected = model.debiased_probabilities(one_user).numpy().sum(1)  # v3 weights (1, 1)
    np.testing.assert_allclose(reply["results"], expected, rtol=1e-5)
    code, reply = _request(url + ":regress", {"examples": [{"item_id": 1.5}]})
    assert code == 400
    code, reply = _request(url + ":regress", {"examples": []})
    assert code == 400 and "non-empty" in reply["error"]
    code, reply = _request(url + ":classify", body)
    assert code == 400 and "classification signature" in reply["error"]


def test_ab_split_routes_each_user_to_one_labelled_version(managed, tmp_path):
    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    from tfrs_debias.serving.grpc_service import make_grpc_server

    _, base, _, rel = managed
    config = tmp_path / "models.config"
    config.write_text(
        f'model_config_list {{ config {{ name: "ranker" base_path: "{base}" '
        "model_version_policy { specific { versions: 2 versions: 3 } } "
        'version_labels { key: "stable" value: 2 } version_labels { key: "canary" value: 3 } '
        "} }"
    )
    with pytest.raises(ValueError, match=r"labels \['blue'\] are not labels"):
        make_server(model_config_file=str(config), port=0, poll_seconds=0, ab_split={"blue": 1})
    httpd = make_server(
        model_config_file=str(config),
        port=0,
        poll_seconds=0,
        ab_split={"stable": 75, "canary": 25},
    )
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    grpc_server, grpc_port = make_grpc_server(httpd.models, port=0)
    url = f"http://127.0.0.1:{httpd.server_address[1]}/v1/models/ranker"
    try:
        served = {}
        for user in range(200):
            inputs = {**rel, "user_id": [user] * 2}
            code, body = _request(url + ":predict", {"inputs": inputs})
            assert code == 200
            served[user] = body["model_version"]
            # The same user always gets the same version, and its scores are that version's.
            again = _request(url + ":predict", {"inputs": inputs})[1]
            assert again["model_version"] == served[user]
            if user < 3:
                direct = _request(f"{url}/versions/{served[user]}:predict", {"inputs": inputs})
                assert direct[1]["outputs"] == body["outputs"]
        canary = sum(v == "3" for v in served.values()) / len(served)
        assert 0.15 < canary < 0.35  # 25% of users, by a hash of the user id
        # An explicit version or label is not re-routed.
        assert _request(url + "/versions/2:predict", {"inputs": rel})[1]["model_version"] == "2"
        # gRPC routes the same user to the same version.
        stub = prediction_service_pb2_grpc.PredictionServiceStub(
            grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
        )
        for user in (0, 1, 2, 3, 4):
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "ranker"
            for k, v in {**rel, "user_id": [user] * 2}.items():
                request.inputs[k].CopyFrom(tf.make_tensor_proto(np.asarray(v, np.int64)))
            version = stub.Predict(request, timeout=30).model_spec.version.value
            assert str(version) == served[user]
    finally:
        grpc_server.stop(grace=None)
        httpd.shutdown()
        httpd.server_close()


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


def test_requests_over_the_batch_limit_are_413(managed):
    url, _, httpd, rel = managed
    httpd.model.max_batch = 1  # rel has 2 rows
    try:
        code, body = _request(url + ":predict", {"inputs": rel})
        assert code == 413 and "more than the limit of 1 (--max-batch)" in body["error"]
        examples = [{"item_id": i, "item_genre": 1} for i in range(2)]
        assert _request(url + ":regress", {"examples": examples})[0] == 413
    finally:
        httpd.model.max_batch = 50_000
    assert _request(url + ":predict", {"inputs": rel})[0] == 200
