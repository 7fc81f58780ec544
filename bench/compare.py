#!/usr/bin/env python
"""One table of fastcnn's standing: fastcnn vs PyTorch vs the numpy reference, per shape.

    python bench/compare.py                       # all cases, 1 and 2 threads
    python bench/compare.py --quick               # fewer rounds (about a minute)
    python bench/compare.py --ops conv --threads 1 --repeat 11 --json out.json
    python bench/compare.py --check               # do the impls compute the same thing?
    python bench/compare.py --ops model           # whole training steps + peak memory

For every case (bench/cases.py: the shapes of PERFORMANCE.md's peer table, ReLU and the loss)
and thread count it builds each impl's step once, warms it up, then times `--repeat` rounds,
interleaving the impls inside each round (rotating who goes first) so their ratios are taken
under the same machine load, with a short pause after each impl so its idle threads stop
spinning (cases.quiesce). fastcnn and PyTorch share one OpenMP runtime in a process; PyTorch is
loaded first, so that it runs at its own default wait policy rather than fastcnn's passive one
(cases.openmp_runtime; the header's openmp line records it). A round times `k` back-to-back
calls (k chosen so a round lasts >= --min-time) and records the mean per call; the table shows
the median over rounds. The numpy reference (slow) is timed in only the first --numpy-repeat
rounds. Columns:

  fastcnn / torch / numpy   median ms per step (forward + backward of one layer; for the
                            model op one training step: zero_grad, forward, loss, backward,
                            Adam update)
  fc/torch                  fastcnn time / PyTorch time (target <= 0.67, PERFORMANCE.md)
  np/fc                     numpy reference time / fastcnn time (speed-up over the reference)
  rate                      GFLOP/s for convolutions (2*N*OC*C*KH*KW*OH*OW per pass, x3),
                            GB/s of compulsory memory traffic for pooling, batch norm, ReLU
                            and the loss (pool: read x, write y + int32 indices, read dy +
                            indices, write dx; batch norm and ReLU: 5 passes of N*C*H*W: x, y;
                            x (ReLU: y), dy, dx; softmax cross-entropy: 3 passes of the logits
                            (read, read again, write the gradient) and the labels); model:
                            GFLOP/s of its conv + affine layers (forward, dW, dx except the
                            first layer's), other layers and Adam not counted
  load                      1-minute load average when the row finished (> ~0.5 on this
                            2-core machine: 2-thread numbers are not trustworthy)
  peak MB fc/torch/np       model op only: peak memory of a training step per impl, measured
                            after the timing in a fresh subprocess per (case, impl, threads)
                            (cases.peak_memory): peak RSS over --mem-steps steps minus the RSS
                            of the warmed-up process before the model was built, minus library
                            code pages faulted in -- parameters, gradients, optimizer state,
                            activations, workspaces, scratch. --no-mem skips it.
  mem fc/t                  fastcnn peak MB / PyTorch peak MB (target <= 1.0)

PyTorch is skipped (with a note) when not installed. The load average (os.getloadavg) is printed
at start and end: the machine is shared, so read ratios, not absolute times, and re-run when the
load is high. BLAS details come from threadpoolctl when importable. This script never changes
OPENBLAS_* variables; to run without them, unset them in the command itself:
`env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/compare.py`. To see an AVX2-only CPU
on an AVX-512 one, cap all three libraries in the command (the header's env line records it):
`FASTCNN_SIMD=avx2 OPENBLAS_CORETYPE=Haswell ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2
python bench/compare.py`.
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cases  # noqa: E402

TARGET_VS_TORCH = 0.67


def _csv(s):
    return [v.strip() for v in s.split(",") if v.strip()]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, nargs="+", default=list(cases.THREADS),
                   help="thread counts (default: 1 2)")
    p.add_argument("--repeat", type=int, default=None, help="timed rounds per impl (default 7; 3 with --quick)")
    p.add_argument("--numpy-repeat", type=int, default=None,
                   help="timed rounds for the slow numpy reference (default 3; 1 with --quick)")
    p.add_argument("--warmup", type=int, default=None, help="warmup calls per impl (default 2; 1 with --quick)")
    p.add_argument("--min-time", type=float, default=None,
                   help="seconds one round should last at least (default 0.05; 0.02 with --quick)")
    p.add_argument("--quick", action="store_true", help="fewer rounds: a fast look at the standing")
    p.add_argument("--small", action="store_true",
                   help=f"batch-{cases.SMALL_BATCH} variants of every shape (smoke test)")
    p.add_argument("--ops", type=_csv, default=None,
                   help=f"comma-separated ops (default: all of {','.join(cases.OPS)})")
    p.add_argument("--cases", type=_csv, default=None, help="comma-separated case names")
    p.add_argument("--suite", choices=cases.SUITES + ("all",), default="peers",
                   help="peers: PERFORMANCE.md's shapes (default); layers: every other layer "
                        "shape of the study's models; all: both")
    p.add_argument("--impls", type=_csv, default=list(cases.IMPLS),
                   help="comma-separated impls (default: fastcnn,torch,numpy)")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--json", metavar="PATH", help="also write every sample and the machine facts")
    p.add_argument("--check", action="store_true",
                   help="instead of timing: run each impl once and print max relative error vs torch")
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    p.add_argument("--no-mem", action="store_true",
                   help="model op: skip the peak-memory subprocesses")
    p.add_argument("--mem-steps", type=int, default=3,
                   help="model op: training steps per peak-memory subprocess (default 3)")
    a = p.parse_args(argv)
    a.repeat = a.repeat or (3 if a.quick else 7)
    a.numpy_repeat = a.numpy_repeat or (1 if a.quick else 3)
    a.warmup = a.warmup if a.warmup is not None else (1 if a.quick else 2)
    a.min_time = a.min_time if a.min_time is not None else (0.02 if a.quick else 0.05)
    if a.ops:
        bad = [o for o in a.ops if o not in cases.OPS]
        if bad:
            p.error(f"unknown op(s) {bad}; known: {list(cases.OPS)}")
    bad = [i for i in a.impls if i not in cases.IMPLS]
    if bad:
        p.error(f"unknown impl(s) {bad}; known: {list(cases.IMPLS)}")
    return a


# --------------------------------------------------------------------------------------------
def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _load():
    try:
        return tuple(round(v, 2) for v in os.getloadavg())
    except OSError:
        return None


def machine_facts(impls):
    facts = {
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "python": platform.python_version(),
        "numpy": __import__("numpy").__version__,
        # the variables that change what runs: BLAS kernels and threads, fastcnn's backend and
        # instruction set, PyTorch's (ATen's and oneDNN's): an AVX2-only CPU is run on an AVX-512
        # one by capping all of them (README, Performance)
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                               "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                               "FASTCNN_BACKEND", "FASTCNN_SIMD",
                                               "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")
                if k in os.environ},
    }
    if "torch" in impls:
        facts["torch"] = cases.torch_module().__version__
    if "fastcnn" in impls or "numpy" in impls:
        fc = cases.fastcnn_module()
        facts["fastcnn"] = fc.__version__
        facts["fastcnn_file"] = os.path.dirname(fc.__file__)
        try:
            from fastcnn import _config
            facts["fastcnn_config"] = {k: str(v) for k, v in _config.config_info().items()}
        except Exception as err:  # pragma: no cover - informative only
            facts["fastcnn_config"] = {"error": repr(err)}
    facts["threadpoolctl"] = cases.blas_info()
    return facts


def _blas_line(info):
    parts = []
    for d in info:
        if d.get("user_api") == "blas":
            parts.append(f"{d.get('internal_api')} {d.get('version')} "
                         f"(kernel {d.get('architecture')}, {d.get('threading_layer')}, "
                         f"{d.get('num_threads')} threads)")
    return "; ".join(parts) or "threadpoolctl reports no BLAS (or is not installed)"


# --------------------------------------------------------------------------------------------
def _time_calls(step, k):
    gc_was = gc.isenabled()
    gc.disable()
    try:
        t0 = time.perf_counter()
        for _ in range(k):
            step()
        return (time.perf_counter() - t0) / k
    finally:
        if gc_was:
            gc.enable()


def measure(case, impls, threads, args):
    impls = [i for i in impls if (cases.max_threads(i) or threads) >= threads]
    steps = {impl: case.setup(impl, args.dtype) for impl in impls}
    inner = {}
    for impl in impls:
        with cases.impl_context(impl, threads):
            n_warm = 1 if impl == "numpy" else max(1, args.warmup)
            for _ in range(n_warm):
                t = _time_calls(steps[impl], 1)
        cases.quiesce(impl, threads)
        # the numpy reference too: one call a round left its microsecond ops (the loss) timing
        # the timer and a cold start
        inner[impl] = max(1, min(200, math.ceil(args.min_time / t)))
    samples = {impl: [] for impl in impls}
    for r in range(args.repeat):
        order = impls[r % len(impls):] + impls[:r % len(impls)]
        for impl in order:
            if impl == "numpy" and r >= args.numpy_repeat:
                continue
            with cases.impl_context(impl, threads):
                samples[impl].append(_time_calls(steps[impl], inner[impl]))
            cases.quiesce(impl, threads)
    del steps
    gc.collect()
    out = {}
    for impl, s in samples.items():
        med = statistics.median(s)
        rate, unit = case.rate(med, args.dtype)
        out[impl] = {"median_ms": med * 1e3, "min_ms": min(s) * 1e3,
                     "samples_ms": [v * 1e3 for v in s], "calls_per_round": inner[impl],
                     "rate": rate, "rate_unit": unit}
    return out


# --------------------------------------------------------------------------------------------
COLS = [("case", 31, "<"), ("shape", 17, "<"), ("thr", 3, ">"), ("fastcnn ms", 10, ">"),
        ("torch ms", 9, ">"), ("numpy ms", 9, ">"), ("fc/torch", 8, ">"), ("np/fc", 6, ">"),
        ("fastcnn rate", 16, ">"), ("torch rate", 16, ">"), ("load", 5, ">")]


MEM_COLS = [("peak MB fc/torch/np", 20, ">"), ("mem fc/t", 8, ">")]
MEM_OPS = ("model",)          # ops whose rows get a peak-memory measurement


def _fmt_row(values, cols=COLS):
    return "  ".join(f"{str(v):{align}{w}}" for v, (_, w, align) in zip(values, cols))


def measure_memory(case, impls, threads, args):
    """Peak MB of a training step per impl (fresh subprocess each; see cases.peak_memory)."""
    out = {}
    for impl in impls:
        if (cases.max_threads(impl) or threads) < threads:
            continue
        out[impl] = cases.peak_memory(case, impl, threads, args.dtype, steps=args.mem_steps)
    return out


def _mem_cells(mem):
    if mem is None:
        return ["-", "-"]
    vals = []
    for impl in ("fastcnn", "torch", "numpy"):
        r = mem.get(impl)
        vals.append("-" if r is None else "err" if "error" in r else f"{r['peak_mb']:.0f}")
    fc, t = mem.get("fastcnn"), mem.get("torch")
    ratio = "-"
    if fc and t and "error" not in fc and "error" not in t and t["peak_mb"] > 0:
        v = fc["peak_mb"] / t["peak_mb"]
        ratio = f"{v:.2f}" + ("*" if v <= 1.0 else " ")
    return ["/".join(vals), ratio]


def _ms(res, impl):
    r = res.get(impl)
    if r is None:
        return "-"
    v = r["median_ms"]
    return f"{v:.2f}" if v < 100 else f"{v:.1f}"


def _ratio(res, a, b, target=None):
    if a not in res or b not in res:
        return "-"
    v = res[a]["median_ms"] / res[b]["median_ms"]
    s = f"{v:.2f}" if v < 10 else f"{v:.1f}"
    if target is not None:
        s += "*" if v <= target else " "
    return s


def _rate(res, impl):
    r = res.get(impl)
    if r is None or r["rate"] is None:
        return "-"
    return f"{r['rate']:.1f} {r['rate_unit']}"


def run_check(args, selected, impls):
    print(f"Agreement check ({args.dtype}): max|impl - ref| / max|ref| per output, "
          f"ref = {'torch' if 'torch' in impls else impls[0]}; indices: fraction differing")
    if any(c.check for c in selected):
        print("  (model cases run their check variant: dropout p=0, so no Dropout layer; "
              "outputs in [brackets] are advisory and not counted in worst)")
    worst, worst_adv = 0.0, 0.0
    for case in selected:
        errs = cases.compare_outputs(case, impls, args.dtype)
        adv = case.spec.advisory
        for impl, e in errs.items():
            cells = "  ".join((f"[{k}={v:.2e}]" if k in adv else f"{k}={v:.2e}")
                              for k, v in e.items())
            print(f"  {case.op:5s} {case.name:18s} {impl:8s} {cells}")
            worst = max([worst] + [v for k, v in e.items() if v == v and k not in adv])
            worst_adv = max([worst_adv] + [v for k, v in e.items() if v == v and k in adv])
    print(f"worst: {worst:.2e}" + (f"   (advisory outputs: {worst_adv:.2e})" if worst_adv else ""))
    return 0 if worst < 1e-3 else 1


def main(argv=None):
    args = parse_args(argv)
    selected = cases.get_cases(ops=args.ops, names=args.cases, small=args.small,
                               suites=None if args.suite == "all" else (args.suite,))
    if args.list:
        for c in selected:
            print(f"{c.op:6s} {c.name:20s} {c.title:34s} {c.shape_str()}")
        return 0
    if not selected:
        print("no case matches --ops/--cases", file=sys.stderr)
        return 2

    openmp = cases.openmp_runtime(args.impls)   # before anything loads fastcnn
    impls, skipped = [], {}
    for impl in args.impls:
        ok, why = cases.available(impl)
        (impls.append(impl) if ok else skipped.__setitem__(impl, why))
    for impl, why in skipped.items():
        print(f"note: skipping {impl}: {why}", file=sys.stderr)
    if not impls:
        print("nothing to run", file=sys.stderr)
        return 2
    if args.check:
        return run_check(args, selected, impls)

    facts = machine_facts(impls)
    facts["openmp"] = openmp
    load_start = _load()
    what = "forward+backward of one layer" if any(c.op != "model" for c in selected) else ""
    if any(c.op == "model" for c in selected):
        what += ("; " if what else "") + "model: one training step (Adam)"
    print(f"fastcnn bench/compare.py  {facts['time']}  {args.dtype}, {what}")
    print(f"machine: {facts['cpu']}, {facts['cpu_count']} CPUs "
          f"({facts['affinity']} usable); python {facts['python']}, numpy {facts['numpy']}, "
          f"torch {facts.get('torch', 'not installed')}, fastcnn {facts.get('fastcnn', '-')}")
    print(f"BLAS: {_blas_line(facts['threadpoolctl'])}")
    fcc = facts.get("fastcnn_config")
    if fcc:
        print("fastcnn: " + ", ".join(f"{k} {fcc[k]}" for k in
                                      ("openmp", "simd (cpu)", "simd (dispatched kernels)",
                                       "compiler flags") if k in fcc))
    print(f"openmp: {openmp}")
    if facts["env"]:
        print("env: " + " ".join(f"{k}={v}" for k, v in facts["env"].items()))
    print(f"median of {args.repeat} rounds (numpy: {args.numpy_repeat}), each >= "
          f"{args.min_time * 1e3:.0f} ms, after warmup; fc/torch '*' = meets the <= "
          f"{TARGET_VS_TORCH} target")
    print(f"load average at start: {load_start}")
    mem_on = not args.no_mem and any(c.op in MEM_OPS for c in selected)
    cols = COLS + (MEM_COLS if mem_on else [])
    if mem_on:
        print(f"peak MB: fresh subprocess per impl, {args.mem_steps} steps; peak RSS minus the "
              f"warmed-up process before model build, minus library code pages "
              f"(cases.peak_memory)")
    print()
    header = _fmt_row([c[0] for c in cols], cols)
    print(header)
    print("-" * len(header))
    rows = []
    t_start = time.perf_counter()
    for case in selected:
        for threads in args.threads:
            res = measure(case, impls, threads, args)
            load_row = _load()
            mem = (measure_memory(case, impls, threads, args)
                   if mem_on and case.op in MEM_OPS else None)
            print(_fmt_row([case.title[:31], case.shape_str()[:17], threads, _ms(res, "fastcnn"),
                            _ms(res, "torch"), _ms(res, "numpy"),
                            _ratio(res, "fastcnn", "torch", TARGET_VS_TORCH),
                            _ratio(res, "numpy", "fastcnn"), _rate(res, "fastcnn"),
                            _rate(res, "torch"), f"{(load_row or ('-',))[0]}"]
                           + (_mem_cells(mem) if mem_on else []), cols), flush=True)
            rows.append({"op": case.op, "case": case.name, "title": case.title,
                         "shape": case.shape_str(), "params": {k: list(v) if isinstance(v, tuple) else v for k, v in case.params.items()},
                         "threads": threads, "dtype": args.dtype, "load_after": load_row,
                         "gflop": (case.flops() or 0) / 1e9 or None,
                         "gbytes": (case.traffic(args.dtype) or 0) / 1e9 or None,
                         "results": res, "peak_memory": mem})
    load_end = _load()
    print("-" * len(header))
    print(f"load average at end: {load_end}   (wall {time.perf_counter() - t_start:.0f} s)")
    for impl, why in skipped.items():
        print(f"skipped {impl}: {why.splitlines()[0][:150]}")
    if args.json:
        record = {"facts": facts, "load_start": load_start, "load_end": load_end,
                  "options": {k: v for k, v in vars(args).items() if k != "json"},
                  "skipped": skipped, "rows": rows}
        with open(args.json, "w") as f:
            json.dump(record, f, indent=1)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
