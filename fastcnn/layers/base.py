"""Parameter, the Layer base class and Sequential: the stateful shell around `fastcnn.functional`.

A Layer owns its Parameters (trainable arrays with a ``.grad`` of the same shape), its buffers
(persistent non-trainable state such as BatchNorm running statistics) and its workspaces (scratch
and output arrays reused between steps). It is not an autograd graph: ``backward`` must follow the
``forward`` whose input it differentiates, exactly as in the classic book's layer classes.
Design after Chainer's Link / PyTorch's Module, without hooks or autograd.

Buffer reuse (the contract users must know)
-------------------------------------------
Layers keep their output, workspace and gradient arrays and overwrite them on the next call, so a
training step allocates nothing large after the first one (a fresh large allocation costs 3-4x a
reuse). The arrays returned by ``forward`` and ``backward`` therefore belong to the layer and are
valid until that layer's next ``forward``/``backward``: copy them (``y.copy()``) to keep them.
``fastcnn.train.predict`` and ``evaluate`` already do.
"""
import math

import numpy as np

__all__ = ["Parameter", "Layer", "Sequential", "check_float_input"]

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_float_input(x, who, dtype=None, ndim=None):
    """Validate a layer input: float32/float64 ndarray, optional exact dtype and ndim.

    Returns ``x`` as an ndarray (no copy). Integer, complex or object input is a TypeError; a
    float32/float64 mismatch with the layer's parameters is a TypeError too, because silently
    casting would either lose precision or upcast a float32 model to float64.
    """
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
    if x.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"{who}: input must be float32 or float64, got dtype {x.dtype}")
    if dtype is not None and x.dtype != dtype:
        raise TypeError(
            f"{who}: input dtype {x.dtype} does not match the layer's parameter dtype "
            f"{np.dtype(dtype)}; convert the input (x.astype(np.{np.dtype(dtype).name})) "
            f"or build the layer with dtype=np.{x.dtype.name}"
        )
    if ndim is not None:
        ndims = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.ndim not in ndims:
            want = " or ".join(str(n) for n in ndims)
            raise ValueError(f"{who}: input must be {want}-D, got shape {x.shape}")
    return x


class Parameter:
    """A trainable array ``data`` and its gradient ``grad`` (same shape and dtype).

    ``decay=False`` marks arrays that weight decay / L1 / L2 skip by default (biases, BatchNorm's
    gamma and beta). ``backward`` ACCUMULATES into ``grad``; ``zero_grad()`` clears it.

    ``grad`` is always the same array. ``zero_grad()`` only marks it: the zeros are written when
    ``grad`` is next read, unless a layer's backward overwrites the whole array first (see
    `take_grad`), which spares a pass over every gradient per step (AlexNet's fully connected
    gradients are 235 MB in float32) and, in the fully connected layers, a read of it too. A
    reference to the array taken before ``zero_grad()`` therefore still shows the old values
    until ``grad`` is read again.
    """

    __slots__ = ("data", "_grad", "_zero_pending", "name", "decay")

    def __init__(self, data, name="", decay=True):
        data = np.ascontiguousarray(data)
        if data.dtype not in _FLOAT_DTYPES:
            raise TypeError(f"Parameter {name!r}: dtype must be float32 or float64, "
                            f"got {data.dtype}")
        self.data = data
        self._grad = np.zeros_like(data)
        self._zero_pending = False
        self.name = name
        self.decay = bool(decay)

    @property
    def grad(self):
        if self._zero_pending:
            self._grad.fill(0)
            self._zero_pending = False
        return self._grad

    @grad.setter
    def grad(self, value):
        # ``p.grad += g`` lands here with the array itself; any other value is copied in, so that
        # grad stays one array of data's shape and dtype
        self._zero_pending = False
        if value is not self._grad:
            value = np.asarray(value)
            if value.shape != self._grad.shape:
                raise ValueError(f"Parameter {self.name!r}: grad must have shape "
                                 f"{self._grad.shape}, got {value.shape}")
            np.copyto(self._grad, value)

    def take_grad(self):
        """For a backward about to write the gradient: ``(grad array, overwrite)``. With
        ``overwrite`` True (``zero_grad()`` was called and nothing has touched the array since)
        the caller must store its gradient into every element instead of adding it; either way
        the array counts as written from here on."""
        overwrite, self._zero_pending = self._zero_pending, False
        return self._grad, overwrite

    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: self.data.dtype)
    size = property(lambda self: self.data.size)
    ndim = property(lambda self: self.data.ndim)

    def zero_grad(self):
        self._zero_pending = True

    def __repr__(self):
        flag = "" if self.decay else ", decay=False"
        return f"Parameter({self.name!r}, shape={self.data.shape}, dtype={self.data.dtype}{flag})"


