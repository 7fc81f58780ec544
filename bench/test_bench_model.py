"""Benchmarks of one whole training step of each bundled model (issue 5): zero_grad, forward,
softmax cross-entropy, backward, Adam update -- fastcnn, the numpy reference backend, and an
equivalent torch.nn model with the same weights (bench/cases.py, "model" section).

One pytest-benchmark group per (case, dtype, threads), one test per impl. The AlexNet original
case (batch 8, 227x227, 1000 classes) is heavy and skipped unless `--bench-heavy`.
Peak memory is measured by `python bench/compare.py --ops model` (a fresh subprocess per
impl); test_peak_memory_smoke only checks that the mechanism works.
Run: `pytest bench/test_bench_model.py` (see bench/conftest.py for options).
"""
import pytest

import cases

OP = "model"


def test_model(run_case, case, impl, threads, dtype):
    run_case(case, impl, threads, dtype)


@pytest.mark.parametrize("impl", ["fastcnn", "torch"])
def test_peak_memory_smoke(impl):
    if impl == "torch":
        pytest.importorskip("torch")
    (case,) = cases.get_cases(ops=[OP], names=["simple-convnet"], small=True)
    r = cases.peak_memory(case, impl, threads=1, steps=1, timeout=120)
    assert "error" not in r, r
    assert r["peak_mb"] >= 0 and r["steps"] == 1
