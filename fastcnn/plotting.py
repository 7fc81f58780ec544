"""Plot helpers for the CLI and the experiments: matplotlib's Agg canvas, imported lazily.

Not an interactive plotting API: every function draws one figure and writes it to a PNG. Figures
are built with ``matplotlib.figure.Figure`` + ``FigureCanvasAgg`` directly, never ``pyplot``, so
no global backend is switched and nothing leaks between calls. matplotlib is the optional extra
``fastcnn[plot]``; without it, :func:`available` is False and callers write only their JSON.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

__all__ = ["available", "PLOT_HINT", "new_figure", "save", "plot_history", "plot_lines",
           "plot_histograms", "plot_image_grid", "plot_confusion", "plot_contour_paths"]

PLOT_HINT = 'plots skipped: matplotlib is not installed; get them with pip install "fastcnn[plot]"'
DPI = 80
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
          "#7f7f7f", "#17becf", "#bcbd22"]


def available() -> bool:
    """True when matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def new_figure(nrows=1, ncols=1, *, size=(4.0, 3.0), squeeze=False, **kwargs):
    """``(fig, axes)`` with ``axes`` a 2-D array; ``size`` is per panel, in inches."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=squeeze, **kwargs)
    return fig, axes


def save(fig, path, dpi=DPI) -> Path:
    """Write ``fig`` as a PNG through the Agg canvas; returns the path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=dpi, format="png")
    return path


def _smooth(y, k):
    y = np.asarray(y, dtype=np.float64)
    if k <= 1 or len(y) < 2 * k:
        return y
    c = np.cumsum(np.insert(y, 0, 0.0))
    head = c[1:k] / np.arange(1, k)                  # growing window at the start
    return np.concatenate([head, (c[k:] - c[:-k]) / k])


def plot_lines(ax, series, *, xlabel="", ylabel="", title="", logy=False, smooth=1, x=None):
    """Draw ``{label: values}`` as lines on ``ax`` (optionally smoothed by a moving mean)."""
    for i, (label, ys) in enumerate(series.items()):
        ys = _smooth(ys, smooth)
        xs = np.arange(1, len(ys) + 1) if x is None else np.asarray(x)[: len(ys)]
        ax.plot(xs, ys, label=str(label), color=COLORS[i % len(COLORS)], lw=1.4)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if series:
        ax.legend(fontsize=7)


def plot_history(history, path, *, title="", dpi=DPI):
    """Loss and accuracy per epoch (train and validation) from a ``History.to_dict()``."""
    fig, ax = new_figure(1, 2, size=(4.2, 3.0))
    loss = {k: history.get(v) for k, v in (("train", "epoch_train_loss"), ("val", "epoch_val_loss"))
            if history.get(v)}
    acc = {k: history.get(v) for k, v in (("train", "epoch_train_acc"), ("val", "epoch_val_acc"))
           if history.get(v)}
    plot_lines(ax[0, 0], loss, xlabel="epoch", ylabel="loss", title="loss")
    plot_lines(ax[0, 1], acc, xlabel="epoch", ylabel="accuracy", title="accuracy")
    if title:
        fig.suptitle(title, fontsize=10)
    return save(fig, path, dpi)


def plot_histograms(ax, values, *, bins=30, range_=None, title="", color=None, xlabel=""):
    """One histogram of ``values`` (flattened) on ``ax``."""
    ax.hist(np.ravel(values), bins=bins, range=range_, color=color or COLORS[0], alpha=0.85)
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)
    if xlabel:
        ax.set_xlabel(xlabel, fontsize=8)
    ax.tick_params(labelsize=7)


def plot_image_grid(images, path, *, ncols=8, title="", cmap="gray", dpi=DPI, labels=None,
                    panel=0.9):
    """A grid of 2-D images (each scaled to its own min..max), e.g. filters or feature maps.

    ``images``: an array (N, H, W) / (N, 3, H, W), or a list of such images of any sizes."""
    images = [np.asarray(im) for im in images]
    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig, axes = new_figure(nrows, ncols, size=(panel, panel))
    for i, ax in enumerate(axes.ravel()):
        ax.set_axis_off()
        if i < n:
            img = images[i]
            if img.ndim == 3:                                 # (3, H, W) colour filter
                img = np.moveaxis(img, 0, -1)
                img = (img - img.min()) / (np.ptp(img) + 1e-12)
                ax.imshow(img, interpolation="nearest")
            else:
                ax.imshow(img, cmap=cmap, interpolation="nearest")
            if labels is not None:
                ax.set_title(str(labels[i]), fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return save(fig, path, dpi)


def plot_confusion(cm, path, *, class_names=None, title="confusion matrix", dpi=DPI):
    """A confusion matrix (rows: true class, columns: predicted) with counts in the cells."""
    cm = np.asarray(cm)
    k = cm.shape[0]
    fig, ax = new_figure(1, 1, size=(0.45 * k + 1.5, 0.45 * k + 1.2))
    ax = ax[0, 0]
    ax.imshow(cm, cmap="Blues")
    names = class_names or [str(i) for i in range(k)]
    ax.set_xticks(range(k), names, fontsize=7, rotation=90 if max(map(len, names)) > 2 else 0)
    ax.set_yticks(range(k), names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    top = cm.max() if cm.size else 0
    for i in range(k):
        for j in range(k):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=6,
                        color="white" if cm[i, j] > top / 2 else "black")
    return save(fig, path, dpi)


def plot_contour_paths(ax, f, paths, *, xlim=(-10, 10), ylim=(-5, 5), title=""):
    """Contours of ``f(X, Y)`` with optimizer paths ``{label: (T, 2) array}`` on top."""
    xs = np.linspace(*xlim, 200)
    ys = np.linspace(*ylim, 200)
    X, Y = np.meshgrid(xs, ys)
    Z = f(X, Y)
    ax.contour(X, Y, Z, levels=np.geomspace(max(Z.min(), 1e-3) + 0.05, Z.max(), 12),
               colors="0.7", linewidths=0.6)
    for i, (label, p) in enumerate(paths.items()):
        p = np.asarray(p)
        ax.plot(p[:, 0], p[:, 1], "o-", ms=2, lw=1, color=COLORS[i % len(COLORS)], label=label)
    ax.plot([0], [0], "k+", ms=10)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    if title:
        ax.set_title(title, fontsize=10)
