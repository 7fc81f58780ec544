"""SoftmaxCrossEntropy: the classifier's loss, fused softmax + cross-entropy over
`fastcnn.functional.softmax_cross_entropy` (log-sum-exp, so large logits do not overflow).

Not a Layer in the chain: ``forward(logits, labels)`` returns a float and ``backward()`` starts
the backward pass.
"""
import numpy as np

from fastcnn import functional as F
from fastcnn.layers.base import Layer, check_float_input

__all__ = ["SoftmaxCrossEntropy"]


class SoftmaxCrossEntropy(Layer):
    """``loss = -(1/N) sum_n log softmax(logits[n])[labels[n]]``; ``dlogits = (p - onehot) / N``.

    logits (N, K) float32/float64, labels (N,) integers in [0, K). ``backward(dout=1.0)`` returns
    ``dout * dlogits`` (in the logits' dtype). ``probs`` holds the last softmax.

    forward computes dlogits in the same pass (a few microseconds a step less than a second call),
    and the first ``backward()`` after it hands that array over; later calls, or another
    ``dout``, compute it again from ``probs``.
    """

    def __init__(self):
        super().__init__()
        self.probs = None
        self._labels = None
        self._dlogits = None

    def forward(self, logits, labels):
        logits = check_float_input(logits, "SoftmaxCrossEntropy", ndim=2)
        labels = np.asarray(labels)
        loss, self.probs, self._dlogits = F.softmax_cross_entropy(logits, labels,
                                                                  return_grad=True)
        self._labels = labels
        return float(loss)

    def backward(self, dout=1.0):
        if self.probs is None:
            raise RuntimeError("SoftmaxCrossEntropy.backward called before forward")
        d, self._dlogits = self._dlogits, None
        if d is not None and dout == 1.0:
            return d
        return F.softmax_cross_entropy_backward(self.probs, self._labels, dout)

    def output_shape(self, input_shape):
        return ()
