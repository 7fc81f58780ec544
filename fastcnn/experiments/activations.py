"""Experiment 1, vanishing gradients: activation histograms per layer of a 5-layer net for
sigmoid, tanh and ReLU under four initial weight scales, and each layer's gradient norm.

No training: one forward and one backward pass of random input through fresh networks, as in the
study notes' first section (and Saito, "Deep Learning from Scratch", 6.2). With std 1 sigmoid
saturates at 0/1, with std 0.01 every layer's output collapses to one value; Xavier keeps sigmoid
and tanh spread out, He keeps ReLU's spread out layer after layer.
"""
from __future__ import annotations

import numpy as np

from fastcnn import layers, plotting
from fastcnn.experiments._common import Run
from fastcnn.models import MLP

NAME = "activations"
ACTIVATIONS = ("sigmoid", "tanh", "relu")
# label -> weight_init argument of fastcnn.models.MLP
INITS = {"std 1": 1.0, "std 0.01": 0.01, "Xavier": "xavier", "He": "he"}


def measure(activation, weight_init, x, y, *, n_layers=5, width=100, seed=0):
    """Forward + backward through a fresh ``MLP``; per hidden layer: the activations (a copy),
    their std, and the Frobenius norm of the weight gradient of the Affine feeding it."""
    model = MLP(input_shape=x.shape[1], num_classes=int(y.max()) + 1,
                hidden_sizes=[width] * n_layers, activation=activation,
                weight_init=weight_init, dtype=np.float64, rng=seed)
    model.train()
    acts = []
    h = x
    for layer in model:
        h = layer.forward(h)
        if not isinstance(layer, layers.Affine):           # the output of an activation layer
            acts.append(h.copy())
    loss_fn = layers.SoftmaxCrossEntropy()
    loss = loss_fn.forward(h, y)
    model.zero_grad()
    model.backward(loss_fn.backward())
    affines = [layer for layer in model if isinstance(layer, layers.Affine)][:n_layers]
    grad_norms = [float(np.linalg.norm(a.weight.grad)) for a in affines]
    return {"acts": acts, "std": [float(a.std()) for a in acts], "grad_norm": grad_norms,
            "loss": loss}


def run(out_dir="runs/experiment-activations", *, quick=False, seed=0, dpi=plotting.DPI,
        log=print):
    """Measure every (activation, init) pair; plot histograms and gradient norms."""
    r = Run(NAME, out_dir, quick=quick, seed=seed, dpi=dpi, log=log)
    n, width, n_layers = (200, 100, 5) if quick else (1000, 100, 5)
    rng = r.rng()
    x = rng.standard_normal((n, width))
    y = rng.integers(0, 10, n)
    results = {}
    for act in ACTIVATIONS:
        results[act] = {}
        for label, wi in INITS.items():
            m = measure(act, wi, x, y, n_layers=n_layers, width=width, seed=seed)
            results[act][label] = m
        r.log(f"  {act:8s} last-layer std: " + ", ".join(
            f"{lab} {results[act][lab]['std'][-1]:.3g}" for lab in INITS))

    for act in ACTIVATIONS:
        def draw(path, act=act):
            fig, axes = plotting.new_figure(len(INITS), n_layers, size=(1.6, 1.15))
            # one fixed range per activation (values beyond it are clipped onto its edge), so
            # panels compare directly; ReLU's exact zeros are left out of its histograms
            lo, hi = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0)}.get(act, (0.0, 4.0))
            for i, label in enumerate(INITS):
                for j, a in enumerate(results[act][label]["acts"]):
                    ax = axes[i, j]
                    v = a.ravel()
                    if act == "relu":
                        v = v[v > 0]
                    plotting.plot_histograms(ax, np.clip(v, lo, hi), bins=30, range_=(lo, hi),
                                             color=plotting.COLORS[i])
                    head = f"layer {j + 1}: " if i == 0 else ""
                    ax.set_title(f"{head}std {a.std():.2g}", fontsize=7)
                    if j == 0:
                        ax.set_ylabel(label, fontsize=8)
            fig.suptitle(f"{act}: activations per layer (rows: initial weights)", fontsize=10)
            plotting.save(fig, path, dpi)
        r.plot(f"activations_{act}.png", draw)

    def draw_grads(path):
        fig, axes = plotting.new_figure(1, len(ACTIVATIONS), size=(3.2, 2.8))
        for k, act in enumerate(ACTIVATIONS):
            ax = axes[0, k]
            for i, label in enumerate(INITS):
                g = np.maximum(results[act][label]["grad_norm"], 1e-30)
                ax.plot(range(1, n_layers + 1), g, "o-", color=plotting.COLORS[i], label=label,
                        ms=3)
            ax.set_yscale("log")
            ax.set_xlabel("layer (1 = nearest the input)")
            ax.set_title(act, fontsize=10)
            ax.grid(alpha=0.3)
            if k == 0:
                ax.set_ylabel("||dW|| of the layer")
                ax.legend(fontsize=7)
        fig.suptitle("gradient norm per layer after one backward pass", fontsize=10)
        plotting.save(fig, path, dpi)
    r.plot("gradient_norms.png", draw_grads)

    def std(act, lab):
        return results[act][lab]["std"][-1]

    relu_he, relu_small = std("relu", "He"), std("relu", "std 0.01")
    def ratio(act, lab):
        g = results[act][lab]["grad_norm"]
        return g[0] / max(g[-1], 1e-300)

    key = {
        "relu_last_std_he": relu_he,
        "relu_last_std_std001": relu_small,
        "relu_he_over_std001": relu_he / max(relu_small, 1e-300),
        "tanh_last_std_xavier": std("tanh", "Xavier"),
        "tanh_last_std_std001": std("tanh", "std 0.01"),
        # fraction of sigmoid outputs within 0.05 of 0 or 1 in the last layer under std 1
        "sigmoid_std1_saturated_fraction": float(np.mean(
            np.minimum(results["sigmoid"]["std 1"]["acts"][-1],
                       1 - results["sigmoid"]["std 1"]["acts"][-1]) < 0.05)),
        # weight-gradient norm of the first layer over that of the last hidden layer: the
        # gradient vanishes on its way down through sigmoids, not through ReLUs with He init
        "sigmoid_xavier_grad_first_over_last": ratio("sigmoid", "Xavier"),
        "relu_he_grad_first_over_last": ratio("relu", "He"),
    }
    out = {act: {lab: {"std": m["std"], "grad_norm": m["grad_norm"],
                       "grad_first_over_last": ratio(act, lab), "loss": m["loss"]}
                 for lab, m in results[act].items()} for act in ACTIVATIONS}
    config = {"n_samples": n, "width": width, "n_layers": n_layers,
              "inits": {k: v for k, v in INITS.items()}, "input": "N(0, 1)",
              "labels": "uniform random over 10 classes", "dtype": "float64"}
    r.log(f"  ReLU last-layer std: He {relu_he:.3g} vs std 0.01 {relu_small:.3g} "
        f"({key['relu_he_over_std001']:.3g}x)")
    return r.finish(config=config, key=key, results=out)
