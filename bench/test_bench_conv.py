"""Benchmarks of one conv layer: forward with bias, backward with dx, dweight, dbias.

One pytest-benchmark group per (case, dtype, threads), one test per impl (fastcnn, torch, numpy
reference); shapes and step functions come from bench/cases.py (shared with compare.py).
Run: `pytest bench/test_bench_conv.py` (see bench/conftest.py for options).
"""
OP = "conv"


def test_conv(run_case, case, impl, threads, dtype):
    run_case(case, impl, threads, dtype)
