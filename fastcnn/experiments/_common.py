"""What every experiment shares: the output folder, optional plots, the JSON summary, timing.

Not an experiment itself. A summary is ``summary.json`` in the experiment's folder:
``{"experiment", "quick", "seed", "runtime_s", "config", "key", "results", "plots", ...}``
where ``key`` holds the few numbers that show the lesson (the tests assert on them).
"""
from __future__ import annotations

import json
import math
import os
import re
import time
from pathlib import Path

import numpy as np

from fastcnn import plotting

__all__ = ["Run", "jsonable", "write_json", "smooth_tail"]


def jsonable(obj):
    """numpy scalars/arrays -> Python numbers/lists; non-finite floats -> None (strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path, obj):
    """Atomically write ``obj`` (made JSON-safe) with 2-space indentation."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(jsonable(obj), f, indent=2, allow_nan=False)
        f.write("\n")
    os.replace(tmp, path)


def smooth_tail(values, frac=0.1):
    """Mean of the last ``frac`` of ``values`` (at least one): a noise-robust 'final' value."""
    v = np.asarray(values, dtype=np.float64)
    k = max(1, int(round(len(v) * frac)))
    return float(v[-k:].mean())


class Run:
    """One experiment run: creates ``out_dir``, draws plots when matplotlib is there, logs, and
    writes ``summary.json`` at :meth:`finish`."""

    def __init__(self, name, out_dir, *, quick=False, seed=0, dpi=plotting.DPI, log=print):
        self.name = name
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.quick, self.seed, self.dpi = bool(quick), int(seed), int(dpi)
        self.log = log or (lambda *a, **k: None)
        self.can_plot = plotting.available()
        self.plots = []
        self.t0 = time.perf_counter()

    def rng(self, offset=0):
        """A fresh Generator from the run's seed (offset keeps independent streams apart)."""
        return np.random.default_rng(self.seed + 1000 * offset)

    def plot(self, filename, draw):
        """``draw(path)`` writes ``out/filename``; skipped (returns None) without matplotlib."""
        if not self.can_plot:
            return None
        path = self.out / filename
        draw(path)
        self.plots.append(filename)
        return path

    def finish(self, *, config, key, results):
        from fastcnn import __version__
        summary = {
            "experiment": self.name,
            "quick": self.quick,
            "seed": self.seed,
            "runtime_s": round(time.perf_counter() - self.t0, 2),
            "fastcnn": __version__,
            "config": config,
            "key": key,
            "results": results,
            "plots": list(self.plots),
        }
        write_json(self.out / "summary.json", summary)
        self.log(f"{self.name}: wrote {self.out / 'summary.json'}"
                 + (f" and {len(self.plots)} plot(s)" if self.plots else ""))
        if not self.can_plot:
            self.log(plotting.PLOT_HINT)
        return jsonable(summary)


def fit_tolerant(model, optimizer, train_data, val_data=None, **kwargs):
    """``fastcnn.train.fit`` that survives divergence: returns ``(history_dict, diverged)``.

    A run whose loss becomes NaN/inf (a lesson in itself: std 1 without batch norm) stops
    there; ``diverged`` is then ``"epoch E, iteration I"`` and the per-epoch lists are padded
    with the chance-level accuracy ``1/num_classes`` and a NaN loss so curves keep their length.
    """
    from fastcnn.train import History, NonFiniteLossError, fit
    history = History()
    diverged = None
    epochs = kwargs.get("epochs", 10)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        try:
            fit(model, optimizer, train_data, val_data, history=history, **kwargs)
        except NonFiniteLossError as err:
            m = re.search(r"epoch \d+, iteration \d+", str(err))
            diverged = m.group(0) if m else str(err)
    h = history.to_dict()
    if diverged is not None:
        chance = 1.0 / getattr(model, "num_classes", 10)
        for name in ("epoch_train_loss", "epoch_val_loss"):
            if name != "epoch_val_loss" or val_data is not None:
                h[name] += [float("nan")] * (epochs - len(h[name]))
        for name in ("epoch_train_acc", "epoch_val_acc"):
            if name != "epoch_val_acc" or val_data is not None:
                h[name] += [chance] * (epochs - len(h[name]))
    h["diverged"] = diverged
    return h, diverged
