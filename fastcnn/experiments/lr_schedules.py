"""Experiment 5, learning-rate decay: constant vs step vs exponential vs cosine schedules.

The study notes: a rate that is too large keeps bouncing around the minimum, one too small
crawls, and lowering it by hand as training goes on is possible. The schedules of
fastcnn.schedules do that lowering: same model (a 4x100 ReLU MLP), data (digits), optimizer
(Adam at a deliberately large rate, 10x its usual 0.001) and batch order; only the rate per
epoch differs. The constant rate keeps the loss bouncing; every decay lets the last epochs
settle into a lower training loss.
"""
from __future__ import annotations

import numpy as np

from fastcnn import plotting
from fastcnn.experiments._common import Run, smooth_tail

NAME = "lr-schedules"


def make_schedule(name, optimizer, epochs):
    from fastcnn import schedules
    if name == "constant":
        return None
    if name == "step":
        return schedules.StepLR(optimizer, step_size=max(1, epochs // 3), gamma=0.1)
    if name == "exponential":
        return schedules.ExponentialLR(optimizer, gamma=0.01 ** (1.0 / epochs))
    if name == "cosine":
        return schedules.CosineLR(optimizer, T_max=epochs)
    raise ValueError(name)


SCHEDULES = ("constant", "step", "exponential", "cosine")


def run(out_dir="runs/experiment-lr-schedules", *, quick=False, seed=0, dpi=plotting.DPI,
        log=print):
    from fastcnn import data, models, optim
    from fastcnn.experiments._common import fit_tolerant
    r = Run(NAME, out_dir, quick=quick, seed=seed, dpi=dpi, log=log)
    epochs = 8 if quick else 20
    lr, batch_size = 0.01, 64
    ds = data.load_dataset("digits", seed=seed)
    hist = {}
    for name in SCHEDULES:
        model = models.MLP(input_shape=ds.input_shape, num_classes=10, hidden_sizes=(100,) * 4,
                           activation="relu", weight_init="he", rng=seed)
        opt = optim.Adam(model, lr=lr)
        h, _ = fit_tolerant(model, opt, ds.train, ds.val, epochs=epochs, batch_size=batch_size,
                            rng=np.random.default_rng(seed),
                            scheduler=make_schedule(name, opt, epochs))
        hist[name] = h
        r.log(f"  {name:11s} final lr {h['lr'][-1]:.2g}: train loss {h['epoch_train_loss'][-1]:.3g}"
              f", val acc {h['epoch_val_acc'][-1]:.4f}")

    def draw(path):
        fig, ax = plotting.new_figure(1, 3, size=(3.3, 2.8))
        plotting.plot_lines(ax[0, 0], {k: v["lr"] for k, v in hist.items()}, xlabel="epoch",
                            ylabel="learning rate", title="schedule", logy=True)
        plotting.plot_lines(ax[0, 1], {k: v["epoch_train_loss"] for k, v in hist.items()},
                            xlabel="epoch", ylabel="loss", title="training loss", logy=True)
        plotting.plot_lines(ax[0, 2], {k: v["epoch_val_acc"] for k, v in hist.items()},
                            xlabel="epoch", ylabel="accuracy", title="validation accuracy")
        fig.suptitle(f"4x100 ReLU MLP on digits, Adam from lr {lr}", fontsize=10)
        plotting.save(fig, path, dpi)
    r.plot("lr_schedules.png", draw)

    final_loss = {k: v["epoch_train_loss"][-1] for k, v in hist.items()}
    last_iters = {k: smooth_tail(v["iter_loss"]) for k, v in hist.items()}
    key = {f"final_train_loss_{k}": final_loss[k] for k in SCHEDULES}
    key.update({f"final_val_acc_{k}": hist[k]["epoch_val_acc"][-1] for k in SCHEDULES})
    key["decayed_schedules_below_constant"] = int(sum(
        final_loss[k] < final_loss["constant"] for k in SCHEDULES[1:]))
    config = {"dataset": "digits", "model": "MLP 4x100 ReLU, He", "optimizer":
              f"Adam lr {lr}", "epochs": epochs, "batch_size": batch_size,
              "schedules": {"step": "StepLR(step_size=epochs//3, gamma=0.1)",
                            "exponential": "ExponentialLR(gamma=0.01**(1/epochs))",
                            "cosine": "CosineLR(T_max=epochs)"}}
    return r.finish(config=config, key=key,
                    results={"history": hist, "final_train_loss": final_loss,
                             "final_iter_loss": last_iters})
