import gc
import os
import shutil
import weakref

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from tests.serving.support import PLAIN_SELECT, relevance_inputs
from tfrs_debias.serving.loaded_export import warmup_inputs
from tfrs_debias.serving.session_servable import SessionServable, import_meta_graph_in_pieces


def _inputs(name, specs, batch, model):
    """Real inputs for each signature of the export: the batch's features, its rows as
    serialized tf.Examples, or the selector's knobs."""
    rel = {k: v.numpy() for k, v in relevance_inputs(batch, model).items()}
    if set(specs) <= set(batch):
        return {k: batch[k].numpy() for k in specs}
    if len(specs) == 1 and next(iter(specs.values())).dtype == tf.string:
        examples = []
        for i in range(len(next(iter(rel.values())))):
            ex = tf.train.Example()
            for k, v in rel.items():
                ex.features.feature[k].int64_list.value.append(int(v[i]))
            examples.append(ex.SerializeToString())
        return {next(iter(specs)): np.array(examples, dtype=object)}
    out = warmup_inputs(specs, rows=3)
    for k in specs:
        if k in PLAIN_SELECT:
            out[k] = np.asarray(PLAIN_SELECT[k], dtype=specs[k].dtype.as_numpy_dtype)
        elif k in rel:
            out[k] = rel[k][0] if specs[k].shape.rank == 0 else rel[k][:1]
    return out


def test_every_signature_answers_as_tf_saved_model_load_does(exported):
    model, _, path, batch, _ = exported
    reference = tf.saved_model.load(path)
    servable = SessionServable(path)
    assert set(servable.signatures) == set(reference.signatures)
    for name, fn in reference.signatures.items():
        specs = fn.structured_input_signature[1]
        session_fn = servable.signatures[name]
        assert session_fn.structured_input_signature[1] == specs, name
        assert set(session_fn.structured_outputs) == set(fn.structured_outputs), name
        inputs = _inputs(name, specs, batch, model)
        expected = fn(**{k: tf.constant(v, specs[k].dtype) for k, v in inputs.items()})
        got = session_fn.run(inputs)
        assert set(got) == set(expected), name
        for key, value in expected.items():
            np.testing.assert_allclose(got[key], value.numpy(), rtol=1e-6, err_msg=name)


def test_the_graph_in_pieces_is_the_graph_of_one_import(exported):
    path = exported[2]
    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as fh:
        saved_model.ParseFromString(fh.read())
    graph_def = saved_model.meta_graphs[0].graph_def
    whole, pieces = tf.Graph(), tf.Graph()
    with whole.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    with pieces.as_default():
        import_meta_graph_in_pieces(pieces, graph_def)

    def summary(graph):
        return {
            op.name: (
                op.type,
                tuple(t.name for t in op.inputs),
                tuple(sorted(c.name for c in op.control_inputs)),
            )
            for op in graph.get_operations()
        }

    assert summary(pieces) == summary(whole)
    assert len(summary(whole)) == len(graph_def.node)
    functions = {f.signature.name for f in graph_def.library.function}
    library = pieces.as_graph_def().library
    assert {f.signature.name for f in library.function} == functions


def test_a_version_is_few_python_objects(exported):
    """What a full garbage collection walks per served version (the hot-reload pause):
    the same export through `tf.saved_model.load` (negative control) is ~20x more."""
    path = exported[2]

    def tracked_after(load):
        gc.collect()
        before = len(gc.get_objects())
        loaded = load(path)
        gc.collect()
        return len(gc.get_objects()) - before, loaded

    session_objects, servable = tracked_after(SessionServable)
    eager_objects, _ = tracked_after(tf.saved_model.load)
    assert servable.signatures
    assert session_objects < 3000
    assert eager_objects > 4 * session_objects


def test_a_folder_that_is_not_a_saved_model_is_an_error(exported, tmp_path):
    path = exported[2]
    broken = tmp_path / "7"
    shutil.copytree(path, broken)
    (broken / "saved_model.pb").write_bytes(b"\x00 not a proto")
    with pytest.raises(ValueError, match=r"7/saved_model\.pb: not a SavedModel \(Error parsing"):
        SessionServable(str(broken))
    with pytest.raises(ValueError, match="no MetaGraph tagged"):
        SessionServable(path, tags=("train",))
    shutil.rmtree(broken / "variables")
    shutil.copy(os.path.join(path, "saved_model.pb"), broken / "saved_model.pb")
    with pytest.raises(tf.errors.OpError):
        SessionServable(str(broken))


def test_warm_up_replays_the_exports_warmup_requests(exported):
    """The manager warms a version with the export's own warm-up requests (8 rows of
    ``serving_default``); without the file, one row of placeholders."""
    from tfrs_debias.serving.model_manager import _warm_up

    model, _, path, _, _ = exported
    servable = SessionServable(path)
    calls = []

    class Recording:
        def __init__(self, name):
            self.name, self.fn = name, servable.signatures[name]
            self.structured_input_signature = self.fn.structured_input_signature

        def run(self, arrays):
            calls.append((self.name, {k: v.shape for k, v in arrays.items()}))
            return self.fn.run(arrays)

    servable.signatures = {name: Recording(name) for name in servable.signatures}
    _warm_up(servable, path)
    served = {f.name for f in model.served_features}
    assert calls == [("serving_default", {k: (8,) for k in served})]
    calls.clear()
    _warm_up(servable, None)
    assert calls == [("serving_default", {k: (1,) for k in served})]


def test_a_dropped_version_leaves_nothing_behind(exported):
    """Versions come and go for the life of a server: once dropped, a version's session,
    graph and signatures are freed (40 load/drop cycles by hand: RSS flat at 614 MB)."""
    path = exported[2]
    refs = []
    for _ in range(3):
        servable = SessionServable(path)
        fn = servable.signatures["serving_default"]
        fn.run(warmup_inputs(fn.structured_input_signature[1]))
        refs += [weakref.ref(x) for x in (servable, servable.session, servable.graph, fn)]
        del servable, fn
    gc.collect()
    assert [r for r in refs if r() is not None] == []


def test_a_version_loads_from_any_tensorflow_filesystem(exported):
    path = exported[2]
    remote = "ram://session_servable/ranker/1"
    for root, _, files in os.walk(path):
        relative = os.path.relpath(root, path)
        folder = remote if relative == "." else f"{remote}/{relative}"
        tf.io.gfile.makedirs(folder)
        for name in files:
            tf.io.gfile.copy(os.path.join(root, name), os.path.join(folder, name), True)
    local, far = SessionServable(path), SessionServable(remote)
    fn = local.signatures["serving_default"]
    inputs = warmup_inputs(fn.structured_input_signature[1], rows=4)
    expected = fn.run(inputs)
    got = far.signatures["serving_default"].run(inputs)
    for key, value in expected.items():
        np.testing.assert_array_equal(got[key], value)
