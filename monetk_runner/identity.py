"""A run's identity: a hash of its fully resolved training config.

The dataset's and the condition's names are not in the config, so two conditions (or two specs)
that resolve to the same training config are one run. Values that only say where or how fast a
run executes (:data:`EXECUTION_ONLY`) are left out of the hash. Numbers are normalised first, so
``beta: 0`` and ``beta: 0.0`` are the same run. The hash also covers
:data:`monetk.NUMERICS_VERSION`, so a run whose config is unchanged gets a new id when monetk's
numerics change (0.2's runs keep their old ids and are never served to 0.3).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any

from monetk import NUMERICS_VERSION
from monetk.config import DEFAULTS

#: Config keys that do not change what is trained: the data cache folder, torch's thread count,
#: the TensorBoard switch and the callbacks a spec adds (loggers; monetk 0.3 added the last two,
#: and a key left out of the hash, absent or not, keeps every earlier id).
EXECUTION_ONLY = (("data", "cache_dir"), ("train", "threads"), ("train", "tensorboard"),
                  ("train", "callbacks"))
#: Execution-only keys that were hashed before they were known to be: hashed at their old default,
#: so the ids of earlier runs that kept it stay valid (``train.compile`` defaulted to ``false``
#: until monetk 0.2; a 0.1 run that set it ``true`` gets a new id).
PINNED_IN_HASH = {("train", "compile"): False}
#: Training keys added after monetk 0.3, left out of the hash while at these defaults, so that every
#: earlier run keeps its id; a run that sets one gets a new id.
HASHED_WHEN_SET = {("train", "warmup_steps"): 0, ("train", "lr_decay"): "none",
                   ("train", "lr_final_ratio"): 0.0}
CONTINUE_KEY = ("train", "continue_after_stop")


def normalize(config: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``config`` with integers turned into floats where :data:`DEFAULTS` holds floats."""
    return _normalize(config, DEFAULTS)


def _normalize(value: Any, default: Any) -> Any:
    if isinstance(value, dict):
        defaults = default if isinstance(default, dict) else {}
        return {key: _normalize(item, defaults.get(key)) for key, item in value.items()}
    if isinstance(value, list):
        floats = (
            isinstance(default, list)
            and bool(default)
            and all(isinstance(d, float) for d in default)
        )
        return [float(v) if floats and _is_int(v) else _normalize(v, None) for v in value]
    if _is_int(value) and isinstance(default, float):
        return float(value)
    return value  # JSON scalars are immutable


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def run_id(config: Mapping[str, Any]) -> str:
    """16 hex digits of the SHA-256 of the normalised config without :data:`EXECUTION_ONLY` keys
    (nor :data:`HASHED_WHEN_SET` keys at their defaults),
    with :data:`PINNED_IN_HASH` keys at their pinned values, ``numerics`` =
    :data:`monetk.NUMERICS_VERSION` (absent before monetk 0.3, whose numerics were version 2),
    and a data file by its name, not its folder (moving the data keeps every run)."""
    view = normalize(config)
    path = view.get("data", {}).get("path")
    if isinstance(path, str):
        view["data"]["path"] = os.path.basename(os.path.normpath(path))
    for section, key in EXECUTION_ONLY:
        view.get(section, {}).pop(key, None)
    for (section, key), default in HASHED_WHEN_SET.items():
        if view.get(section, {}).get(key, default) == default:
            view.get(section, {}).pop(key, None)
    for (section, key), value in PINNED_IN_HASH.items():
        if key in view.get(section, {}):
            view[section][key] = value
    view["numerics"] = NUMERICS_VERSION
    text = json.dumps(view, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def with_continue(config: Mapping[str, Any], continued: bool) -> dict[str, Any]:
    """``config`` with ``train.continue_after_stop`` = ``continued`` (shares unchanged sections)."""
    section, key = CONTINUE_KEY
    return {**config, section: {**config[section], key: continued}}
