"""`GroundTruth`: what the model cannot see and evaluation compares against.

For held-out test users: a candidate set drawn the way the candidate generator draws
them, with the true relevance of each candidate per task; the true examination curve
per device; activity and popularity counts for bucketed metrics. Stored as
``truth.npz`` (arrays) + ``truth.json`` (curves, metadata) next to the logs.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import zipfile
from typing import Any

import numpy as np

from tfrs_debias.backend import tf


@dataclasses.dataclass
class GroundTruth:
    """True relevance of test candidates and the true examination curves.

    Attributes:
      users: ``[N]`` test user ids.
      candidates: ``[N, C]`` candidate item ids, ``-1`` where a user has fewer.
      relevance: task -> ``[N, C]`` true relevance in [0, 1] (NaN for padding).
      user_train_impressions: ``[N]`` training impressions of each test user.
      candidate_train_impressions: ``[N, C]`` training impressions of each candidate.
      user_features: side feature -> ``[N]`` value for each test user.
      item_features: side feature -> ``[N, C]`` value for each candidate.
      devices: device names, the rows of ``examination``.
      examination: ``[num_devices, num_positions]`` true examination probability.
      metadata: free-form (source, config, summary statistics).
    """

    users: np.ndarray
    candidates: np.ndarray
    relevance: dict[str, np.ndarray]
    user_train_impressions: np.ndarray
    candidate_train_impressions: np.ndarray
    user_features: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    item_features: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    devices: tuple[str, ...] = ()
    examination: np.ndarray | None = None
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def mask(self) -> np.ndarray:
        """``[N, C]`` True where a candidate is real (not padding)."""
        return self.candidates >= 0

    def save(self, out_dir: str) -> None:
        arrays = {
            "users": self.users,
            "candidates": self.candidates,
            "user_train_impressions": self.user_train_impressions,
            "candidate_train_impressions": self.candidate_train_impressions,
        }
        arrays.update({f"relevance/{k}": v for k, v in self.relevance.items()})
        arrays.update({f"user_features/{k}": v for k, v in self.user_features.items()})
        arrays.update({f"item_features/{k}": v for k, v in self.item_features.items()})
        meta = {
            "devices": list(self.devices),
            "examination": None if self.examination is None else self.examination.tolist(),
            "tasks": list(self.relevance),
            "metadata": self.metadata,
        }
        tmp_npz = os.path.join(out_dir, f".truth.npz.tmp-{os.getpid()}.npz")
        tmp_json = os.path.join(out_dir, f".truth.json.tmp-{os.getpid()}")
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]  # (numpy stubs)
        with tf.io.gfile.GFile(tmp_npz, "wb") as fh:
            fh.write(buffer.getvalue())
        with tf.io.gfile.GFile(tmp_json, "w") as fh:
            fh.write(json.dumps(meta, indent=2, default=_json_default) + "\n")
        tf.io.gfile.rename(tmp_npz, os.path.join(out_dir, "truth.npz"), overwrite=True)
        tf.io.gfile.rename(tmp_json, os.path.join(out_dir, "truth.json"), overwrite=True)

    @classmethod
    def load(cls, data_dir: str) -> GroundTruth:
        npz_path = os.path.join(data_dir, "truth.npz")
        json_path = os.path.join(data_dir, "truth.json")
        for path in (npz_path, json_path):
            if not tf.io.gfile.exists(path):
                raise FileNotFoundError(f"{path}: no truth file (written by simulate/movielens)")
        try:
            with tf.io.gfile.GFile(json_path, "r") as fh:
                meta = json.load(fh)
        except (ValueError, UnicodeDecodeError) as err:
            raise ValueError(f"{json_path}: not a truth file ({err})") from None
        try:
            with tf.io.gfile.GFile(npz_path, "rb") as fh, np.load(io.BytesIO(fh.read())) as z:
                arrays = {k: z[k] for k in z.files}
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
            raise ValueError(f"{npz_path}: not a readable truth file ({err})") from None
        missing = [
            k
            for k in (
                "users",
                "candidates",
                "user_train_impressions",
                "candidate_train_impressions",
            )
            if k not in arrays
        ]
        if missing or not any(k.startswith("relevance/") for k in arrays):
            raise ValueError(f"{npz_path}: truth file lacks {missing or ['relevance/*']}")
        shape = arrays["candidates"].shape
        for key, value in arrays.items():
            if key.startswith("relevance/") and value.shape != shape:
                raise ValueError(f"{npz_path}: {key} has shape {value.shape}, candidates {shape}")

        def group(prefix: str) -> dict[str, np.ndarray]:
            return {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith(prefix)}

        exam = meta.get("examination")
        return cls(
            users=arrays["users"],
            candidates=arrays["candidates"],
            relevance=group("relevance/"),
            user_train_impressions=arrays["user_train_impressions"],
            candidate_train_impressions=arrays["candidate_train_impressions"],
            user_features=group("user_features/"),
            item_features=group("item_features/"),
            devices=tuple(meta.get("devices", ())),
            examination=None if exam is None else np.asarray(exam),
            metadata=meta.get("metadata", {}),
        )


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value)}")


def count_lookup(keys: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """``values`` at the position of each ``query`` in sorted ``keys``; 0 where absent
    (training-impression counts of users / candidates)."""
    if len(keys) == 0:
        return np.zeros(np.shape(query), np.int64)
    pos = np.clip(np.searchsorted(keys, query), 0, len(keys) - 1)
    return np.where(keys[pos] == query, values[pos], 0).astype(np.int64)
