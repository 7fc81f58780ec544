"""fastcnn.data: the digits default, IDX / npz / CIFAR-10 binary loaders on small files written
here (well-formed, truncated and corrupted), the synthetic set, transforms and batching.

The oracles are the arrays the tests themselves wrote, and torch's interpolate for resizing.
"""
import gzip
import importlib.util
import subprocess
import sys
import tarfile
import warnings

import numpy as np
import pytest

from fastcnn import data as D
from fastcnn.data import DatasetError, DatasetNotFoundError
from fastcnn.data import digits as digits_module


# ---------------------------------------------------------------------------- helpers

def write_mnist_folder(folder, n_train=40, n_test=20, gz=False, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": (np.arange(n_train) % 10).astype(np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": (np.arange(n_test) % 10).astype(np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for key, stem in D.mnist.MNIST_FILES.items():
        paths[key] = folder / (stem + (".gz" if gz else ""))
        D.write_idx(paths[key], arrays[key])
    return arrays, paths


def cifar_bytes(n, seed, label_fn=None):
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % 10).astype(np.uint8) if label_fn is None else label_fn(n)
    pixels = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    return np.concatenate([labels[:, None], pixels], axis=1).tobytes(), labels, pixels


def write_cifar_folder(folder, n=12):
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for i, name in enumerate(D.cifar.TRAIN_FILES + (D.cifar.TEST_FILE,)):
        raw, labels, pixels = cifar_bytes(n, i)
        (folder / name).write_bytes(raw)
        out[name] = (labels, pixels)
    return out


# ---------------------------------------------------------------------------- digits

def test_digits_default_split():
    ds = D.load_dataset("digits")
    assert ds.input_shape == (1, 8, 8)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    n = len(ds.y_train) + len(ds.y_val) + len(ds.y_test)
    assert n == 1797
    assert 350 <= len(ds.y_test) <= 370 and 170 <= len(ds.y_val) <= 190
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    # class-balanced: every class in every split, test counts within 2 of each other
    for y in (ds.y_train, ds.y_val, ds.y_test):
        counts = np.bincount(y, minlength=10)
        assert counts.min() > 0
    assert np.ptp(np.bincount(ds.y_test)) <= 2


def test_digits_split_is_disjoint_and_seeded():
    a = D.load_digits(seed=3)
    b = D.load_digits(seed=3)
    c = D.load_digits(seed=4)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.y_test, c.y_test)
    # no image appears in two splits (digits has a few exact duplicates, so compare rows by index)
    images, _ = D.load_digits_arrays()
    flat = (images / 16.0).reshape(len(images), -1).astype(np.float32)
    keys = {row.tobytes(): i for i, row in enumerate(flat)}
    idx = [{keys[r.tobytes()] for r in s.reshape(len(s), -1)}
           for s in (a.x_train, a.x_val, a.x_test)]
    assert not (idx[0] & idx[1]) and not (idx[0] & idx[2]) and not (idx[1] & idx[2])


def test_digits_resize_to_28():
    ds = D.load_dataset("digits", resize=28)
    assert ds.input_shape == (1, 28, 28)
    assert ds.x_test.shape[1:] == (1, 28, 28) and ds.x_val.shape[1:] == (1, 28, 28)
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    small = D.load_dataset("digits")
    # the mean brightness survives bilinear upsampling (up to the border clamp)
    assert abs(ds.x_train.mean() - small.x_train.mean()) < 0.02


def test_digits_read_from_sklearns_file_without_importing_it(tmp_path):
    """The arrays equal scikit-learn's own load_digits, and reading them imports no sklearn
    (a fresh interpreter; its import cost a second of every `fastcnn train`)."""
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    images, labels = D.load_digits_arrays()
    ref = sklearn_datasets.load_digits()
    assert images.dtype == np.float64 and labels.dtype == np.int64
    np.testing.assert_array_equal(images, ref.images)
    np.testing.assert_array_equal(labels, ref.target)
    code = ("import sys; from fastcnn import data as D; D.load_digits_arrays(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'sklearn'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=tmp_path)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("content", [None, "", "1,2,3\n", "0," * 64 + "99\n"],
                         ids=["missing", "empty", "short", "label-99"])
