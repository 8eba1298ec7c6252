"""Fixtures shared by this package's tests (built once per package)."""

import os
import shutil
import threading

import pytest

from tests.serving.support import SMALL, relevance_inputs
from tfrs_debias.data import make_dataset
from tfrs_debias.models import EstimatorConfig
from tfrs_debias.schema import ImpressionSchema
from tfrs_debias.serving import export_saved_model, make_server
from tfrs_debias.training import train


@pytest.fixture(scope="package")
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


@pytest.fixture(scope="package")
def three_versions(exported, tmp_path_factory):
    """A model base with versions 1-3 (value weights click, like, both), exported once
    and copied by each `managed` server."""
    model = exported[0]
    base = str(tmp_path_factory.mktemp("three_versions") / "ranker")
    for weights in ([1.0, 0.0], [0.0, 1.0], [1.0, 1.0]):
        export_saved_model(model, base, value_weights=weights)
    return base


@pytest.fixture()
def managed(exported, three_versions, tmp_path):
    """A server over its own copy of `three_versions`, polling disabled: the test calls
    ``refresh()`` where the poller would run."""
    model, _, _, batch, _ = exported
    base = str(tmp_path / "models" / "ranker")
    shutil.copytree(three_versions, base)
    httpd = make_server(base, port=0, poll_seconds=0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    rel = {k: v.numpy().tolist()[:2] for k, v in relevance_inputs(batch, model).items()}
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1/models/ranker", base, httpd, rel
    httpd.shutdown()
    httpd.server_close()


# Per test module: a module may add versions to its server's base.
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
