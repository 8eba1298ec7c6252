import os
import shutil
import time

import numpy as np
import pytest

from tests.serving.support import relevance_inputs, rest_request
from tfrs_debias.serving import export_saved_model, model_manager


def _wait_for(url, condition, seconds=20):
    """Polls the status until ``condition(model_version_status)`` holds (the manager loads
    new versions in the background, every 1 s by default)."""
    deadline = time.time() + seconds
    while True:
        status = rest_request(url)[1]["model_version_status"]
        if condition(status):
            return status
        assert time.time() < deadline, status
        time.sleep(0.2)


def test_new_version_is_picked_up_without_restart(server, exported):
    # Last test of the module: it adds version 2 to the shared server's model base.
    url, base = server
    model, _, _, batch, _ = exported
    rel = {k: v.numpy().tolist()[:2] for k, v in relevance_inputs(batch, model).items()}
    before = rest_request(url + ":predict", {"inputs": rel})[1]["outputs"]["score"]
    export_saved_model(model, base, value_weights=[0.0, 10.0])
    _wait_for(url, lambda status: status[0]["version"] == "2")
    after = rest_request(url + ":predict", {"inputs": rel})[1]["outputs"]
    np.testing.assert_allclose(after["score"], np.asarray(after["like"]) * 10, rtol=1e-5)
    assert after["score"] != before
    assert (
        rest_request(url + "/versions/1:predict", {"inputs": rel})[1]["outputs"]["score"] == before
    )


def test_versions_outside_the_policy_are_404_not_500(managed):
    url, base, httpd, rel = managed
    status = rest_request(url)[1]["model_version_status"]
    assert [s["version"] for s in status] == ["3", "2"]  # latest 2 served
    for _ in range(3):  # used to load v1, evict it at once and answer 500 (~1 s each)
        start = time.time()
        code, body = rest_request(url + "/versions/1:predict", {"inputs": rel})
        assert code == 404 and "Specific(ranker, 1)" in body["error"]
        assert time.time() - start < 0.5
    code, body = rest_request(url + "/versions/2:predict", {"inputs": rel})
    assert code == 200
    np.testing.assert_allclose(body["outputs"]["score"], body["outputs"]["like"], rtol=1e-6)


def test_force_reexport_is_served_after_reload_not_stale(managed, exported):
    url, base, httpd, rel = managed
    model = exported[0]
    before = rest_request(url + "/versions/3:predict", {"inputs": rel})[1]["outputs"]
    export_saved_model(model, base, version=3, value_weights=[0.0, 5.0], force=True)
    httpd.model.manager.refresh()
    after = rest_request(url + "/versions/3:predict", {"inputs": rel})[1]["outputs"]
    np.testing.assert_allclose(after["score"], np.asarray(after["like"]) * 5, rtol=1e-5)
    assert after["score"] != before["score"]


def test_partial_version_folder_keeps_the_previous_version_serving(managed):
    url, base, httpd, rel = managed
    good = rest_request(url + ":predict", {"inputs": rel})[1]["outputs"]
    os.makedirs(os.path.join(base, "9"))  # an empty (half-copied) version folder
    httpd.model.manager.refresh()
    code, body = rest_request(url + ":predict", {"inputs": rel})
    assert code == 200 and body["outputs"] == good  # still version 3
    states = {s["version"]: s["state"] for s in rest_request(url)[1]["model_version_status"]}
    assert states == {"9": "LOADING", "3": "AVAILABLE"}
    with open(os.path.join(base, "9", "saved_model.pb"), "wb") as fh:
        fh.write(b"not a SavedModel")  # now broken: reported, never served
    httpd.model.manager.refresh()
    status = {s["version"]: s for s in rest_request(url)[1]["model_version_status"]}
    assert status["9"]["state"] == "END" and status["9"]["status"]["error_code"] == "UNKNOWN"
    assert rest_request(url + ":predict", {"inputs": rel})[1]["outputs"] == good


class _Sentinel:
    """Stands in for a loaded version; records whether the manager's lock was held when
    it was freed."""

    def __init__(self, manager, freed):
        self.manager, self.freed = manager, freed

    def __del__(self):
        self.freed.append(self.manager._lock.locked())


def test_versions_leave_service_outside_the_lock_and_later_loads_are_throttled(
    managed, monkeypatch
):
    url, base, httpd, rel = managed
    manager = httpd.model.manager
    duties = []

    class Recorder(model_manager.LoadThrottle):
        def __init__(self, duty_cycle):
            duties.append(duty_cycle)
            super().__init__(duty_cycle)

    monkeypatch.setattr(model_manager, "LoadThrottle", Recorder)
    freed = []
    manager._states[2].servable = _Sentinel(manager, freed)
    shutil.copytree(os.path.join(base, "1"), os.path.join(base, "4"))
    manager.refresh()  # serves 4 and 3: version 2 leaves service
    assert [s.version for s in manager.states()] == [4, 3] and freed == [False]
    manager._states[4].servable = _Sentinel(manager, freed)
    shutil.rmtree(os.path.join(base, "4"))  # a --force re-export of version 4
    shutil.copytree(os.path.join(base, "3"), os.path.join(base, "4"), copy_function=shutil.copyfile)
    manager.refresh()
    assert freed == [False, False]
    # Two loads and two versions let go, each throttled; the loads at start were not.
    assert duties == [pytest.approx(1 / 3)] * 4
    code, body = rest_request(url + "/versions/4:predict", {"inputs": rel})
    assert code == 200
    assert (
        body["outputs"] == rest_request(url + "/versions/3:predict", {"inputs": rel})[1]["outputs"]
    )


@pytest.mark.parametrize("duty", [0, -0.5, 1.5])
def test_load_duty_cycle_must_be_a_share(tmp_path, duty):
    with pytest.raises(ValueError, match="load_duty_cycle must be in"):
        model_manager.ModelManager(str(tmp_path), load_duty_cycle=duty)
