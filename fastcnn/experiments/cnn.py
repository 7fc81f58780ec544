"""Experiment 7, convolutional networks: train SimpleConvNet (conv 30@5x5 - ReLU - max pool -
affine 100 - ReLU - affine) on the digits upsampled to 28x28, and look inside it: the 30
first-layer filters before and after training, and the feature maps they produce for one image.

Random filters are speckle; trained ones become smooth oriented edge and blob detectors, and
their feature maps light up on the strokes they match. The study notes' fourth section (after
Saito, "Deep Learning from Scratch", 7.6). ``neighbor_correlation`` puts a number on "smooth":
the correlation between horizontally and vertically adjacent weights of a filter, about 0 for
random filters.
"""
from __future__ import annotations

import numpy as np

from fastcnn import plotting
from fastcnn.experiments._common import Run

NAME = "cnn"


def neighbor_correlation(w):
    """Mean over filters of the correlation between adjacent weights (right and down neighbours)
    of each 2-D filter: ``w`` is (OC, C, KH, KW)."""
    vals = []
    for f in w.reshape(-1, w.shape[-2], w.shape[-1]):
        a = np.concatenate([f[:, :-1].ravel(), f[:-1, :].ravel()])
        b = np.concatenate([f[:, 1:].ravel(), f[1:, :].ravel()])
        if a.std() > 0 and b.std() > 0:
            vals.append(np.corrcoef(a, b)[0, 1])
    return float(np.mean(vals))


def run(out_dir="runs/experiment-cnn", *, quick=False, seed=0, dpi=plotting.DPI, log=print):
    from fastcnn import data, layers, models, optim, train
    r = Run(NAME, out_dir, quick=quick, seed=seed, dpi=dpi, log=log)
    n_train, epochs = (400, 4) if quick else (None, 20)
    lr, batch_size = 0.001, 50
    ds = data.load_dataset("digits", seed=seed, resize=28, n_train=n_train)
    # the book's init (std 0.01): learned structure, not the random start, then dominates
    # the trained filters
    model = models.SimpleConvNet(input_shape=ds.input_shape, num_classes=10, weight_init=0.01,
                                 rng=seed)
    conv = next(layer for layer in model if isinstance(layer, layers.Conv2D))
    w_before = conv.weight.data.copy()
    opt = optim.Adam(model, lr=lr)
    h = train.fit(model, opt, ds.train, ds.val, epochs=epochs, batch_size=batch_size,
                  rng=np.random.default_rng(seed),
                  progress=lambda e, i: e == "epoch" and r.log(
                      f"  epoch {i['epoch']}/{i['epochs']}: train acc {i['train_acc']:.4f}, "
                      f"val acc {i['val_acc']:.4f}"))
    w_after = conv.weight.data.copy()
    test_loss, test_acc = train.evaluate(model, *ds.test)
    # feature maps of one test image (the first 3: curved strokes show more than a 1's bar),
    # the conv layer's output after its ReLU
    pick = int(np.flatnonzero(ds.y_test == 3)[0]) if np.any(ds.y_test == 3) else 0
    img = ds.x_test[pick:pick + 1]
    model.eval()
    fmap = model[1].forward(conv.forward(img)).copy()[0]
    model.train()
    corr_before, corr_after = neighbor_correlation(w_before), neighbor_correlation(w_after)
    r.log(f"  test accuracy {test_acc:.4f}; filter neighbour correlation {corr_before:.3f} "
          f"before, {corr_after:.3f} after training")

    r.plot("filters_before.png", lambda p: plotting.plot_image_grid(
        w_before[:, 0], p, ncols=10, dpi=dpi, title="conv1 filters before training (std 0.01)"))
    r.plot("filters_after.png", lambda p: plotting.plot_image_grid(
        w_after[:, 0], p, ncols=10, dpi=dpi,
        title=f"conv1 filters after {epochs} epochs (test acc {test_acc:.3f})"))

    def draw_maps(path):
        grid = [img[0, 0]] + list(fmap)
        labels = [f"input ({ds.y_test[pick]})"] + [f"map {i}" for i in range(len(fmap))]
        plotting.plot_image_grid(grid, path, ncols=8, dpi=dpi, labels=labels,
                                 title="feature maps (conv1 + ReLU) of one test digit")
    r.plot("feature_maps.png", draw_maps)
    r.plot("cnn_curves.png", lambda p: plotting.plot_history(
        h.to_dict(), p, dpi=dpi, title="SimpleConvNet on digits (28x28)"))

    key = {"test_acc": test_acc, "test_loss": test_loss,
           "filter_neighbor_corr_before": corr_before,
           "filter_neighbor_corr_after": corr_after,
           "filter_relative_change": float(np.linalg.norm(w_after - w_before)
                                           / np.linalg.norm(w_before)),
           "active_feature_maps": int(np.count_nonzero(fmap.reshape(len(fmap), -1).max(1) > 0))}
    config = {"dataset": "digits resized to 28x28", "n_train": len(ds.y_train),
              "model": model.config, "optimizer": f"Adam lr {lr}", "epochs": epochs,
              "batch_size": batch_size}
    results = {"history": h.to_dict(), "filters_before": w_before[:, 0],
               "filters_after": w_after[:, 0], "feature_map_max": fmap.max(axis=(1, 2))}
    return r.finish(config=config, key=key, results=results)
