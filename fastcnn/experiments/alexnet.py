"""Experiment 8, AlexNet: the small AlexNet (fastcnn.models.AlexNet, variant "small": five
convolutions 64-128-192-192-128 with LRN and overlapping max pools, FC 512-512-classes) trained
on 32x32 colour images with and without dropout in its fully connected layers.

The images are fastcnn's synthetic set (3x32x32, noisy, 10 classes; no download), and the
training set is kept small (200 images) so that the 1.8M-parameter network can memorize it.
Without dropout training accuracy reaches 1.0 while test accuracy lags; dropout (0.5, as in the
paper) trains a thinned network at each step and narrows that gap. The study notes' fifth
section ("dropout against overfitting"). ``--quick`` keeps the structure but narrows every
convolution (channels 16-32-48-48-32) and trains 12 epochs instead of 25, so the run takes
seconds; it shows the overfitting, but at that size dropout does not reliably narrow the gap
(measured: it did not on seeds 0-2), so the dropout comparison needs the default size.
"""
from __future__ import annotations

import numpy as np

from fastcnn import plotting
from fastcnn.experiments._common import Run

NAME = "alexnet"


def run(out_dir="runs/experiment-alexnet", *, quick=False, seed=0, dpi=plotting.DPI,
        log=print):
    from fastcnn import data, models, optim, train
    r = Run(NAME, out_dir, quick=quick, seed=seed, dpi=dpi, log=log)
    shape, noise = (3, 32, 32), 1.5
    n_train, batch_size, lr = 200, 20, 0.001
    n_test, epochs = (200, 12) if quick else (300, 25)
    widths = dict(channels=(16, 32, 48, 48, 32)) if quick else {}
    x, y = data.make_synthetic(n_train + n_test, shape, 10, noise=noise, seed=seed)
    x_tr, mean, std = data.standardize(x[:n_train])
    x_te = data.apply_standardize(x[n_train:], mean, std)
    y_tr, y_te = y[:n_train], y[n_train:]
    hist, final = {}, {}
    k = 5
    for label, p in (("no dropout", 0.0), ("dropout 0.5", 0.5)):
        model = models.AlexNet(input_shape=shape, num_classes=10, variant="small", dropout=p,
                               rng=seed, **widths)
        opt = optim.Adam(model, lr=lr)

        def progress(event, info, label=label):
            if event == "epoch" and (info["epoch"] % 5 == 0 or info["epoch"] == 1):
                r.log(f"  {label}: epoch {info['epoch']}/{info['epochs']} train acc "
                      f"{info['train_acc']:.3f}, test acc {info['val_acc']:.3f} "
                      f"({info['seconds']:.1f} s)")
        h = train.fit(model, opt, (x_tr, y_tr), (x_te, y_te), epochs=epochs,
                      batch_size=batch_size, rng=np.random.default_rng(seed), progress=progress)
        d = h.to_dict()
        d["test_acc"] = d.pop("epoch_val_acc")
        d["test_loss"] = d.pop("epoch_val_loss")
        hist[label] = d
        tr, te = float(np.mean(d["epoch_train_acc"][-k:])), float(np.mean(d["test_acc"][-k:]))
        final[label] = {"train_acc": tr, "test_acc": te, "gap": tr - te,
                        "parameters": model.num_parameters()}
        r.log(f"  {label}: train {tr:.3f}, test {te:.3f}, gap {tr - te:.3f}")

    def draw(path):
        fig, axes = plotting.new_figure(1, 2, size=(3.6, 2.8), sharey=True)
        for ax, (label, d) in zip(axes.ravel(), hist.items()):
            plotting.plot_lines(ax, {"train": d["epoch_train_acc"], "test": d["test_acc"]},
                                xlabel="epoch", ylabel="accuracy",
                                title=f"{label}: gap {final[label]['gap']:.2f}")
            ax.set_ylim(0, 1.02)
        size = "narrow (quick)" if quick else "small"
        fig.suptitle(f"AlexNet ({size}) on {n_train} synthetic 3x32x32 images", fontsize=10)
        plotting.save(fig, path, dpi)
    r.plot("alexnet_dropout.png", draw)

    nd, wd = final["no dropout"], final["dropout 0.5"]
    key = {"gap_no_dropout": nd["gap"], "gap_dropout": wd["gap"],
           "test_acc_no_dropout": nd["test_acc"], "test_acc_dropout": wd["test_acc"],
           "train_acc_no_dropout": nd["train_acc"], "train_acc_dropout": wd["train_acc"]}
    config = {"dataset": f"synthetic {shape}, noise {noise}, seed {seed}", "n_train": n_train,
              "n_test": n_test, "model": "AlexNet variant small" + (f" {widths}" if quick
                                                                     else ""),
              "optimizer": f"Adam lr {lr}", "epochs": epochs, "batch_size": batch_size,
              "gap": f"mean train - mean test accuracy over the last {k} epochs"}
    return r.finish(config=config, key=key, results={"history": hist, "final": final})
