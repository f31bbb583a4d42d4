"""On-disk uint8 dataset caches: converted once, then memory-mapped by every run.

A cache is a directory ``<cache_dir>/<name>-<hash>`` (``hash``: the first 16 hex digits of the
SHA-256 of the canonical JSON of the source parameters) holding

- ``images.npy`` uint8 ``[N, H, W, 3]`` and ``labels.npy`` uint8 ``[N, H, W]``,
- ``meta.json``: the parameters and shapes, written last (temp file + ``os.replace``); a cache
  is complete exactly when it exists,
- while converting: ``progress.json`` (records done so far, updated after each flushed chunk, so a
  rerun resumes there) and ``lock``, ``fcntl.flock``-ed by the converting process, so concurrent
  workers wait for one conversion instead of racing.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from monetk.io import atomic_write_json

#: ``produce(start)`` yields ``(images, labels)`` chunks of records ``start, start + 1, ...``.
Producer = Callable[[int], Iterator[tuple[np.ndarray, np.ndarray]]]
#: ``on_progress(done, total)`` is called after every chunk is safely on disk.
ProgressHook = Callable[[int, int], None]


class CacheError(RuntimeError):
    """A cache directory is inconsistent, or a producer broke its contract."""


@dataclass(frozen=True)
class CachedDataset:
    """A complete cache, memory-mapped read-only."""

    path: Path
    images: np.ndarray
    labels: np.ndarray
    meta: dict[str, Any]


def cache_key(params: Mapping[str, Any]) -> str:
    """Short hash of the canonical JSON of ``params`` (sorted keys, no whitespace)."""
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def cache_path(cache_dir: str | os.PathLike, name: str, params: Mapping[str, Any]) -> Path:
    """The cache directory of a source called ``name`` with parameters ``params``."""
    return Path(cache_dir) / f"{name}-{cache_key(params)}"


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def load_cache(path: str | os.PathLike) -> CachedDataset | None:
    """The cache at ``path`` if it is complete, else ``None``."""
    path = Path(path)
    meta = _read_json(path / "meta.json")
    if meta is None:
        return None
    images = np.load(path / "images.npy", mmap_mode="r")
    labels = np.load(path / "labels.npy", mmap_mode="r")
    n, size = meta["num_records"], meta["image_size"]
    if images.shape != (n, size, size, 3) or labels.shape != (n, size, size):
        raise CacheError(
            f"{path}: arrays {images.shape}, {labels.shape} do not match meta.json "
            f"({n} records of {size} px); delete the directory to rebuild it"
        )
    return CachedDataset(path, images, labels, meta)


def _open_arrays(path: Path, total: int, size: int, mode: str) -> tuple[np.ndarray, np.ndarray]:
    shapes = {"images": (total, size, size, 3), "labels": (total, size, size)}
    arrays = []
    for name, shape in shapes.items():
        file = path / f"{name}.npy"
        if mode == "w+":
            arrays.append(np.lib.format.open_memmap(file, "w+", dtype=np.uint8, shape=shape))
            continue
        array = np.lib.format.open_memmap(file, "r+")
        if array.shape != shape or array.dtype != np.uint8:
            raise ValueError(f"{file}: {array.dtype} {array.shape}, expected uint8 {shape}")
        arrays.append(array)
    return arrays[0], arrays[1]


def _resume_or_start(
    path: Path, params: Mapping[str, Any], image_size: int, count: Callable[[], int]
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Open the arrays of an interrupted conversion, or preallocate fresh ones."""
    progress = _read_json(path / "progress.json")
    if progress is not None and progress.get("params") == params:
        total, done = progress["total"], progress["done"]
        try:
            images, labels = _open_arrays(path, total, image_size, "r+")
            return images, labels, done, total
        except (OSError, ValueError):
            pass  # unusable leftovers: start over
    total = count()
    images, labels = _open_arrays(path, total, image_size, "w+")
    atomic_write_json(path / "progress.json", {"params": params, "total": total, "done": 0})
    return images, labels, 0, total


def _convert(
    path: Path,
    params: Mapping[str, Any],
    image_size: int,
    count: Callable[[], int],
    produce: Producer,
    on_progress: ProgressHook | None,
) -> None:
    images, labels, done, total = _resume_or_start(path, params, image_size, count)
    chunks = produce(done) if done < total else iter(())
    with tqdm(total=total, initial=done, unit="img", desc=f"caching {path.name}") as bar:
        for chunk_images, chunk_labels in chunks:
            k = len(chunk_images)
            expected = (k, image_size, image_size)
            if chunk_images.shape != (*expected, 3) or chunk_labels.shape != expected:
                raise CacheError(
                    f"{path.name}: producer gave chunks {chunk_images.shape}, "
                    f"{chunk_labels.shape}; expected {(*expected, 3)} and {expected}"
                )
            if done + k > total:
                raise CacheError(f"{path.name}: producer gave more than the {total} records")
            images[done : done + k] = chunk_images
            labels[done : done + k] = chunk_labels
            images.flush()
            labels.flush()
            done += k
            progress = {"params": params, "total": total, "done": done}
            atomic_write_json(path / "progress.json", progress)
            bar.update(k)
            if on_progress is not None:
                on_progress(done, total)
    if done != total:
        raise CacheError(f"{path.name}: producer stopped after {done} of {total} records")
    del images, labels  # close the memory maps before marking the cache complete
    meta = {"params": dict(params), "num_records": total, "image_size": image_size}
    atomic_write_json(path / "meta.json", meta)
    (path / "progress.json").unlink()


def cached_dataset(
    cache_dir: str | os.PathLike,
    name: str,
    params: Mapping[str, Any],
    image_size: int,
    count: Callable[[], int],
    produce: Producer,
    on_progress: ProgressHook | None = None,
) -> CachedDataset:
    """Load the cache of ``params``, converting it first if it is missing or incomplete.

    ``params`` (JSON-serialisable) identify the source; ``count()`` gives the number of records
    (called once per fresh conversion); ``produce(start)`` yields uint8 chunks of records from
    ``start`` on, each ``image_size`` pixels a side. An interrupted conversion resumes where its
    last chunk ended. Concurrent callers wait on the directory's lock; one converts.
    """
    params = json.loads(json.dumps(params))  # canonical JSON types: what progress.json stores
    path = cache_path(cache_dir, name, params)
    cached = load_cache(path)
    if cached is not None:
        return cached
    path.mkdir(parents=True, exist_ok=True)
    with open(path / "lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            cached = load_cache(path)  # another process may have finished meanwhile
            if cached is None:
                _convert(path, params, image_size, count, produce, on_progress)
                cached = load_cache(path)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return cached
