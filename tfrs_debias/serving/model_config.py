"""`ModelEntry` and `read_model_config`: TF Serving's model config file (the text format
of ``ModelServerConfig``, parsed with TF Serving's own proto), so the file a deployment
already has drives ``tfrs-debias serve --model-config-file``::

    model_config_list {
      config {
        name: "ranker"
        base_path: "/models/ranker"
        model_platform: "tensorflow"
        model_version_policy { specific { versions: 3 versions: 4 } }
        version_labels { key: "stable" value: 3 }
        version_labels { key: "canary" value: 4 }
      }
    }

Rollback is moving a label: edit the file; the server re-reads it when it changes.
"""

from __future__ import annotations

import dataclasses
import os

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from tfrs_debias.backend import tf
from tfrs_debias.data.io.files import is_url


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """One served model: where its versions are, which are served, and their labels."""

    name: str
    base_path: str
    policy: str = "latest"
    num_versions: int = 1
    versions: tuple[int, ...] = ()
    labels: tuple[tuple[str, int], ...] = ()

    @property
    def label_map(self) -> dict[str, int]:
        return dict(self.labels)


def read_model_config(path: str) -> list[ModelEntry]:
    """The models of a TF Serving model config file; a relative ``base_path`` is taken
    relative to the file's folder. Errors name the file and what is wrong."""
    try:
        with tf.io.gfile.GFile(path, "r") as fh:
            text = fh.read()
    except tf.errors.OpError as err:
        raise FileNotFoundError(f"{path}: cannot read the model config ({err.message})") from None
    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as err:
        raise ValueError(f"{path}: not a TF Serving model config ({err})") from None
    if config.WhichOneof("config") != "model_config_list" or not config.model_config_list.config:
        raise ValueError(f"{path}: needs a model_config_list with at least one config")
    entries, names = [], set()
    for c in config.model_config_list.config:
        if not c.name or not c.base_path:
            raise ValueError(f"{path}: every config needs a name and a base_path")
        if c.name in names:
            raise ValueError(f"{path}: model {c.name!r} is configured twice")
        names.add(c.name)
        if c.model_platform and c.model_platform != "tensorflow":
            raise ValueError(f"{path}: model {c.name!r}: platform must be tensorflow")
        base = c.base_path
        if not is_url(base) and not os.path.isabs(base):
            base = os.path.join(os.path.dirname(os.path.abspath(path)), base)
        kind = c.model_version_policy.WhichOneof("policy_choice") or "latest"
        versions = tuple(int(v) for v in c.model_version_policy.specific.versions)
        if kind == "specific" and not versions:
            raise ValueError(f"{path}: model {c.name!r}: the specific policy lists no versions")
        num = c.model_version_policy.latest.num_versions or 1
        entries.append(
            ModelEntry(
                c.name,
                base,
                kind,
                num,
                versions,
                tuple(sorted((k, int(v)) for k, v in c.version_labels.items())),
            )
        )
    return entries
