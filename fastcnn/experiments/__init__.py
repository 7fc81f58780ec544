"""The study notes' experiments, one function each: every experiment writes PNG plots and a
``summary.json`` (whose ``key`` numbers show the lesson) into its output folder.

    activations   activation histograms and gradient norms per layer (sigmoid/tanh/ReLU x inits)
    init          training curves for std 0.01 vs Xavier vs He on a deep ReLU MLP
    batchnorm     training with and without batch norm across initial weight scales
    optimizers    SGD ... Adam on the same data and init, and on f(x, y) = x^2/20 + y^2
    lr-schedules  constant vs step vs exponential vs cosine decay
    overfitting   a small training set: none vs L2 vs L1 vs dropout, train/test accuracy
    cnn           SimpleConvNet: training, first-layer filters before/after, feature maps
    alexnet       the small AlexNet on 32x32 images, with and without dropout

Call ``fastcnn.experiments.run("optimizers", out_dir, quick=True)`` or the module's ``run``; the
CLI is ``fastcnn experiment NAME [--quick]``. Modules load on first use.
"""
from __future__ import annotations

import importlib

__all__ = ["EXPERIMENTS", "Experiment", "run"]


class Experiment:
    """A registry entry: ``name``, a one-line ``describe``, and ``run(out_dir, *, quick, seed,
    dpi, log) -> summary dict`` imported from ``fastcnn.experiments.<module>`` on first call."""

    def __init__(self, name, module, describe):
        self.name, self.module, self.describe = name, module, describe

    def run(self, out_dir=None, **kwargs):
        mod = importlib.import_module(f"fastcnn.experiments.{self.module}")
        return mod.run(out_dir if out_dir is not None else f"runs/experiment-{self.name}",
                       **kwargs)

    def __repr__(self):
        return f"Experiment({self.name!r})"


EXPERIMENTS = {e.name: e for e in (
    Experiment("activations", "activations",
               "activation histograms and gradient norms per layer: sigmoid/tanh/ReLU x "
               "std 1, std 0.01, Xavier, He"),
    Experiment("init", "init_weights",
               "training curves of a deep ReLU MLP for std 0.01 vs Xavier vs He"),
    Experiment("batchnorm", "batchnorm",
               "training with and without batch norm across initial weight scales"),
    Experiment("optimizers", "optimizers",
               "SGD, Momentum, Nesterov, AdaGrad, RMSProp, Adam: loss curves and paths on "
               "x^2/20 + y^2"),
    Experiment("lr-schedules", "lr_schedules",
               "constant vs step vs exponential vs cosine learning-rate decay"),
    Experiment("overfitting", "overfitting",
               "small training set: no regularization vs L2 vs L1 vs dropout"),
    Experiment("cnn", "cnn",
               "SimpleConvNet: training, first-layer filters before/after, feature maps"),
    Experiment("alexnet", "alexnet",
               "small AlexNet on 32x32 images with and without dropout"),
)}


def run(name, out_dir=None, **kwargs):
    """Run experiment ``name`` (see ``EXPERIMENTS``); returns its summary dict."""
    try:
        exp = EXPERIMENTS[name]
    except KeyError:
        raise ValueError(f"unknown experiment {name!r}; choose one of "
                         f"{', '.join(EXPERIMENTS)}") from None
    return exp.run(out_dir, **kwargs)
