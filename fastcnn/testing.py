"""Numerical gradient checking for layers: ``check_backward(layer, x)``.

Compares a layer's analytic ``backward`` with float64 central differences of the scalar
``L(x, W) = sum(forward(x) * dy)`` for the input and every parameter. Public so users can check
their own layers (the habit of chainer.gradient_check). Not a unit-test framework: it raises
AssertionError with the details and lets any test runner report it.
"""
import math

import numpy as np

__all__ = ["check_backward", "numerical_grad"]


def _stochastic_modules(layer):
    """Sub-layers owning a Generator (Dropout): their state is replayed before every forward."""
    mods = []
    for _, m in layer.named_modules() if hasattr(layer, "named_modules") else [("", layer)]:
        rng = getattr(m, "rng", None)
        if isinstance(rng, np.random.Generator):
            mods.append((m, rng.bit_generator.state))
    return mods


def numerical_grad(f, a, eps=1e-6, indices=None):
    """Central differences ``(f(a + eps e_i) - f(a - eps e_i)) / (2 eps)`` at flat ``indices``
    (all entries by default), perturbing the C-contiguous float64 array ``a`` in place and
    restoring every entry exactly."""
    flat = a.reshape(-1)
    if not np.shares_memory(flat, a):
        raise ValueError("numerical_grad: `a` must be C-contiguous (perturbed in place)")
    indices = range(flat.size) if indices is None else indices
    out = np.empty(len(indices))
    for k, i in enumerate(indices):
        orig = flat[i]
        flat[i] = orig + eps
        fp = f()
        flat[i] = orig - eps
        fm = f()
        flat[i] = orig
        out[k] = (fp - fm) / (2.0 * eps)
    return out


def check_backward(layer, x, dy=None, *, target=None, eps=1e-6, rtol=1e-6, atol=1e-8,
                   max_checks=None, rng=None):
    """Check ``layer.backward`` against numerical gradients in float64.

    layer: a Layer whose parameters are float64 (build it with ``dtype=np.float64``).
    x: the input (copied to float64). dy: the upstream gradient (default: standard normal draws
    from ``rng``). target: for loss layers, ``forward(x, target)`` returns a scalar loss and
    ``backward()`` takes no ``dy``. eps: the central-difference step. max_checks: check at most
    this many randomly chosen entries per array (all by default). rng: Generator or seed
    (default 0) for dy and the entry choice.

    For each array A (the input "x" and every parameter by its ``named_parameters`` name) with
    analytic gradient ``a`` and numerical ``n`` over the checked entries, passes when
    ``max|a - n| <= atol + rtol * max(max|a|, max|n|)``. Stochastic sub-layers (Dropout) replay
    their generator state before every forward so they draw the same mask; the layer's
    parameters, buffers, gradients, generators and ``need_input_grad`` are restored afterwards.
    The layer's train/eval mode is used as it is.

    Returns ``{name: max|a - n| / max(max|a|, max|n|, atol / rtol)}`` (a relative error whose
    scale is floored, so an exactly-zero gradient, such as a bias feeding batch norm, reports
    the roundoff of its finite differences relative to ``atol / rtol`` rather than 1.0); raises
    AssertionError naming each failing array, its worst entry and both values.
    """
    params = list(layer.named_parameters()) if hasattr(layer, "named_parameters") else []
    for name, p in params:
        if p.data.dtype != np.float64:
            raise TypeError(f"check_backward: parameter {name!r} is {p.data.dtype}; numerical "
                            "gradients need float64 (build the layer with dtype=np.float64)")
    rng = np.random.default_rng(0 if rng is None else rng)
    xw = np.array(x, dtype=np.float64, order="C", copy=True)
    stochastic = _stochastic_modules(layer)
    saved_state = layer.state_dict() if hasattr(layer, "state_dict") else {}
    saved_grads = [p.grad.copy() for _, p in params]
    saved_need = getattr(layer, "need_input_grad", True)

    def forward():
        for m, state in stochastic:
            m.rng.bit_generator.state = state
        if target is None:
            return layer.forward(xw)
        return layer.forward(xw, target)

    try:
        layer.need_input_grad = True
        for _, p in params:
            p.grad.fill(0)
        y = forward()
        if target is None:
            y = np.asarray(y)
            if dy is None:
                dy = rng.standard_normal(y.shape)
            dy = np.array(dy, dtype=np.float64, copy=True)
            if dy.shape != y.shape:
                raise ValueError(f"check_backward: dy has shape {dy.shape} but the layer's "
                                 f"output has shape {y.shape}")
            dx = layer.backward(dy)

            def objective():
                return float(np.sum(np.asarray(forward()) * dy))
        else:
            dx = layer.backward()

            def objective():
                return float(forward())
        analytic = {}
        if dx is not None:
            analytic["x"] = (np.array(dx, dtype=np.float64).reshape(-1), xw)
        for name, p in params:
            analytic[name] = (p.grad.reshape(-1).copy(), p.data)

        errors, failures = {}, []
        for name, (a_full, arr) in analytic.items():
            size = arr.size
            if max_checks is not None and size > max_checks:
                idx = np.sort(rng.choice(size, size=max_checks, replace=False))
            else:
                idx = np.arange(size)
            n = numerical_grad(objective, arr, eps, idx)
            a = a_full[idx]
            diff = np.abs(a - n)
            scale = max(float(np.max(np.abs(a), initial=0.0)),
                        float(np.max(np.abs(n), initial=0.0)))
            worst = int(np.argmax(diff)) if diff.size else 0
            max_diff = float(diff.max(initial=0.0))
            floor = max(scale, atol / rtol) if rtol > 0 else max(scale, atol)
            errors[name] = max_diff / floor if floor > 0 else 0.0
            if not (max_diff <= atol + rtol * scale) or not math.isfinite(max_diff):
                where = np.unravel_index(idx[worst], arr.shape) if diff.size else ()
                failures.append(
                    f"  {name}: max |analytic - numerical| = {max_diff:.3e} (relative "
                    f"{errors[name]:.3e}, allowed {atol:.1e} + {rtol:.1e} * {scale:.3e}); worst at "
                    f"index {tuple(int(i) for i in where)}: analytic {a[worst]!r}, numerical "
                    f"{n[worst]!r}")
        if failures:
            raise AssertionError(f"check_backward({layer!r}): gradient mismatch\n"
                                 + "\n".join(failures))
        return errors
    finally:
        layer.need_input_grad = saved_need
        if saved_state:
            layer.load_state_dict(saved_state)
        for (_, p), g in zip(params, saved_grads):
            np.copyto(p.grad, g)
        for m, state in stochastic:
            m.rng.bit_generator.state = state