def store_grad(param, g):
    """Adds a backward's gradient g into param's gradient (stores it, when zero_grad() left the
    array unwritten: one pass instead of zeroing and adding)."""
    grad, overwrite = param.take_grad()
    if overwrite:
        np.copyto(grad, g)
    else:
        grad += g


class Layer:
    """Base class of every layer.

    Subclasses implement ``forward(x) -> y`` and ``backward(dy) -> dx``, register trainable arrays
    with ``add_parameter`` and persistent state with ``add_buffer``, and describe their constructor
    arguments with ``_set_config`` so ``fastcnn.layers.from_config`` (and checkpoints) can rebuild
    them. ``backward`` adds into ``Parameter.grad``; when ``need_input_grad`` is False (the first
    layer of a model, set by ``Sequential``) it may skip ``dx`` and return None.

    ``backward_reads_output``: whether ``backward`` reads the array ``forward`` returned. Layers
    that do not (convolution, affine, batch norm, pooling: they keep their input or indices)
    let ``Sequential`` run a following ReLU in place on that array.
    """

    backward_reads_output = True   # the safe default

    def __init__(self):
        self.training = True
        self.need_input_grad = True
        self._params = {}
        self._buffers = {}
        self._work = {}
        self._config = {}

    # -- registration -------------------------------------------------------------------------
    def add_parameter(self, name, data, decay=True):
        p = Parameter(data, name=name, decay=decay)
        self._params[name] = p
        return p

    def add_buffer(self, name, array):
        self._buffers[name] = np.ascontiguousarray(array)
        return self._buffers[name]

    def _set_config(self, **kwargs):
        self._config = kwargs

    def _workspace(self, key, shape, dtype):
        """A scratch/output array kept between calls, reallocated only on a new shape/dtype."""
        a = self._work.get(key)
        if a is None or a.shape != shape or a.dtype != dtype:
            a = np.empty(shape, dtype=dtype)
            self._work[key] = a
        return a

    # -- the computation ----------------------------------------------------------------------
    def forward(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, dy):  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def output_shape(self, input_shape):
        """Per-sample output shape (no batch axis) for a per-sample ``input_shape``."""
        return tuple(input_shape)

    # -- traversal ----------------------------------------------------------------------------
    def children(self):
        """Direct sub-layers as ``(name, layer)`` pairs (none for a leaf layer)."""
        return []

    def named_modules(self, prefix=""):
        yield prefix, self
        for name, child in self.children():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def named_parameters(self, prefix=""):
        for mname, m in self.named_modules(prefix):
            for pname, p in m._params.items():
                yield (f"{mname}.{pname}" if mname else pname), p

    def parameters(self):
        """All Parameters, in a fixed order (the order optimizers use to name their state)."""
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix=""):
        for mname, m in self.named_modules(prefix):
            for bname, b in m._buffers.items():
                yield (f"{mname}.{bname}" if mname else bname), b

    def num_parameters(self):
        return sum(p.size for p in self.parameters())

    @property
    def dtype(self):
        """dtype of the parameters (None for a parameter-free layer)."""
        params = self.parameters()
        return params[0].dtype if params else None

    # -- modes --------------------------------------------------------------------------------
    def train(self, mode=True):
        for _, m in self.named_modules():
            m.training = bool(mode)
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self):
        for p in self.parameters():
            p.zero_grad()

    # -- state --------------------------------------------------------------------------------
    def _state_targets(self):
        targets = {}
        for mname, m in self.named_modules():
            for pname, p in m._params.items():
                targets[f"{mname}.{pname}" if mname else pname] = p.data
            for bname, b in m._buffers.items():
                targets[f"{mname}.{bname}" if mname else bname] = b
        return targets

    def state_dict(self):
        """Copies of every parameter and buffer, keyed ``"<layer index>.<name>"`` (e.g.
        ``"0.weight"``, ``"2.running_mean"``)."""
        return {k: v.copy() for k, v in self._state_targets().items()}

    def load_state_dict(self, state, strict=True):
        """Copy arrays from ``state`` into this layer's parameters and buffers, in place.

        In place, so optimizers keep pointing at the same Parameters. Every shape must match
        (ValueError naming the key and both shapes). With ``strict=True`` missing or unexpected
        keys are a ValueError listing them; with ``strict=False`` they are returned as
        ``(missing, unexpected)``.
        """
        targets = self._state_targets()
        missing = [k for k in targets if k not in state]
        unexpected = [k for k in state if k not in targets]
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append(f"missing keys {missing}")
            if unexpected:
                parts.append(f"unexpected keys {unexpected}")
            raise ValueError(f"load_state_dict({type(self).__name__}): " + "; ".join(parts))
        for k, dst in targets.items():
            if k not in state:
                continue
            src = np.asarray(state[k])
            if src.shape != dst.shape:
                raise ValueError(
                    f"load_state_dict({type(self).__name__}): {k!r} has shape {src.shape} in the "
                    f"state dict but {dst.shape} in the layer"
                )
            if src.dtype.kind not in "fiu":
                raise TypeError(f"load_state_dict: {k!r} has non-numeric dtype {src.dtype}")
        for k, dst in targets.items():
            if k in state:
                np.copyto(dst, np.asarray(state[k]), casting="unsafe")
        return missing, unexpected

    # -- description --------------------------------------------------------------------------
    @property
    def config(self):
        """JSON-able ``{"class": name, **constructor args}`` (rng excluded, dtype as a string)."""
        return {"class": type(self).__name__, **self._config}

    def extra_repr(self):
        return ", ".join(f"{k}={v!r}" for k, v in self._config.items() if k != "dtype")

    def __repr__(self):
        return f"{type(self).__name__}({self.extra_repr()})"