def test_digits_fall_back_to_sklearns_loader(monkeypatch, tmp_path, content):
    """A digits.csv.gz that is missing, empty or not the 1797 x 65 table of digits sends the
    loader to scikit-learn's load_digits, which gives the same arrays."""
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    fake = tmp_path / "sklearn"
    (fake / "datasets" / "data").mkdir(parents=True)
    if content is not None:
        with gzip.open(fake / "datasets" / "data" / "digits.csv.gz", "wt") as f:
            f.write(content)
    spec = importlib.util.spec_from_file_location("sklearn", fake / "__init__.py",
                                                  submodule_search_locations=[str(fake)])
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: spec if name == "sklearn" else None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                  # an empty file falls back silently
        assert digits_module._installed_digits_table() is None
    monkeypatch.undo()
    monkeypatch.setattr(digits_module, "_installed_digits_table", lambda: None)
    images, labels = D.load_digits_arrays()
    np.testing.assert_array_equal(images, sklearn_datasets.load_digits().images)
    np.testing.assert_array_equal(labels, sklearn_datasets.load_digits().target)


def test_digits_without_sklearn_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r'pip install "fastcnn\[data\]"'):
        D.load_digits()


def test_digits_takes_no_path(tmp_path):
    with pytest.raises(ValueError, match="no path"):
        D.load_dataset("digits", path=tmp_path)


def test_load_dataset_unknown_name_and_n_train():
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'"):
        D.load_dataset("imagenet")
    ds = D.load_dataset("digits", n_train=100)
    assert len(ds.y_train) == 100 and len(np.unique(ds.y_train)) == 10
    with pytest.raises(ValueError, match="n_train"):
        D.load_dataset("digits", n_train=0)


# ---------------------------------------------------------------------------- IDX

@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("gz", [False, True])
def test_idx_roundtrip(tmp_path, dtype, gz):
    a = (np.arange(2 * 3 * 5) - 7).reshape(2, 3, 5).astype(dtype) if np.dtype(dtype).kind != "u" \
        else np.arange(30, dtype=dtype).reshape(2, 3, 5)
    p = tmp_path / ("a.idx" + (".gz" if gz else ""))
    D.write_idx(p, a)
    assert (p.read_bytes()[:2] == b"\x1f\x8b") == gz
    b = D.read_idx(p)
    assert b.dtype == np.dtype(dtype) and b.dtype.isnative and b.flags.writeable
    np.testing.assert_array_equal(a, b)


def test_idx_header_is_big_endian_mnist_magic(tmp_path):
    p = tmp_path / "x"
    D.write_idx(p, np.zeros((3, 28, 28), np.uint8))
    raw = p.read_bytes()
    assert raw[:4] == bytes([0, 0, 8, 3]) and raw[4:8] == (3).to_bytes(4, "big")
    assert len(raw) == 16 + 3 * 28 * 28


@pytest.mark.parametrize("gz", [False, True])
def test_idx_truncated(tmp_path, gz):
    p = tmp_path / "images"
    D.write_idx(p, np.ones((5, 28, 28), np.uint8), compress=False)
    raw = p.read_bytes()[:-100]
    if gz:
        raw = gzip.compress(raw)
    p.write_bytes(raw)
    with pytest.raises(DatasetError, match=r"images: truncated: .*5x28x28 uint8.*3936 bytes.*3836"):
        D.read_idx(p)


def test_idx_truncated_header_and_empty(tmp_path):
    p = tmp_path / "h"
    p.write_bytes(bytes([0, 0, 8, 3, 0, 0]))
    with pytest.raises(DatasetError, match="h: truncated inside the header"):
        D.read_idx(p)
    p.write_bytes(b"")
    with pytest.raises(DatasetError, match="too short for an IDX header"):
        D.read_idx(p)


def test_idx_bad_magic_and_extra_bytes(tmp_path):
    p = tmp_path / "junk.bin"
    p.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(DatasetError, match=r"junk.bin: bad magic number 0x504B0304"):
        D.read_idx(p)
    q = tmp_path / "long"
    D.write_idx(q, np.zeros(10, np.uint8))
    q.write_bytes(q.read_bytes() + b"xx")
    with pytest.raises(DatasetError, match="2 unexpected bytes"):
        D.read_idx(q)


