"""Checkpoints: a model, its optimizer, schedule, RNG states and progress in one ``.npz`` file.

Format (version 1): an uncompressed NumPy ``.npz`` archive, read with ``allow_pickle=False``:

    __header__            uint8 array holding UTF-8 JSON: format name and version, library
                          version, model config, optimizer hyper-parameters and step count,
                          schedule state, RNG bit-generator states, history, user metadata, and
                          a manifest {key: shape, dtype, sha256} of every array below
    model/<name>          every parameter and buffer, as in ``model.state_dict()``
    optim/<i>/<key>       optimizer state of parameter i (e.g. ``optim/3/m``)

No pickle anywhere. Writes are atomic: a temporary file in the target directory, fsync, then
``os.replace``, so a crash leaves either the old file or the new one. Reading checks the
manifest (every key, shape, dtype and checksum) and names what is wrong; truncated or corrupted
files raise CheckpointError.
"""
import dataclasses
import hashlib
import json
import os
import tempfile
import time
import zipfile
import zlib

import numpy as np

__all__ = ["CheckpointError", "LoadedCheckpoint", "save", "load", "load_into", "read"]

FORMAT = "fastcnn-checkpoint"
FORMAT_VERSION = 1
_HEADER = "__header__"


class CheckpointError(ValueError):
    """A checkpoint file is unreadable, truncated, corrupted or does not match the model."""


# -- JSON helpers for RNG states (PCG64 holds 128-bit ints, MT19937 holds an array) -----------