def _shape_str(shape):
    return str(tuple(shape)) if shape is not None else "?"


class Sequential(Layer):
    """Layers applied in order; backward runs them in reverse.

    ``Sequential(l1, l2, ...)`` or ``Sequential([l1, l2, ...])``. Behaves like a list of layers
    (indexing, ``len``, iteration, ``append``, ``insert``, ``del``), so a model can be printed,
    inspected and changed. Parameter names are ``"<index>.<name>"``.

    ``need_input_grad`` (default True): when False, the layers before the first one with
    parameters are told not to compute their input gradient and ``backward`` returns None; models
    set it False because nobody needs the gradient with respect to the images.
    """

    def __init__(self, *layers):
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: item {i} is not a Layer: {layer!r}")
        self.layers = list(layers)
        self._grad_buffers = [None, None]

    def children(self):
        return [(str(i), layer) for i, layer in enumerate(self.layers)]

    def forward(self, x):
        # A layer that can work in place (ReLU) may do so when the array it gets is the previous
        # layer's own output buffer that this layer's backward will not read, and its dy will be
        # the next layer's own dx buffer (it is not the last layer): then it keeps no output and
        # dx buffers of its own, as PyTorch's inplace ReLU (DeepConvNet's step: -34 MB).
        # A convolution followed by such a ReLU applies max(., 0) in its own epilogue (its
        # `fuse_relu`), and the ReLU then only records the array: one pass over the activations
        # fewer. A ReLU followed by a max pooling leaves its backward's mask to the pooling,
        # which applies it to the pooled gradient (MaxPool2D.forward): a pass over the
        # activations fewer again.
        last = len(self.layers) - 1
        self._inputs = []   # (shape, dtype) each layer got: the shape of its dx
        for i, layer in enumerate(self.layers):
            if hasattr(layer, "inplace"):
                layer.inplace = (0 < i < last and not self.layers[i - 1].backward_reads_output)
            nxt = self.layers[i + 1] if i < last else None
            if hasattr(layer, "fuse_relu") and hasattr(nxt, "input_rectified"):
                fuse = i + 1 < last and not layer.backward_reads_output
                layer.fuse_relu = nxt.input_rectified = fuse
            if hasattr(layer, "grad_masked_by_next") and hasattr(nxt, "mask_rectified_grad"):
                layer.grad_masked_by_next = nxt.mask_rectified_grad = True
            self._inputs.append((x.shape, x.dtype))
            x = layer.forward(x)
        return x

    def _free_gradient_buffer(self, dy, shape, dtype):
        """A (shape, dtype) view into whichever of the two shared gradient buffers does not
        hold dy. Each layer's dx is dead once the layer before it has read it, so two buffers
        serve the whole chain (as PyTorch frees gradients as it goes) instead of a dx buffer per
        layer: DeepConvNet's step -15 MB."""
        n = math.prod(shape)
        for buf in self._grad_buffers:
            if buf.dtype == dtype and buf.size >= n and not np.may_share_memory(buf, dy):
                return buf[:n].reshape(shape)
        return np.empty(shape, dtype=dtype)   # (another dtype than the batch's: not shared)

    def _size_gradient_buffers(self):
        """Both shared gradient buffers large enough for the largest dx, in the first layer's
        input dtype; reallocated only when a batch needs more."""
        n = max(math.prod(shape) for shape, _ in self._inputs)
        dtype = self._inputs[0][1]
        for k in (0, 1):
            buf = self._grad_buffers[k]
            if buf is None or buf.dtype != dtype or buf.size < n:
                self._grad_buffers[k] = np.empty(n, dtype=dtype)

    def backward(self, dy):
        # A layer needs dx only if something before it has parameters (or the caller wants dx).
        need = self.need_input_grad
        for layer in self.layers:
            layer.need_input_grad = need
            if not need and next(layer.named_parameters(), None) is not None:
                need = True
        inputs = getattr(self, "_inputs", None)
        shared = inputs is not None and len(inputs) == len(self.layers) > 0
        if shared:
            self._size_gradient_buffers()
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            if layer.need_input_grad and shared:
                # the layer's dx (a "dx" workspace, by the layers' convention) goes to the
                # shared buffer dy is not in
                layer._work["dx"] = self._free_gradient_buffer(dy, *inputs[i])
            dy = layer.backward(dy)
            if dy is None:
                if layer.need_input_grad:
                    raise RuntimeError(f"Sequential.backward: layer {i} ({layer!r}) returned no "
                                       "input gradient, but the layers before it need one")
                break  # everything before has no parameters and nobody wants its dx
        return dy

    def output_shape(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.layers:
            shape = layer.output_shape(shape)
        return shape

    # -- list behaviour -----------------------------------------------------------------------
    def __len__(self):
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return Sequential(self.layers[i])
        return self.layers[i]

    def __setitem__(self, i, layer):
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential: {layer!r} is not a Layer")
        self.layers[i] = layer

    def __delitem__(self, i):
        del self.layers[i]

    def append(self, layer):
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential: {layer!r} is not a Layer")
        self.layers.append(layer)
        return self

    def insert(self, index, layer):
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential: {layer!r} is not a Layer")
        self.layers.insert(index, layer)
        return self

    # -- description --------------------------------------------------------------------------
    @property
    def config(self):
        return {"class": "Sequential", "layers": [layer.config for layer in self.layers]}

    def summary(self, input_shape=None):
        """A table: index, layer, per-sample output shape (given ``input_shape``), params."""
        rows = []
        shape = tuple(input_shape) if input_shape is not None else None
        for i, layer in enumerate(self.layers):
            if shape is not None:
                try:
                    shape = layer.output_shape(shape)
                except Exception:  # a custom layer without output_shape: stop tracking shapes
                    shape = None
            rows.append((str(i), repr(layer), _shape_str(shape) if input_shape is not None else "",
                         f"{layer.num_parameters():,}"))
        total = self.num_parameters()
        w0 = max([1] + [len(r[0]) for r in rows])
        w1 = max([5] + [len(r[1]) for r in rows])
        w2 = max([12] + [len(r[2]) for r in rows])
        w3 = max([6, len(f"{total:,}")] + [len(r[3]) for r in rows])
        lines = [f"{'#':>{w0}}  {'layer':<{w1}}  {'output shape':<{w2}}  {'params':>{w3}}"]
        lines += [f"{a:>{w0}}  {b:<{w1}}  {c:<{w2}}  {d:>{w3}}" for a, b, c, d in rows]
        lines.append(f"{'':>{w0}}  {'total':<{w1}}  {'':<{w2}}  {total:>{w3},}")
        return "\n".join(lines)

    def __repr__(self):
        body = "\n".join(f"  ({i}) {layer!r}" for i, layer in enumerate(self.layers))
        return f"{type(self).__name__}(\n{body}\n)" if self.layers else f"{type(self).__name__}()"


def conv_output_size(size, kernel, stride, padding, who="layer"):
    """``(size + 2*padding - kernel) // stride + 1``, ValueError when it is < 1."""
    out = (size + 2 * padding - kernel) // stride + 1
    if out < 1:
        raise ValueError(
            f"{who}: kernel {kernel} with padding {padding} does not fit an input of size {size}"
        )
    return out


def pair(v, who, name, minimum):
    """Normalise an int-or-pair argument to a tuple of two ints >= minimum."""
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{who}: {name} must be an int or a pair, got {v!r}")
        a, b = v
    else:
        a = b = v
    out = []
    for item in (a, b):
        if isinstance(item, bool) or not float(item).is_integer():
            raise TypeError(f"{who}: {name} must be an integer, got {v!r}")
        item = int(item)
        if item < minimum:
            raise ValueError(f"{who}: {name} must be >= {minimum}, got {v!r}")
        out.append(item)
    return tuple(out)


def _prod(shape):
    return math.prod(shape)
