"""Benchmarks of batch norm: training forward (batch statistics + running-stat update), backward.

One pytest-benchmark group per (case, dtype, threads), one test per impl (fastcnn, torch, numpy
reference); shapes and step functions come from bench/cases.py (shared with compare.py).
Run: `pytest bench/test_bench_batchnorm.py` (see bench/conftest.py for options).
"""
OP = "bn"


def test_bn(run_case, case, impl, threads, dtype):
    run_case(case, impl, threads, dtype)