def _to_json(obj):
    if isinstance(obj, dict):
        return {str(k): _to_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_json(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return {"__ndarray__": obj.tolist(), "dtype": obj.dtype.str}
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _from_json(obj):
    if isinstance(obj, dict):
        if "__ndarray__" in obj:
            return np.array(obj["__ndarray__"], dtype=np.dtype(obj["dtype"]))
        return {k: _from_json(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_from_json(v) for v in obj]
    return obj


def rng_state(rng):
    """JSON-able state of a Generator's bit generator."""
    return _to_json(rng.bit_generator.state)


def rng_from_state(state):
    """A Generator whose bit generator has exactly ``state`` (from ``rng_state``)."""
    state = _from_json(state)
    name = state.get("bit_generator")
    cls = getattr(np.random, str(name), None)
    if cls is None or not isinstance(cls, type) or not issubclass(cls, np.random.BitGenerator):
        raise CheckpointError(f"unknown bit generator {name!r} in checkpoint")
    bitgen = cls()
    bitgen.state = state
    return np.random.Generator(bitgen)


def _layer_rngs(model):
    return {name: m for name, m in model.named_modules()
            if isinstance(getattr(m, "rng", None), np.random.Generator)}


def _sha256(a):
    return hashlib.sha256(np.ascontiguousarray(a).view(np.uint8).reshape(-1)).hexdigest() \
        if a.size else hashlib.sha256(b"").hexdigest()


# -- writing ------------------------------------------------------------------------------------

def _atomic_write(path, arrays):
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:  # pragma: no cover - platforms without directory fsync
        pass


def save(path, model, optimizer=None, scheduler=None, rng=None, history=None, **meta):
    """Write a checkpoint to ``path`` atomically (the name is used as given).

    model: a bundled model or a Sequential of built-in layers (its ``config`` rebuilds it).
    optimizer, scheduler: saved with their state when given. rng: the training loop's shuffling
    Generator (its state is saved; Dropout layers' generators are always saved). history: a
    `fastcnn.train.History`. meta: further JSON-able values, e.g. ``epoch=5`` (``epoch`` is what
    ``load(...).fit_kwargs()`` resumes from).
    """
    import fastcnn
    path = os.fspath(path)
    try:
        config = model.config
    except Exception as err:  # a custom layer without config
        raise CheckpointError(f"save: the model has no usable config ({err}); checkpoints "
                              "need a bundled model or a Sequential of built-in layers") from err
    arrays = {f"model/{k}": v for k, v in model.state_dict().items()}
    opt_header = None
    if optimizer is not None:
        sd = optimizer.state_dict()
        for i, entry in enumerate(sd["state"]):
            for k, v in entry.items():
                arrays[f"optim/{i}/{k}"] = v
        opt_header = {k: v for k, v in sd.items() if k != "state"}
        opt_header["state_keys"] = [sorted(entry) for entry in sd["state"]]
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "library_version": fastcnn.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "model_config": config,
        "optimizer": opt_header,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "rng": rng_state(rng) if rng is not None else None,
        "layer_rngs": {name: rng_state(m.rng) for name, m in _layer_rngs(model).items()},
        "history": history.to_dict() if history is not None else None,
        "meta": meta,
        "arrays": {k: {"shape": list(v.shape), "dtype": v.dtype.str, "sha256": _sha256(v)}
                   for k, v in arrays.items()},
    }
    try:
        text = json.dumps(_to_json(header), allow_nan=True)
    except TypeError as err:
        raise TypeError(f"save: metadata must be JSON-serialisable ({err})") from err
    arrays[_HEADER] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    _atomic_write(path, arrays)
    return path


# -- reading ------------------------------------------------------------------------------------

def read(path):
    """Read and verify a checkpoint: ``(header: dict, arrays: dict name -> ndarray)``.

    Raises FileNotFoundError for a missing file and CheckpointError for anything unreadable or
    inconsistent (truncated archive, bad CRC, checksum, missing or unexpected array, shape or
    dtype differing from the manifest, wrong format).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            if _HEADER not in z.files:
                raise CheckpointError(f"{path}: not a fastcnn checkpoint (no {_HEADER} entry)")
            header = json.loads(bytes(z[_HEADER]).decode("utf-8"))
            if not isinstance(header, dict) or header.get("format") != FORMAT:
                fmt = header.get("format") if isinstance(header, dict) else None
                raise CheckpointError(f"{path}: not a fastcnn checkpoint (format {fmt!r})")
            if header.get("format_version") != FORMAT_VERSION:
                raise CheckpointError(f"{path}: checkpoint format version "
                                      f"{header.get('format_version')} is not supported "
                                      f"(this fastcnn reads version {FORMAT_VERSION})")
            manifest = header["arrays"]
            present = set(z.files) - {_HEADER}
            missing = sorted(set(manifest) - present)
            unexpected = sorted(present - set(manifest))
            if missing or unexpected:
                raise CheckpointError(f"{path}: archive entries do not match its manifest "
                                      f"(missing {missing}, unexpected {unexpected})")
            arrays = {}
            for key, info in manifest.items():
                a = z[key]
                if list(a.shape) != list(info["shape"]) or a.dtype.str != info["dtype"]:
                    raise CheckpointError(f"{path}: {key!r} has shape {a.shape} and dtype "
                                          f"{a.dtype}, the manifest says {tuple(info['shape'])} "
                                          f"and {np.dtype(info['dtype'])}")
                if _sha256(a) != info["sha256"]:
                    raise CheckpointError(f"{path}: {key!r} is corrupted (checksum mismatch)")
                arrays[key] = a
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError,
            UnicodeDecodeError, TypeError) as err:
        raise CheckpointError(f"{path}: cannot read checkpoint (truncated or corrupted?): "
                              f"{type(err).__name__}: {err}") from err
    return header, arrays


@dataclasses.dataclass
class LoadedCheckpoint:
    """What ``load`` returns. ``optimizer``, ``scheduler``, ``rng`` and ``history`` are None when
    the checkpoint did not hold them; ``epoch`` is ``meta["epoch"]`` (0 if absent)."""

    model: object
    optimizer: object = None
    scheduler: object = None
    rng: object = None
    history: object = None
    meta: dict = dataclasses.field(default_factory=dict)
    config: dict = dataclasses.field(default_factory=dict)
    library_version: str = ""

    @property
    def epoch(self):
        return int(self.meta.get("epoch", 0))

    def fit_kwargs(self):
        """Keyword arguments that make ``fastcnn.train.fit`` continue this run exactly:
        ``rng``, ``scheduler``, ``start_epoch``, ``history`` (those that were saved)."""
        kw = {"start_epoch": self.epoch}
        for name in ("rng", "scheduler", "history"):
            if getattr(self, name) is not None:
                kw[name] = getattr(self, name)
        return kw


def _split(arrays):
    model_sd = {k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")}
    return model_sd


def _optimizer_state(header, arrays, path):
    oh = header.get("optimizer")
    if oh is None:
        return None
    sd = {k: v for k, v in oh.items() if k != "state_keys"}
    state = []
    for i, keys in enumerate(oh["state_keys"]):
        entry = {}
        for k in keys:
            name = f"optim/{i}/{k}"
            if name not in arrays:
                raise CheckpointError(f"{path}: optimizer state {name!r} is missing")
            entry[k] = arrays[name]
        state.append(entry)
    sd["state"] = state
    return sd


def _load_model_state(model, model_sd, path):
    try:
        model.load_state_dict(model_sd, strict=True)
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{path}: the checkpoint does not fit the model: {err}") from err


def _restore_layer_rngs(model, header, path):
    saved = header.get("layer_rngs") or {}
    mods = _layer_rngs(model)
    for name, state in saved.items():
        if name not in mods:
            raise CheckpointError(f"{path}: the checkpoint has a generator for layer {name!r}, "
                                  "which the model does not have")
        mods[name].rng.bit_generator.state = _from_json(state)


def load(path):
    """Rebuild everything a checkpoint holds: a ``LoadedCheckpoint`` with the model (built from
    its config with ``fastcnn.models.build``, weights and buffers loaded strictly), the
    optimizer and schedule (rebuilt with their saved hyper-parameters and state), the shuffling
    rng, the history and the metadata."""
    from fastcnn import models, optim, schedules
    header, arrays = read(path)
    try:
        model = models.build(header["model_config"])
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{path}: cannot rebuild the model from its config: {err}") from err
    _load_model_state(model, _split(arrays), path)
    _restore_layer_rngs(model, header, path)
    optimizer = scheduler = None
    sd = _optimizer_state(header, arrays, path)
    if sd is not None:
        try:
            optimizer = optim.from_state_dict(model.parameters(), sd)
        except (ValueError, TypeError) as err:
            raise CheckpointError(f"{path}: cannot restore the optimizer: {err}") from err
        if header.get("scheduler") is not None:
            scheduler = schedules.from_state_dict(optimizer, header["scheduler"])
    return _loaded(header, model, optimizer, scheduler)


def _loaded(header, model, optimizer, scheduler):
    """The LoadedCheckpoint of a read header around the given (restored) objects."""
    from fastcnn.train import History
    return LoadedCheckpoint(
        model=model, optimizer=optimizer, scheduler=scheduler,
        rng=rng_from_state(header["rng"]) if header.get("rng") is not None else None,
        history=History.from_dict(header["history"]) if header.get("history") else None,
        meta=header.get("meta") or {}, config=header["model_config"],
        library_version=header.get("library_version", ""))


def load_into(path, model, optimizer=None, scheduler=None):
    """Restore a checkpoint into existing objects (in place; every key and shape checked).

    Returns a ``LoadedCheckpoint`` whose model/optimizer/scheduler are the objects given, with
    the saved rng, history and metadata."""
    header, arrays = read(path)
    _load_model_state(model, _split(arrays), path)
    _restore_layer_rngs(model, header, path)
    if optimizer is not None:
        sd = _optimizer_state(header, arrays, path)
        if sd is None:
            raise CheckpointError(f"{path}: the checkpoint holds no optimizer state")
        try:
            optimizer.load_state_dict(sd)
        except (ValueError, TypeError) as err:
            raise CheckpointError(f"{path}: the optimizer state does not fit: {err}") from err
    if scheduler is not None:
        if header.get("scheduler") is None:
            raise CheckpointError(f"{path}: the checkpoint holds no schedule state")
        scheduler.load_state_dict(header["scheduler"])
    return _loaded(header, model, optimizer, scheduler)