def test_idx_wrong_kind(tmp_path):
    p = tmp_path / "labels"
    D.write_idx(p, np.zeros(10, np.uint8))
    with pytest.raises(DatasetError, match=r"0x00000801 .* but 0x00000803 .* was expected"):
        D.read_idx(p, expect_ndim=3, expect_dtype=np.uint8)


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_idx_corrupted_gzip(tmp_path, damage):
    p = tmp_path / "t.gz"
    D.write_idx(p, np.random.default_rng(0).integers(0, 256, (50, 28, 28), dtype=np.uint8))
    raw = bytearray(p.read_bytes())
    if damage == "truncate":
        raw = raw[: len(raw) // 2]
    else:
        for i in range(len(raw) // 3, len(raw) // 3 + 32):
            raw[i] ^= 0xFF
    p.write_bytes(bytes(raw))
    with pytest.raises(DatasetError, match=r"t.gz: corrupted or truncated gzip"):
        D.read_idx(p)


def test_write_idx_rejects_unsupported_dtype(tmp_path):
    with pytest.raises(TypeError, match="no IDX type code"):
        D.write_idx(tmp_path / "a", np.zeros(3, np.int64))


# ---------------------------------------------------------------------------- MNIST

@pytest.mark.parametrize("gz", [False, True])
def test_mnist_folder(tmp_path, gz):
    arrays, _ = write_mnist_folder(tmp_path / "m", gz=gz)
    ds = D.load_mnist(tmp_path / "m", val_size=10, seed=0)
    assert ds.x_train.shape == (30, 1, 28, 28) and ds.x_val.shape == (10, 1, 28, 28)
    assert ds.x_test.shape == (20, 1, 28, 28) and ds.x_test.dtype == np.float32
    np.testing.assert_allclose(ds.x_test[:, 0], arrays["x_test"] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(ds.y_test, arrays["y_test"])
    seen = np.concatenate([ds.y_train, ds.y_val])
    assert sorted(seen.tolist()) == sorted(arrays["y_train"].tolist())
    assert ds.info["source"].endswith("m")


def test_mnist_alternative_file_names(tmp_path):
    arrays, paths = write_mnist_folder(tmp_path)
    for p in paths.values():
        p.rename(p.with_name(p.name.replace("-idx", ".idx")))
    x_tr, y_tr, x_te, y_te = D.load_mnist_arrays(tmp_path)
    np.testing.assert_array_equal(x_tr, arrays["x_train"])


def test_fashion_mnist_from_default_root(tmp_path, monkeypatch):
    write_mnist_folder(tmp_path / "fashion-mnist", gz=True)
    monkeypatch.setenv("FASTCNN_DATA", str(tmp_path))
    ds = D.load_dataset("fashion-mnist", val_size=0)
    assert ds.name == "fashion-mnist" and ds.class_names[0] == "T-shirt/top"
    assert len(ds.y_val) == 0 and len(ds.y_train) == 40


def test_mnist_missing_everything_says_where(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTCNN_DATA", str(tmp_path))
    with pytest.raises(DatasetNotFoundError) as e:
        D.load_dataset("mnist")
    msg = str(e.value)
    assert str(tmp_path / "mnist") in msg and "train-images-idx3-ubyte" in msg
    assert "never downloads" in msg and "t10k-labels-idx1-ubyte" in msg


def test_mnist_missing_one_file(tmp_path):
    _, paths = write_mnist_folder(tmp_path)
    paths["y_test"].unlink()
    with pytest.raises(DatasetNotFoundError, match=r"missing t10k-labels-idx1-ubyte\[\.gz\]"):
        D.load_mnist(tmp_path)


def test_mnist_label_out_of_range(tmp_path):
    arrays, paths = write_mnist_folder(tmp_path)
    y = arrays["y_train"].copy()
    y[3] = 10
    D.write_idx(paths["y_train"], y)
    with pytest.raises(DatasetError, match=r"train-labels-idx1-ubyte: 1 labels outside \[0, 9\]"):
        D.load_mnist(tmp_path)


def test_mnist_count_mismatch_and_size(tmp_path):
    arrays, paths = write_mnist_folder(tmp_path)
    D.write_idx(paths["y_test"], arrays["y_test"][:-1])
    with pytest.raises(DatasetError, match=r"t10k-images-idx3-ubyte: 20 images but .* 19 labels"):
        D.load_mnist(tmp_path)
    write_mnist_folder(tmp_path)
    D.write_idx(paths["x_train"], np.zeros((40, 27, 28), np.uint8))
    with pytest.raises(DatasetError,
                       match=r"train-images-idx3-ubyte: images have shape \(40, 27, 28\)"):
        D.load_mnist(tmp_path)


def test_mnist_files_swapped(tmp_path):
    _, paths = write_mnist_folder(tmp_path)
    raw = paths["x_test"].read_bytes()
    paths["x_test"].write_bytes(paths["y_test"].read_bytes())
    paths["y_test"].write_bytes(raw)
    with pytest.raises(DatasetError, match="t10k-images-idx3-ubyte: magic number 0x00000801"):
        D.load_mnist(tmp_path)


def test_mnist_truncated_file_named(tmp_path):
    _, paths = write_mnist_folder(tmp_path, gz=True)
    raw = gzip.decompress(paths["x_train"].read_bytes())
    paths["x_train"].write_bytes(gzip.compress(raw[: len(raw) - 28 * 28 - 5]))
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte\.gz: truncated"):
        D.load_mnist(tmp_path)


def npz_arrays(n_train=30, n_test=10):
    rng = np.random.default_rng(1)
    return dict(x_train=rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
                y_train=np.arange(n_train) % 10,
                x_test=rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
                y_test=np.arange(n_test) % 10)


def test_mnist_npz(tmp_path):
    arrays = npz_arrays()
    p = tmp_path / "mnist.npz"
    np.savez_compressed(p, **arrays)
    ds = D.load_dataset("mnist", path=p, val_size=0.2)
    assert ds.x_train.shape == (24, 1, 28, 28) and len(ds.y_val) == 6
    np.testing.assert_allclose(ds.x_test[:, 0], arrays["x_test"] / 255.0, rtol=1e-6)
    # <name>.npz inside the folder is found too
    ds2 = D.load_mnist(tmp_path, val_size=0)
    assert len(ds2.y_train) == 30


def test_mnist_npz_missing_key_truncated_and_pickled(tmp_path):
    arrays = npz_arrays()
    p = tmp_path / "a.npz"
    np.savez(p, x_train=arrays["x_train"], y_train=arrays["y_train"])
    with pytest.raises(DatasetError, match=r"a.npz: .npz has keys \['x_train', 'y_train'\]"):
        D.load_mnist(p)
    np.savez(p, **arrays)
    p.write_bytes(p.read_bytes()[:1000])
    with pytest.raises(DatasetError, match="a.npz: not a readable .npz archive"):
        D.load_mnist(p)
    obj = dict(arrays, y_test=np.array([object()] * 10, dtype=object))
    np.savez(p, **obj)
    with pytest.raises(DatasetError, match="a.npz"):
        D.load_mnist(p)


def test_mnist_npz_bad_labels(tmp_path):
    arrays = npz_arrays()
    arrays["y_test"] = arrays["y_test"].astype(np.float64)
    p = tmp_path / "b.npz"
    np.savez(p, **arrays)
    with pytest.raises(DatasetError, match=r"b.npz\[y_test\]: labels have dtype float64"):
        D.load_mnist(p)


# ---------------------------------------------------------------------------- CIFAR-10

def test_cifar10_folder(tmp_path):
    written = write_cifar_folder(tmp_path / "cifar-10-batches-bin")
    x_tr, y_tr, x_te, y_te = D.load_cifar10_arrays(tmp_path)   # the parent folder works too
    assert x_tr.shape == (60, 3, 32, 32) and x_te.shape == (12, 3, 32, 32)
    labels, pixels = written["test_batch.bin"]
    np.testing.assert_array_equal(y_te, labels)
    # channel-major layout: the first 1024 bytes are the red plane, row by row
    np.testing.assert_array_equal(x_te[0, 0], pixels[0, :1024].reshape(32, 32))
    np.testing.assert_array_equal(x_te[0, 2, 31], pixels[0, 3072 - 32:])
    ds = D.load_dataset("cifar10", path=tmp_path / "cifar-10-batches-bin", val_size=10)
    assert ds.input_shape == (3, 32, 32) and len(ds.y_val) == 10
    assert abs(float(ds.x_train.mean())) < 1e-3          # standardized with train statistics
    assert ds.class_names[0] == "airplane"


def test_cifar10_tar_gz(tmp_path):
    write_cifar_folder(tmp_path / "src" / "cifar-10-batches-bin")
    archive = tmp_path / "cifar-10-binary.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-bin", arcname="cifar-10-batches-bin")
    a = D.load_cifar10_arrays(archive)
    b = D.load_cifar10_arrays(tmp_path / "src")
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    d = tmp_path / "only-archive"
    d.mkdir()
    archive.rename(d / archive.name)
    assert D.load_cifar10_arrays(d)[0].shape == (60, 3, 32, 32)


def test_cifar10_truncated_archive(tmp_path):
    write_cifar_folder(tmp_path / "src")
    archive = tmp_path / "c.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src", arcname="cifar-10-batches-bin")
    archive.write_bytes(archive.read_bytes()[:5000])
    with pytest.raises(DatasetError, match="c.tar.gz: not a readable tar archive"):
        D.load_cifar10_arrays(archive)


def test_cifar10_truncated_batch(tmp_path):
    write_cifar_folder(tmp_path)
    p = tmp_path / "data_batch_3.bin"
    p.write_bytes(p.read_bytes()[:-100])
    with pytest.raises(DatasetError, match=r"data_batch_3.bin: 36776 bytes is not a whole number "
                                           r"of 3073-byte records \(11 records \+ 2973 bytes\)"):
        D.load_cifar10_arrays(tmp_path)


def test_cifar10_truncated_at_record_boundary(tmp_path):
    write_cifar_folder(tmp_path)
    p = tmp_path / "data_batch_2.bin"
    p.write_bytes(p.read_bytes()[: 5 * 3073])
    with pytest.raises(DatasetError,
                       match="data_batch_2.bin: 5 records but .*data_batch_1.bin has 12"):
        D.load_cifar10_arrays(tmp_path)


def test_cifar10_bad_label(tmp_path):
    write_cifar_folder(tmp_path)
    raw, _, _ = cifar_bytes(12, 0, label_fn=lambda n: np.full(n, 11, np.uint8))
    (tmp_path / "test_batch.bin").write_bytes(raw)
    with pytest.raises(DatasetError, match=r"test_batch.bin: 12 labels outside \[0, 9\]"):
        D.load_cifar10_arrays(tmp_path)


def test_cifar10_missing_and_pickle_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTCNN_DATA", str(tmp_path))
    with pytest.raises(DatasetNotFoundError) as e:
        D.load_dataset("cifar10")
    msg = str(e.value)
    assert str(tmp_path / "cifar10") in msg and "cifar-10-binary.tar.gz" in msg
    assert "data_batch_1.bin" in msg
    p = tmp_path / "cifar-10-python.tar.gz"
    p.write_bytes(b"whatever")
    with pytest.raises(DatasetError, match="pickled Python version"):
        D.load_cifar10_arrays(p)


# ---------------------------------------------------------------------------- synthetic

@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32), (12, 20), (2, 5, 9)])
def test_synthetic_shapes_and_seed(shape):
    x, y = D.make_synthetic(60, shape, num_classes=4, seed=7)
    want = shape if len(shape) == 3 else (1,) + shape
    assert x.shape == (60,) + want and x.dtype == np.float32 and y.dtype == np.int64
    assert np.bincount(y).tolist() == [15, 15, 15, 15]
    x2, y2 = D.make_synthetic(60, shape, num_classes=4, seed=7)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    x3, _ = D.make_synthetic(60, shape, num_classes=4, seed=8)
    assert not np.array_equal(x, x3)


