"""Experiment 2, initial weights: training curves of a deep ReLU MLP started from std 0.01,
Xavier (std 1/sqrt(fan_in), the study notes' definition) and He (std sqrt(2/fan_in)).

Same data (digits), same SGD, same batch order; only the initial weights differ. With std 0.01
the signal shrinks 10x per layer (see the ``activations`` experiment), the gradients reaching
the weights vanish and the loss stays at log(10) ~ 2.30 for a long time; He keeps the signal's
scale through ReLUs and learns fastest. After Saito, "Deep Learning from Scratch", 6.2.4.
"""
from __future__ import annotations

import numpy as np

from fastcnn import plotting
from fastcnn.experiments._common import Run, smooth_tail

NAME = "init"
INITS = {"std 0.01": 0.01, "Xavier": "xavier", "He": "he"}


def run(out_dir="runs/experiment-init", *, quick=False, seed=0, dpi=plotting.DPI, log=print):
    from fastcnn import data, models, optim, train
    r = Run(NAME, out_dir, quick=quick, seed=seed, dpi=dpi, log=log)
    epochs = 12 if quick else 100
    batch_size, lr, hidden = 128, 0.01, (100,) * 5
    ds = data.load_dataset("digits", seed=seed)
    hist = {}
    for label, wi in INITS.items():
        model = models.MLP(input_shape=ds.input_shape, num_classes=10, hidden_sizes=hidden,
                           activation="relu", weight_init=wi, rng=seed)
        opt = optim.SGD(model, lr=lr)
        h = train.fit(model, opt, ds.train, ds.val, epochs=epochs, batch_size=batch_size,
                      rng=np.random.default_rng(seed))
        hist[label] = h.to_dict()
        r.log(f"  {label:8s} final train loss {h.epoch_train_loss[-1]:.4f}, "
              f"val acc {h.epoch_val_acc[-1]:.4f}")

    def draw(path):
        fig, ax = plotting.new_figure(1, 2, size=(4.2, 3.1))
        plotting.plot_lines(ax[0, 0], {k: v["iter_loss"] for k, v in hist.items()},
                            xlabel="iteration", ylabel="training loss (moving mean of 10)",
                            title="training loss", smooth=10)
        plotting.plot_lines(ax[0, 1], {k: v["epoch_val_acc"] for k, v in hist.items()},
                            xlabel="epoch", ylabel="accuracy", title="validation accuracy")
        fig.suptitle(f"5x100 ReLU MLP on digits, SGD lr {lr}: initial weights", fontsize=10)
        plotting.save(fig, path, dpi)
    r.plot("init_curves.png", draw)

    final = {k: smooth_tail(v["iter_loss"]) for k, v in hist.items()}
    key = {
        "final_loss_std001": final["std 0.01"],
        "final_loss_xavier": final["Xavier"],
        "final_loss_he": final["He"],
        "val_acc_std001": hist["std 0.01"]["epoch_val_acc"][-1],
        "val_acc_xavier": hist["Xavier"]["epoch_val_acc"][-1],
        "val_acc_he": hist["He"]["epoch_val_acc"][-1],
    }
    config = {"dataset": "digits", "model": "MLP 5x100 ReLU", "optimizer": f"SGD lr {lr}",
              "epochs": epochs, "batch_size": batch_size, "inits": INITS}
    return r.finish(config=config, key=key, results={"history": hist, "final_loss": final})
