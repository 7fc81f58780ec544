"""Experiment 6, overfitting: a network much larger than its small training set, trained with
no regularization, with L2 (weight decay), with L1 and with dropout; train and test accuracy per
epoch.

The data are fastcnn's synthetic images (1x16x16, noisy: each image is a shifted class pattern
plus another class's weaker pattern plus pixel noise), 300 for training and 1000 for testing. A
6x100 ReLU MLP (the classic book's overfitting network, Saito 6.4) memorizes the 300 training
images, noise and all: train accuracy 1.0, test accuracy far below. The penalties restrain the
weights and dropout trains a different thinned network each step; all three narrow the
train-test gap. The study notes' third section.
"""
from __future__ import annotations

import numpy as np

from fastcnn import plotting
from fastcnn.experiments._common import Run

NAME = "overfitting"
# label -> (weight_decay, l1, dropout)
VARIANTS = {"none": (0.0, 0.0, 0.0), "L2 (weight decay 0.03)": (0.03, 0.0, 0.0),
            "L1 (0.003)": (0.0, 0.003, 0.0), "dropout 0.2": (0.0, 0.0, 0.2)}
SHORT = {"none": "none", "L2 (weight decay 0.03)": "l2", "L1 (0.003)": "l1",
         "dropout 0.2": "dropout"}


def run(out_dir="runs/experiment-overfitting", *, quick=False, seed=0, dpi=plotting.DPI,
        log=print):
    from fastcnn import data, models, optim, regularizers, train
    r = Run(NAME, out_dir, quick=quick, seed=seed, dpi=dpi, log=log)
    n_train, n_test, epochs = (300, 500, 60) if quick else (300, 1000, 150)
    shape, noise, lr, batch_size, hidden = (1, 16, 16), 1.0, 0.05, 100, (100,) * 6
    x, y = data.make_synthetic(n_train + n_test, shape, 10, noise=noise, seed=seed)
    x_tr, mean, std = data.standardize(x[:n_train])
    x_te = data.apply_standardize(x[n_train:], mean, std)
    y_tr, y_te = y[:n_train], y[n_train:]
    hist, gaps = {}, {}
    k = max(1, epochs // 10)
    for label, (wd, l1, p) in VARIANTS.items():
        model = models.MLP(input_shape=shape, num_classes=10, hidden_sizes=hidden, dropout=p,
                           rng=seed)
        regs = [regularizers.L1(l1)] if l1 else []
        opt = optim.SGD(model, lr=lr, weight_decay=wd, regularizers=regs)
        h = train.fit(model, opt, (x_tr, y_tr), (x_te, y_te), epochs=epochs,
                      batch_size=batch_size, rng=np.random.default_rng(seed))
        d = h.to_dict()
        d["test_acc"] = d.pop("epoch_val_acc")
        d["test_loss"] = d.pop("epoch_val_loss")
        hist[label] = d
        tr, te = float(np.mean(d["epoch_train_acc"][-k:])), float(np.mean(d["test_acc"][-k:]))
        gaps[label] = {"train_acc": tr, "test_acc": te, "gap": tr - te}
        r.log(f"  {label:24s} train {tr:.3f}  test {te:.3f}  gap {tr - te:.3f}")

    def draw(path):
        fig, axes = plotting.new_figure(1, len(VARIANTS), size=(2.6, 2.4), sharey=True)
        for ax, (label, d) in zip(axes.ravel(), hist.items()):
            plotting.plot_lines(ax, {"train": d["epoch_train_acc"], "test": d["test_acc"]},
                                xlabel="epoch", ylabel="accuracy",
                                title=f"{label}\ngap {gaps[label]['gap']:.2f}")
            ax.set_ylim(0, 1.02)
        fig.suptitle(f"6x100 ReLU MLP on {n_train} noisy synthetic images "
                     f"(test: {n_test}), SGD lr {lr}", fontsize=10)
        plotting.save(fig, path, dpi)
    r.plot("overfitting.png", draw)

    key = {f"gap_{SHORT[lab]}": g["gap"] for lab, g in gaps.items()}
    key.update({f"test_acc_{SHORT[lab]}": g["test_acc"] for lab, g in gaps.items()})
    key["train_acc_none"] = gaps["none"]["train_acc"]
    config = {"dataset": f"synthetic {shape}, noise {noise}, seed {seed}", "n_train": n_train,
              "n_test": n_test, "model": "MLP 6x100 ReLU, He", "optimizer": f"SGD lr {lr}",
              "epochs": epochs, "batch_size": batch_size,
              "variants": {lab: {"weight_decay": v[0], "l1": v[1], "dropout": v[2]}
                           for lab, v in VARIANTS.items()},
              "gap": f"mean train accuracy - mean test accuracy over the last {k} epochs"}
    return r.finish(config=config, key=key, results={"history": hist, "final": gaps})