def test_synthetic_is_learnable_by_class_means():
    # nearest class mean on noise-free-ish data separates the classes: the labels carry signal
    x, y = D.make_synthetic(400, (1, 16, 16), 4, noise=0.2, max_shift=0, distractor=0.0, seed=0)
    flat = x.reshape(len(x), -1)
    means = np.stack([flat[y == k].mean(0) for k in range(4)])
    pred = np.argmin(((flat[:, None] - means[None]) ** 2).sum(-1), axis=1)
    assert (pred == y).mean() > 0.95


def test_synthetic_dataset_and_bad_args():
    ds = D.load_dataset("synthetic", image_shape=(3, 32, 32), n_samples=200, num_classes=10)
    assert ds.input_shape == (3, 32, 32)
    assert len(ds.y_train) + len(ds.y_val) + len(ds.y_test) == 200
    with pytest.raises(ValueError, match="image_shape"):
        D.make_synthetic(10, (1, 2, 3, 4))
    with pytest.raises(ValueError, match="num_classes"):
        D.make_synthetic(10, (1, 4, 4), num_classes=1)


# ---------------------------------------------------------------------------- transforms

def test_one_hot():
    np.testing.assert_array_equal(D.one_hot(np.array([2, 0, 1]), 4),
                                  [[0, 0, 1, 0], [1, 0, 0, 0], [0, 1, 0, 0]])
    assert D.one_hot(np.array([1, 3])).shape == (2, 4)
    with pytest.raises(ValueError, match=r"\[0, 2\]"):
        D.one_hot(np.array([3]), 3)
    with pytest.raises(TypeError, match="integers"):
        D.one_hot(np.array([0.5]))


