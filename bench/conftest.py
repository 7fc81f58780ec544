"""pytest-benchmark configuration for fastcnn's bench/ suite.

Run from the repo root (the project's testpaths is tests/, so name bench/ explicitly):

    pytest bench/                                  # real timing, a few minutes
    pytest bench/ --benchmark-disable              # smoke: every step once (CI)
    pytest bench/ --benchmark-json=out.json        # keep the record
    pytest bench/ -k "cifar and t1"                # one shape, one thread count

One pytest-benchmark group per (op, case, dtype, threads) -- e.g. ``conv:cifar-3-64-3x3:float32:t1``
-- holding one test per impl: fastcnn (compiled backend), numpy (reference backend), torch
(skipped when PyTorch is not installed). The cases live in bench/cases.py, shared with
bench/compare.py.

Options added here:
  --bench-small          batch-2 variants of every shape (fast smoke runs)
  --bench-threads 1,2    thread counts to run
  --bench-impls fastcnn,torch,numpy
  --bench-numpy-rounds 3 rounds for the slow numpy reference (benchmark.pedantic, 1 warmup)
  --bench-heavy          also run the heavy cases (the AlexNet original training step: a
                         62M-parameter model; the "layers" suite: every layer shape of the
                         models), which are skipped by default so the CI smoke run
                         (`pytest bench/ --benchmark-disable`) stays fast
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cases  # noqa: E402

# PyTorch (when installed) loads before fastcnn: one OpenMP runtime serves both, at PyTorch's
# default wait policy rather than fastcnn's passive one (cases.openmp_runtime)
cases.openmp_runtime(("torch",))


def _csv(s):
    return [v.strip() for v in str(s).split(",") if v.strip()]


def pytest_addoption(parser):
    g = parser.getgroup("fastcnn-bench")
    g.addoption("--bench-small", action="store_true", default=False,
                help="use batch-%d variants of every benchmark shape" % cases.SMALL_BATCH)
    g.addoption("--bench-threads", default=",".join(map(str, cases.THREADS)),
                help="comma-separated thread counts (default: %(default)s)")
    g.addoption("--bench-impls", default=",".join(cases.IMPLS),
                help="comma-separated implementations (default: %(default)s)")
    g.addoption("--bench-numpy-rounds", type=int, default=3,
                help="timed rounds for the numpy reference (default: %(default)s)")
    g.addoption("--bench-heavy", action="store_true", default=False,
                help="also run heavy cases (AlexNet original training step, the models' "
                     "per-layer shapes), skipped by default")


def pytest_generate_tests(metafunc):
    """Tests taking `case`, `impl`, `threads` get the cases of their module's OP; ordered so
    the impls of one group run back to back (ratios taken under the same load)."""
    if not {"case", "impl", "threads"} <= set(metafunc.fixturenames):
        return
    cfg = metafunc.config
    op = getattr(metafunc.module, "OP")
    small = cfg.getoption("--bench-small")
    threads = [int(t) for t in _csv(cfg.getoption("--bench-threads"))]
    impls = _csv(cfg.getoption("--bench-impls"))
    heavy_ok = cfg.getoption("--bench-heavy")
    params, ids = [], []
    for case in cases.get_cases(ops=[op], small=small, suites=None):
        marks = () if heavy_ok or not case.heavy else (
            pytest.mark.skip(reason="heavy case: run with --bench-heavy"),)
        for dtype in cases.DTYPES:
            for t in threads:
                for impl in impls:
                    params.append(pytest.param(case, impl, t, dtype, marks=marks))
                    ids.append(f"{case.name}-{dtype}-t{t}-{impl}")
    metafunc.parametrize(("case", "impl", "threads", "dtype"), params, ids=ids)


@pytest.fixture
def run_case(benchmark, request):
    """run_case(case, impl, threads, dtype): time one step of `impl` under pytest-benchmark."""
    numpy_rounds = request.config.getoption("--bench-numpy-rounds")

    def run(case, impl, threads, dtype="float32"):
        if impl == "torch":
            pytest.importorskip("torch")
        limit = cases.max_threads(impl)
        if limit is not None and threads > limit:
            pytest.skip(f"{impl} can use at most {limit} thread(s) in this build (no OpenMP)")
        step = case.setup(impl, dtype)
        benchmark.group = case.group(dtype, threads)
        flops, nbytes = case.flops(), case.traffic(dtype)
        benchmark.extra_info.update(
            op=case.op, case=case.name, title=case.title, shape=case.shape_str(), impl=impl,
            threads=threads, dtype=dtype,
            gflop=None if flops is None else flops / 1e9,
            gbytes=None if nbytes is None else nbytes / 1e9,
        )
        with cases.impl_context(impl, threads):
            if benchmark.disabled:
                result = benchmark(step)       # smoke: pytest-benchmark calls it once
            elif impl == "numpy":
                result = benchmark.pedantic(step, rounds=numpy_rounds, iterations=1,
                                            warmup_rounds=1)
            else:
                step()                         # warmup (oneDNN primitive creation, page faults)
                result = benchmark(step)
        if benchmark.enabled:
            cases.quiesce(impl, threads)      # let idle BLAS/OpenMP workers stop spinning
        if benchmark.enabled and benchmark.stats is not None:
            median = benchmark.stats.stats.median
            rate, unit = case.rate(median, dtype)
            if rate is not None:
                benchmark.extra_info[unit] = round(rate, 3)
        return result

    return run
