"""Experiment 4, learning-rate methods: SGD, Momentum, Nesterov, AdaGrad, RMSProp and Adam.

(a) Their paths on f(x, y) = x^2/20 + y^2 from (-7, 2): a valley 20x flatter along x than along
y, where plain SGD zig-zags across the valley and crawls along it (Saito, "Deep Learning from
Scratch", 6.1). (b) Their training loss on the same data (digits), model (a 4x100 ReLU MLP) and
initial weights, iteration by iteration. The study notes' second section; the optimizers are
fastcnn.optim's, driven directly through fastcnn.layers.Parameter in (a).
"""
from __future__ import annotations

import numpy as np

from fastcnn import optim, plotting
from fastcnn.experiments._common import Run, smooth_tail
from fastcnn.layers import Parameter

NAME = "optimizers"
START = (-7.0, 2.0)
# learning rates for the 2-D paths (those of the classic book where it has them)
PATH_LR = {"SGD": 0.95, "Momentum": 0.1, "Nesterov": 0.1, "AdaGrad": 1.5, "RMSProp": 0.1,
           "Adam": 0.3}
# learning rates for the network (the book's: SGD/Momentum/AdaGrad 0.01, Adam 0.001)
NET_LR = {"SGD": 0.01, "Momentum": 0.01, "Nesterov": 0.01, "AdaGrad": 0.01, "RMSProp": 0.001,
          "Adam": 0.001}
CLASSES = {"SGD": optim.SGD, "Momentum": optim.Momentum, "Nesterov": optim.Nesterov,
           "AdaGrad": optim.AdaGrad, "RMSProp": optim.RMSProp, "Adam": optim.Adam}


def f(x, y):
    """The test function: ``x^2 / 20 + y^2``, minimum 0 at the origin."""
    return x ** 2 / 20.0 + y ** 2


def grad_f(p):
    return np.array([p[0] / 10.0, 2.0 * p[1]])


def trajectory(name, lr, steps=30, start=START):
    """Positions ``(steps + 1, 2)`` of optimizer ``name`` minimizing ``f`` from ``start``."""
    p = Parameter(np.array(start, dtype=np.float64), name="xy")
    opt = CLASSES[name]([p], lr=lr)
    path = [p.data.copy()]
    for _ in range(steps):
        p.grad[...] = grad_f(p.data)
        opt.step()
        path.append(p.data.copy())
    return np.array(path)


def train_curves(x, y, *, iterations, batch_size=128, seed=0, names=tuple(CLASSES), lrs=None):
    """Per-iteration training loss of each optimizer on the same MLP initial weights and the
    same batch order."""
    from fastcnn import train
    lrs = lrs or NET_LR
    n_epochs = int(np.ceil(iterations / int(np.ceil(len(x) / batch_size))))
    curves = {}
    for name in names:
        model = MLP_for(x.shape[1:], seed)
        opt = CLASSES[name](model, lr=lrs[name])
        h = train.fit(model, opt, (x, y), epochs=n_epochs, batch_size=batch_size,
                      rng=np.random.default_rng(seed), eval_train=False)
        curves[name] = h.iter_loss[:iterations]
    return curves


def MLP_for(input_shape, seed):
    from fastcnn import models
    return models.MLP(input_shape=input_shape, num_classes=10, hidden_sizes=(100,) * 4,
                      activation="relu", weight_init="he", rng=seed)


def run(out_dir="runs/experiment-optimizers", *, quick=False, seed=0, dpi=plotting.DPI,
        log=print):
    from fastcnn import data
    r = Run(NAME, out_dir, quick=quick, seed=seed, dpi=dpi, log=log)
    steps = 30
    paths = {name: trajectory(name, PATH_LR[name], steps) for name in CLASSES}
    final = {name: {"x": float(p[-1, 0]), "y": float(p[-1, 1]), "f": float(f(*p[-1])),
                    "distance": float(np.hypot(*p[-1]))} for name, p in paths.items()}

    iterations = 150 if quick else 1000
    ds = data.load_dataset("digits", seed=seed)
    curves = train_curves(ds.x_train, ds.y_train, iterations=iterations, seed=seed)
    final_loss = {name: smooth_tail(c) for name, c in curves.items()}
    for name in CLASSES:
        r.log(f"  {name:9s} path ends at f={final[name]['f']:.3g}; "
              f"MLP loss after {iterations} iterations {final_loss[name]:.4f}")

    def draw_paths(path):
        fig, axes = plotting.new_figure(2, 3, size=(3.2, 2.3))
        for ax, name in zip(axes.ravel(), CLASSES):
            plotting.plot_contour_paths(ax, f, {name: paths[name]},
                                        title=f"{name} (lr {PATH_LR[name]:g})")
        fig.suptitle(f"{steps} steps on f(x, y) = x²/20 + y² from {START}", fontsize=10)
        plotting.save(fig, path, dpi)
    r.plot("trajectories.png", draw_paths)

    def draw_loss(path):
        fig, ax = plotting.new_figure(1, 1, size=(5.5, 3.6))
        plotting.plot_lines(ax[0, 0], {f"{n} (lr {NET_LR[n]:g})": c for n, c in curves.items()},
                            xlabel="iteration", ylabel="training loss (moving mean of 10)",
                            title="4x100 ReLU MLP on digits, same initial weights", logy=True,
                            smooth=10)
        plotting.save(fig, path, dpi)
    r.plot("loss_curves.png", draw_loss)

    key = {
        "adam_final_loss": final_loss["Adam"],
        "sgd_final_loss": final_loss["SGD"],
        "adam_over_sgd_loss": final_loss["Adam"] / final_loss["SGD"],
        "sgd_path_final_f": final["SGD"]["f"],
        "adam_path_final_f": final["Adam"]["f"],
        "momentum_path_final_f": final["Momentum"]["f"],
    }
    config = {"path": {"start": START, "steps": steps, "lr": PATH_LR},
              "network": {"dataset": "digits", "model": "MLP 4x100 ReLU, He init",
                          "iterations": iterations, "batch_size": 128, "lr": NET_LR}}
    results = {"paths": {n: p for n, p in paths.items()}, "path_final": final,
               "loss_curves": curves, "final_loss": final_loss}
    return r.finish(config=config, key=key, results=results)