def test_standardize_uses_train_statistics():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((50, 3, 4, 4)) * [[[[2.0]], [[3.0]], [[0.5]]]] + 5).astype(np.float32)
    z, mean, std = D.standardize(x)
    assert z.dtype == np.float32 and mean.shape == (3,)
    np.testing.assert_allclose(z.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=(0, 2, 3)), 1, atol=1e-4)
    np.testing.assert_allclose(D.apply_standardize(x[:5], mean, std), z[:5], atol=1e-6)
    assert D.to_float(np.array([0, 255], np.uint8)).tolist() == [0.0, 1.0]


def test_resize_matches_torch_bilinear():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).random((2, 3, 8, 8))
    for size in (28, (5, 11), 8):
        ours = D.resize_images(x, size)
        ref = torch.nn.functional.interpolate(torch.from_numpy(x), size=size, mode="bilinear",
                                              align_corners=False).numpy()
        np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_resize_constant_and_identity():
    x = np.full((1, 1, 8, 8), 0.25, np.float32)
    y = D.resize_images(x, 28)
    assert y.dtype == np.float32 and y.shape == (1, 1, 28, 28)
    np.testing.assert_allclose(y, 0.25, rtol=1e-6)
    z = np.random.default_rng(0).random((2, 1, 6, 7))
    np.testing.assert_allclose(D.resize_images(z, (6, 7)), z, atol=1e-12)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        D.resize_images(np.zeros((8, 8)), 4)


