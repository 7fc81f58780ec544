"""Benchmarks of softmax cross-entropy (the loss layer): forward (mean loss), backward (dL/dlogits).

One pytest-benchmark group per (case, dtype, threads), one test per impl (fastcnn, torch, numpy
reference); shapes and step functions come from bench/cases.py (shared with compare.py).
Run: `pytest bench/test_bench_loss.py` (see bench/conftest.py for options).
"""
OP = "loss"


def test_loss(run_case, case, impl, threads, dtype):
    run_case(case, impl, threads, dtype)
