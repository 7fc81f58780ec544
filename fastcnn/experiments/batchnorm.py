"""Experiment 3, batch normalization: the same deep MLP trained with and without BatchNorm1D
before each activation, for a range of initial weight scales (std of N(0, std^2)).

Without batch norm only a narrow band of scales trains (too small: the signal vanishes; too
large: it explodes and the softmax saturates); with it every layer's input is re-standardized
per mini-batch, so training starts fast at nearly any scale. After Saito, "Deep Learning from
Scratch", 6.3.2 (1000 training images, 5x100 ReLU MLP, SGD lr 0.01).
"""
from __future__ import annotations

import numpy as np

from fastcnn import plotting
from fastcnn.experiments._common import Run, fit_tolerant, smooth_tail

NAME = "batchnorm"


def run(out_dir="runs/experiment-batchnorm", *, quick=False, seed=0, dpi=plotting.DPI,
        log=print):
    from fastcnn import data, models, optim
    r = Run(NAME, out_dir, quick=quick, seed=seed, dpi=dpi, log=log)
    scales = [1.0, 0.01] if quick else [float(s) for s in np.logspace(0, -4, 9)]
    epochs = 8 if quick else 20
    n_train, batch_size, lr, hidden = 1000, 100, 0.01, (100,) * 5
    ds = data.load_dataset("digits", seed=seed, n_train=n_train)
    res = {}
    for std in scales:
        res[std] = {}
        for bn in (False, True):
            model = models.MLP(input_shape=ds.input_shape, num_classes=10, hidden_sizes=hidden,
                               activation="relu", weight_init=std, batchnorm=bn, rng=seed)
            opt = optim.SGD(model, lr=lr)
            # eval_train=False: the epoch's accuracy is the running mean over its training
            # batches in train mode, so early epochs are not judged with running statistics
            # that have not caught up yet
            h, _ = fit_tolerant(model, opt, ds.train, ds.val, epochs=epochs,
                                batch_size=batch_size, rng=np.random.default_rng(seed),
                                eval_train=False)
            res[std]["batchnorm" if bn else "plain"] = h
        a, b = (res[std][k]["epoch_train_acc"][-1] for k in ("plain", "batchnorm"))
        div = "".join(f" ({k} diverged at {res[std][k]['diverged']})" for k in res[std]
                      if res[std][k]["diverged"])
        r.log(f"  std {std:<8.3g} train acc after {epochs} epochs: plain {a:.3f}, "
              f"batch norm {b:.3f}{div}")

    def draw(path):
        n = len(scales)
        ncols = min(n, 3 if n > 4 else n)
        nrows = int(np.ceil(n / ncols))
        fig, axes = plotting.new_figure(nrows, ncols, size=(2.6, 2.0), sharey=True)
        for ax in axes.ravel()[n:]:
            ax.set_axis_off()
        for ax, std in zip(axes.ravel(), scales):
            plotting.plot_lines(ax, {"batch norm": res[std]["batchnorm"]["epoch_train_acc"],
                                     "plain": res[std]["plain"]["epoch_train_acc"]},
                                title=f"W ~ N(0, {std:.2g}²)"
                                + (" plain diverged" if res[std]["plain"]["diverged"] else ""),
                                xlabel="epoch",
                                ylabel="train accuracy")
            ax.set_ylim(0, 1.02)
        fig.suptitle(f"5x100 ReLU MLP, {n_train} digits, SGD lr {lr}: with and without "
                     "batch norm", fontsize=10)
        plotting.save(fig, path, dpi)
    r.plot("batchnorm.png", draw)

    final = {f"{std:g}": {k: res[std][k]["epoch_train_acc"][-1] for k in ("plain", "batchnorm")}
             for std in scales}
    # "trains faster": mean training loss over the first quarter of the iterations, and at the
    # end (a diverged run counts as infinitely bad)
    def loss_stats(h):
        if h["diverged"]:
            return float("inf"), float("inf")
        it = h["iter_loss"]
        return float(np.mean(it[: max(1, len(it) // 4)])), smooth_tail(it)

    poor = 0.01
    (pe, pf), (be, bf) = loss_stats(res[poor]["plain"]), loss_stats(res[poor]["batchnorm"])
    key = {
        "poor_init_std": poor,
        "early_loss_plain_at_poor_init": pe,
        "early_loss_bn_at_poor_init": be,
        "final_loss_plain_at_poor_init": pf,
        "final_loss_bn_at_poor_init": bf,
        "train_acc_plain_at_poor_init": res[poor]["plain"]["epoch_train_acc"][-1],
        "train_acc_bn_at_poor_init": res[poor]["batchnorm"]["epoch_train_acc"][-1],
        "scales_where_bn_trains_faster": int(sum(
            loss_stats(res[s]["batchnorm"])[0] < loss_stats(res[s]["plain"])[0]
            for s in scales)),
        "n_scales": len(scales),
    }
    config = {"dataset": "digits", "n_train": n_train, "model": "MLP 5x100 ReLU",
              "optimizer": f"SGD lr {lr}", "epochs": epochs, "batch_size": batch_size,
              "scales": scales, "batchnorm": "BatchNorm1D before each ReLU, momentum 0.1"}
    return r.finish(config=config, key=key,
                    results={"final_train_acc": final,
                             "history": {f"{s:g}": v for s, v in res.items()}})