# ---------------------------------------------------------------------------- batching

def test_batch_iterator_covers_and_reshuffles():
    x = np.arange(23)[:, None].astype(np.float32)
    y = np.arange(23)
    it = D.BatchIterator(x, y, batch_size=5, rng=np.random.default_rng(0))
    assert len(it) == 5
    epochs = []
    for _ in range(2):
        batches = list(it)
        assert [len(b[1]) for b in batches] == [5, 5, 5, 5, 3]
        order = np.concatenate([b[1] for b in batches])
        assert sorted(order.tolist()) == list(range(23))
        for xb, yb in batches:
            np.testing.assert_array_equal(xb[:, 0], yb)
        epochs.append(order)
    assert not np.array_equal(epochs[0], epochs[1])        # a new permutation each epoch
    again = D.BatchIterator(x, y, batch_size=5, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(np.concatenate([b[1] for b in again]), epochs[0])


def test_batch_iterator_options():
    x = np.arange(10)
    it = D.BatchIterator(x, batch_size=4, shuffle=False, drop_last=True)
    assert len(it) == 2 and [b.tolist() for b in it] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert [len(b) for b in D.iterate_minibatches(x, batch_size=3, shuffle=False)] == [3, 3, 3, 1]
    with pytest.raises(ValueError, match="batch_size"):
        D.BatchIterator(x, batch_size=0)
    with pytest.raises(ValueError, match="differ in length"):
        D.BatchIterator(x, np.arange(9))
