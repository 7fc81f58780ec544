"""Benchmarks of ReLU (the layer): forward, backward.

One pytest-benchmark group per (case, dtype, threads), one test per impl (fastcnn, torch, numpy
reference); shapes and step functions come from bench/cases.py (shared with compare.py).
Run: `pytest bench/test_bench_relu.py` (see bench/conftest.py for options).
"""
OP = "relu"


def test_relu(run_case, case, impl, threads, dtype):
    run_case(case, impl, threads, dtype)
