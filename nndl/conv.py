"""Chapter 6's layers: convolution, pooling, and network3's layer types.

A convolutional layer shares one small set of weights, a kh × kw filter per feature
map, across every position of its input image ("local receptive fields" and "shared
weights"); a pooling layer then condenses each feature map by summarising
non-overlapping p × p windows.  The convolution is lowered to one matrix product with
:func:`nndl.kernels.im2col`, so its backward pass is two more matrix products and a
:func:`~nndl.kernels.col2im`; the pooling loops live in :mod:`nndl.kernels` too.

Two families of layers live here, all speaking the protocol of :mod:`nndl.layers`
and all slotting into :class:`nndl.Network`:

* the building blocks ``Conv2D``, ``MaxPool2D`` and ``L2Pool2D``;
* network3's layers, with the book's names and arguments: ``ConvPoolLayer`` (a
  convolution, max-pooling, bias and activation in one), ``FullyConnectedLayer`` and
  ``SoftmaxLayer`` (dense layers with dropout on their input).

network3.py drew its starting weights with the wrong spread (N(0, 1/n_out) instead of
N(0, 1/n_in)).  These layers draw them from the fan-in, N(0, 1/n_in), unless
``book_init=True`` asks for the book's values.

Layers keep the dtype the network gives them (float64 or float32).  The convolutional
layers reuse their large scratch buffers from one mini-batch to the next, and skip the
gradient with respect to the images when they are first in their network
(``input_grad = False``).
"""
import numpy as np

from . import activations, backend, kernels
from .errors import ConfigError, ShapeError
from .layers import Dense, Dropout, Layer, _check_input, _init_normal, _probability

# In evaluation, batches whose column matrix would exceed this many bytes are
# convolved in chunks (predict() sends 1000 images at once).
_EVAL_COLS_BYTES = 16 << 20


def _ints(value, n, what):
    """A tuple of n positive ints from an int (repeated) or a sequence."""
    try:
        vals = (int(value),) * n if np.ndim(value) == 0 else tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{what}: expected {n} positive integers, got {value!r}") from None
    if len(vals) != n or min(vals) < 1:
        raise ConfigError(f"{what}: expected {n} positive integers, got {value!r}")
    return vals


def _activation_name(activation):
    return activation.__name__.lower()


class _Buffers:
    """Scratch arrays kept between calls and reallocated only when the shape changes."""

    def __init__(self):
        self._arrays = {}

    def get(self, name, like, shape, dtype):
        a = self._arrays.get(name)
        if a is None or a.shape != shape or a.dtype != dtype or backend.xp(a) is not backend.xp(like):
            a = self._arrays[name] = backend.xp(like).empty(shape, dtype)
        return a


def _images(a_in, shape, what):
    """(N, ...) with C·H·W values per example -> (N, C, H, W), or a ShapeError."""
    _check_input(a_in, what)
    if a_in.shape[1:] == shape or (shape is None and a_in.ndim == 4):
        return a_in
    if shape is None:
        raise ShapeError(f"{what}: expected (N, C, H, W) inputs, got {a_in.shape}")
    if int(np.prod(a_in.shape[1:])) != int(np.prod(shape)):
        raise ShapeError(f"{what}: expected inputs of shape (N, {', '.join(map(str, shape))}), "
                         f"got {a_in.shape}")
    return a_in.reshape((len(a_in),) + shape)                            # (N, C, H, W)


def _check_image_shape(input_shape, in_channels, kh, kw, what):
    """(C, H, W) from the per-example ``input_shape`` that a convolution receives."""
    if len(input_shape) != 3:
        raise ShapeError(f"{what}: expects (C, H, W) images per example, got input shape "
                         f"{tuple(input_shape)}; pass input_shape=(C, H, W) to the Network")
    C, H, W = input_shape
    if C != in_channels:
        raise ShapeError(f"{what}: the input has {C} channels, but the layer expects {in_channels}")
    if kh > H or kw > W:
        raise ShapeError(f"{what}: kernel {kh}x{kw} is larger than the {H}x{W} input image")
    return C, H, W


class _Conv:
    """The convolution z = W ⋆ x shared by Conv2D and ConvPoolLayer, in (K, N·OH·OW) layout."""

    parallel_batches = True  # big batches pay for being cut in shards (nndl.fast.shards)

    def _setup_conv(self):
        self._buf = _Buffers()

    def replica(self):
        r = super().replica()
        r._buf = _Buffers()  # scratch of its own: replicas run at the same time
        return r

    def _convolve(self, x):
        """x (N, C, H, W) -> (W @ im2col(x) (K, N·OH·OW), the columns (C·kh·kw, N·OH·OW)).

        Both live in scratch buffers, so they hold until the next call."""
        K, C, kh, kw = self.w.shape
        P = len(x) * self.OH * self.OW
        w2 = self.w.reshape(K, C * kh * kw)                                  # (K, C·kh·kw)
        cols = kernels.im2col(x, kh, kw, self.stride,
                              out=self._buf.get("cols", x, (C * kh * kw, P), x.dtype))
        z = backend.xp(x).matmul(w2, cols, out=self._buf.get("z", x, (K, P), x.dtype))
        return z, cols

    def _chunk(self, x, train):
        """Images per convolution: the whole batch in training (backward needs its
        columns), else as many as keep the column matrix under _EVAL_COLS_BYTES."""
        return len(x) if train else self._chunks(x)

    def _chunks(self, x):
        K, C, kh, kw = self.w.shape
        per = C * kh * kw * self.OH * self.OW * x.dtype.itemsize
        return max(1, _EVAL_COLS_BYTES // per)

    def _conv_backward(self, dz, cols, x_shape):
        """dz (K, N·OH·OW) and the forward pass's cols -> nabla_w (BP4) and, if
        ``input_grad``, ∂C/∂x (N, C, H, W) (BP2), which it returns (else None)."""
        K, C, kh, kw = self.w.shape
        xp = backend.xp(dz)
        kernels.matmul_nt(dz, cols, out=self.nabla_w.reshape(K, C * kh * kw))  # BP4: δ colsᵀ
        if not self.input_grad:
            return None
        w2 = self.w.reshape(K, C * kh * kw)
        dcols = xp.matmul(w2.T, dz, out=self._buf.get("dcols", dz, (C * kh * kw, dz.shape[1]),
                                                      dz.dtype))            # BP2: Wᵀδ
        return kernels.col2im(dcols, x_shape, kh, kw, self.stride)            # (N, C, H, W)

    def _stored(self):
        """What the last forward pass kept for backward, or a clear error."""
        if self._saved is None:
            raise RuntimeError(f"{type(self).__name__}.backward: no stored forward pass; "
                               "call forward(x, train=True) on this batch first")
        return self._saved

    def _init_weights(self, rng, dtype, std):
        K = self.w_shape[0]
        if callable(self.init):
            self.w, self.b = self.init(rng, self.w_shape, dtype)
        elif self.init == "zeros":
            self.w, self.b = np.zeros(self.w_shape, dtype), np.zeros(K, dtype)
        else:
            std = 1.0 if self.init == "large" else std
            self.w = _init_normal(rng, self.w_shape, std, dtype)
            self.b = _init_normal(rng, (K,), 1.0, dtype)
        self.w = np.ascontiguousarray(self.w)
        self.nabla_w = np.zeros_like(self.w)
        self.nabla_b = np.zeros_like(self.b)
        self._saved = None  # what backward needs of the last training forward pass


class Conv2D(_Conv, Layer):
    """a = σ(z), z[n, k] = Σ_c w[k, c] ⋆ a_in[n, c] + b[k]  (ch. 6): a valid convolution.

    Parameters
    ----------
    in_channels, out_channels : int
        C and K; ``w`` has shape (K, C, kh, kw) and ``b`` (K,).
    kernel_size : int or (int, int)
        kh, kw.
    stride : int
    activation : str or activation class
        Default ``"identity"`` (follow it with pooling and an activation, or give one).
    init : {"default", "large", "zeros"} or callable
        w from N(0, 1/(C·kh·kw)) (the fan-in), N(0, 1), zeros, or
        ``init(rng, shape, dtype) -> (w, b)``; biases N(0, 1).

    Shapes: (N, C, H, W) -> (N, K, OH, OW), OH = (H - kh)//stride + 1.  ``⋆`` is
    cross-correlation, as in the book and every library: the filter is not flipped.
    """

    regularized = ("w",)

    def __init__(self, in_channels, out_channels, kernel_size, stride=1,
                 activation="identity", init="default"):
        self.in_channels = _ints(in_channels, 1, "Conv2D in_channels")[0]
        self.out_channels = _ints(out_channels, 1, "Conv2D out_channels")[0]
        self.kernel_size = _ints(kernel_size, 2, "Conv2D kernel_size")
        self.stride = _ints(stride, 1, "Conv2D stride")[0]
        self.activation = activations.get(activation)
        if init not in ("default", "large", "zeros") and not callable(init):
            raise ConfigError("Conv2D init: expected 'default', 'large', 'zeros' or a callable, "
                              f"got {init!r}")
        self.init = init
        self.w_shape = (self.out_channels, self.in_channels) + self.kernel_size
        self.w = self.b = None
        self._setup_conv()

    def build(self, input_shape, rng, dtype):
        super().build(input_shape, rng, dtype)
        kh, kw = self.kernel_size
        C, H, W = _check_image_shape(self.input_shape, self.in_channels, kh, kw, "Conv2D")
        self.OH, self.OW = kernels.conv_output_shape(H, W, kh, kw, self.stride)
        if self.w is None:
            self.initialize(rng, dtype)
        return (self.out_channels, self.OH, self.OW)

    def initialize(self, rng, dtype=np.float64):
        """Draw fresh weights and biases as ``self.init`` says."""
        fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
        self._init_weights(rng, dtype, 1.0 / np.sqrt(fan_in))

    def forward(self, a_in, train=False):
        """(N, C, H, W) -> (N, K, OH, OW)."""
        x = _images(a_in, self.input_shape, "Conv2D")
        K, N = self.out_channels, len(x)
        self.z = backend.xp(x).empty((N, K, self.OH, self.OW), x.dtype)
        chunk = self._chunk(x, train)
        for k in range(0, N, chunk):
            n = min(chunk, N - k)
            zt, cols = self._convolve(x[k:k + n])                            # (K, n·OH·OW)
            zt += self.b[:, None]
            self.z[k:k + n] = zt.reshape(K, n, self.OH, self.OW).transpose(1, 0, 2, 3)
        self._saved = (cols, x.shape) if chunk >= N else None  # backward needs the whole batch's
        self.a = self.activation.fn(self.z)
        return self.a

    def backward(self, grad_a):
        """∂C/∂a (N, K, OH, OW) -> ∂C/∂a_in, shaped like the input."""
        delta = self.activation.grad(self.z, self.a, grad_a)                # BP2: ⊙ σ'(z)
        return self.backward_from_delta(delta)

    def backward_from_delta(self, delta):
        """δ = ∂C/∂z (N, K, OH, OW) -> ∂C/∂a_in (N, C, H, W), or None if input_grad is off."""
        cols, x_shape = self._stored()
        K, N = self.out_channels, len(delta)
        dz = self._buf.get("dz", delta, (K, N * self.OH * self.OW), delta.dtype)
        dz.reshape(K, N, self.OH, self.OW)[...] = delta.transpose(1, 0, 2, 3)  # (K, N·OH·OW)
        self.nabla_b = dz.sum(axis=1)                                        # BP3
        dx = self._conv_backward(dz, cols, x_shape)                          # BP4, BP2
        return None if dx is None else dx.reshape((N,) + self.input_shape)

    def parameters(self):
        return [("w", self.w, self.nabla_w), ("b", self.b, self.nabla_b)]

    def config(self):
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": list(self.kernel_size), "stride": self.stride,
                "activation": _activation_name(self.activation)}


class MaxPool2D(Layer):
    """a[n, c, i, j] = max of a_in[n, c] over the window (i·p..i·p+p-1, j·p..j·p+p-1)  (ch. 6).

    Parameters
    ----------
    size : int or (int, int)
        The window p (p × p, or ph × pw), non-overlapping.

    Shapes: (N, C, H, W) -> (N, C, H//p, W//p); H and W must be multiples of p.  The gradient flows only to each window's maximum (the first one,
    on ties).
    """

    def __init__(self, size=2):
        self.size = _ints(size, 2, "MaxPool2D size")

    def build(self, input_shape, rng, dtype):
        super().build(input_shape, rng, dtype)
        if len(self.input_shape) != 3:
            raise ShapeError(f"{type(self).__name__}: expects (C, H, W) per example, got {self.input_shape}")
        C, H, W = self.input_shape
        PH, PW = kernels.pool_output_shape(H, W, self.size)
        return (C, PH, PW)

    def forward(self, a_in, train=False):
        """(N, C, H, W) -> (N, C, H//p, W//p)."""
        x = _images(a_in, getattr(self, "input_shape", None), type(self).__name__)
        a, self.argmax = kernels.maxpool_forward(x, self.size)
        return a

    def backward(self, grad_a):
        """∂C/∂a (N, C, PH, PW) -> ∂C/∂a_in (N, C, H, W): zero except at each maximum."""
        return kernels.maxpool_backward(grad_a, self.argmax, self.size)

    def config(self):
        return {"size": list(self.size)}


class L2Pool2D(MaxPool2D):
    """a[n, c, i, j] = √(Σ_window a_in²)  (ch. 6's "L2 pooling").

    ∂a/∂a_in = a_in / a inside each window.  A window of zeros has a = 0, where the
    square root has no derivative; its gradient is taken to be 0 (a subgradient), so
    no nan and no warning appear.
    """

    def forward(self, a_in, train=False):
        """(N, C, H, W) -> (N, C, H//p, W//p)."""
        x = _images(a_in, getattr(self, "input_shape", None), "L2Pool2D")
        self.win = kernels.pool_windows(x, self.size)                       # (N, C, PH, PW, p·p)
        self.a = backend.xp(x).sqrt((self.win * self.win).sum(axis=-1))     # (N, C, PH, PW)
        return self.a

    def backward(self, grad_a):
        """∂C/∂a (N, C, PH, PW) -> ∂C/∂a_in (N, C, H, W) = ∂C/∂a · a_in / a."""
        xp = backend.xp(grad_a)
        safe = xp.where(self.a > 0, self.a, 1)          # a = 0 only where the window is all 0
        g = (grad_a / safe)[..., None] * self.win                            # (N, C, PH, PW, p·p)
        return kernels.from_pool_windows(g, self.size)                       # (N, C, H, W)


class ConvPoolLayer(_Conv, Layer):
    """a = σ(maxpool(w ⋆ a_in) + b)  (ch. 6, network3's layer).

    A convolution without bias, max-pooling over ``poolsize`` windows, then the bias
    and the activation, applied after pooling as in network3 (max-pooling commutes
    with adding a per-map constant, so this equals pooling σ(w ⋆ a_in + b) for
    increasing σ).

    Parameters
    ----------
    filter_shape : (K, C, kh, kw)
    image_shape : (mini_batch, C, H, W) or (C, H, W)
        The mini_batch entry is ignored: any batch size works.
    poolsize : (int, int)
    activation_fn : str or activation class
        Default sigmoid; ReLU is applied inside the pooling pass.
    book_init : bool
        network3's N(0, 1/n_out) starting weights instead of the fan-in's.

    Shapes: (N, C, H, W), or flat (N, C·H·W) rows as network3's were, ->
    (N, K, (H - kh + 1)//ph, (W - kw + 1)//pw).

    Weights start N(0, 1/(C·kh·kw)), the fan-in; ``book_init=True`` reproduces
    network3's N(0, 1/n_out) with n_out = K·kh·kw/(pool area).  Biases start N(0, 1).
    """

    regularized = ("w",)
    stride = 1

    def __init__(self, filter_shape, image_shape, poolsize=(2, 2), activation_fn="sigmoid",
                 book_init=False):
        self.filter_shape = _ints(filter_shape, 4, "ConvPoolLayer filter_shape")
        image_shape = tuple(image_shape)
        if len(image_shape) == 3:  # (C, H, W) without the mini-batch entry
            image_shape = (None,) + image_shape
        self.image_shape = (image_shape[0],) + _ints(image_shape[1:], 3, "ConvPoolLayer image_shape")
        self.poolsize = _ints(poolsize, 2, "ConvPoolLayer poolsize")
        self.activation = activations.get(activation_fn)
        self.book_init = bool(book_init)
        K, C, kh, kw = self.filter_shape
        _, C_img, H, W = self.image_shape
        if C != C_img:
            raise ShapeError(f"ConvPoolLayer: filter_shape {self.filter_shape} has {C} input channels "
                             f"but image_shape {self.image_shape} has {C_img}")
        self.w_shape = self.filter_shape
        self.init = "default"
        self.w = self.b = None
        self._setup_conv()

    @property
    def activation_fn(self):
        return self.activation

    def input_shape_hint(self):
        return self.image_shape[1:]

    def build(self, input_shape, rng, dtype):
        K, C, kh, kw = self.filter_shape
        want = self.image_shape[1:]
        if tuple(input_shape) != want and int(np.prod(input_shape)) == int(np.prod(want)):
            input_shape = want  # flat rows of C·H·W values, reshaped in forward
        super().build(input_shape, rng, dtype)
        C, H, W = _check_image_shape(self.input_shape, C, kh, kw, "ConvPoolLayer")
        self.OH, self.OW = kernels.conv_output_shape(H, W, kh, kw)
        self.PH, self.PW = kernels.pool_output_shape(self.OH, self.OW, self.poolsize)
        if self.w is None:
            self.initialize(rng, dtype)
        return (K, self.PH, self.PW)

    def initialize(self, rng, dtype=np.float64):
        """Draw fresh weights N(0, 1/fan-in) (or network3's spread) and biases N(0, 1)."""
        K, C, kh, kw = self.filter_shape
        if self.book_init:
            n_out = K * kh * kw / (self.poolsize[0] * self.poolsize[1])
            std = np.sqrt(1.0 / n_out)
        else:
            std = 1.0 / np.sqrt(C * kh * kw)
        self._init_weights(rng, dtype, std)

    def forward(self, a_in, train=False):
        """(N, C, H, W) or (N, C·H·W) -> (N, K, PH, PW)."""
        x = _images(a_in, self.input_shape, "ConvPoolLayer")
        xp, K, N = backend.xp(x), self.filter_shape[0], len(x)
        relu = self.activation is activations.ReLU  # applied in the pooling pass
        self.z = xp.empty((N, K, self.PH, self.PW), x.dtype)
        a = xp.empty_like(self.z) if relu else self.z
        chunk = self._chunk(x, train)
        for k in range(0, N, chunk):
            # The product (K, n, OH, OW) is pooled in its own contiguous layout, and the
            # four-times-smaller result written in (N, K, ...) order with the bias added.
            n = min(chunk, N - k)
            zt, cols = self._convolve(x[k:k + n])
            _, _, argmax = kernels.pool_bias_act(
                zt.reshape(K, n, self.OH, self.OW), self.b, self.poolsize, relu,
                z=self.z[k:k + n], a=a[k:k + n] if relu else None)
        self._saved = (cols, argmax, x.shape) if chunk >= N else None  # backward needs the whole batch's
        self.a = a if relu else self.activation.fn(self.z)
        return self.a

    def backward(self, grad_a):
        """∂C/∂a (N, K, PH, PW) -> ∂C/∂a_in, shaped like the input."""
        if self.activation is activations.ReLU or self.activation is activations.Identity:
            # σ'(z) is a mask (or 1): applied in the unpooling pass
            return self._backward(grad_a, relu=self.activation is activations.ReLU)
        delta = self.activation.grad(self.z, self.a, grad_a)                # BP2: ⊙ σ'(z)
        return self.backward_from_delta(delta)

    def backward_from_delta(self, delta):
        """δ = ∂C/∂z (N, K, PH, PW) -> ∂C/∂a_in, or None if input_grad is off."""
        return self._backward(delta, relu=False)

    def _backward(self, grad, relu):
        """∂C/∂a (relu: masked by z > 0 here) or δ -> nabla_b (BP3), then BP4 and BP2."""
        cols, argmax, x_shape = self._stored()
        K, N = self.filter_shape[0], len(grad)
        grad = grad.reshape(self.z.shape)
        dz = self._buf.get("dz", grad, (K, N * self.OH * self.OW), grad.dtype)
        self.nabla_b = kernels.unpool_bias_act_backward(                     # BP3; δ to each maximum
            grad, self.z, argmax, self.poolsize, relu, out=dz.reshape(K, N, self.OH, self.OW))
        dx = self._conv_backward(dz, cols, x_shape)                          # BP4, BP2
        return None if dx is None else dx.reshape((N,) + self.input_shape)

    def parameters(self):
        return [("w", self.w, self.nabla_w), ("b", self.b, self.nabla_b)]

    def config(self):
        return {"filter_shape": list(self.filter_shape),
                "image_shape": [self.image_shape[0]] + list(self.image_shape[1:]),
                "poolsize": list(self.poolsize),
                "activation_fn": _activation_name(self.activation),
                "book_init": self.book_init}


class FullyConnectedLayer(Dense):
    """a = σ(dropout(a_in) wᵀ + b)  (ch. 6, network3's layer; dropout from ch. 3).

    A :class:`~nndl.layers.Dense` layer after a :class:`~nndl.layers.Dropout` of its
    *inputs* with probability ``p_dropout``: in training each input is dropped, the
    kept ones scaled by 1/(1-p) (inverted dropout).  network3 trained with the kept
    inputs unscaled and multiplied the weights by (1 - p_dropout) at evaluation
    instead, which gives the same expected input.  ``mask_fn(shape, rng)`` (a 0/1
    keep-mask) freezes the mask, for tests.

    Parameters
    ----------
    n_in, n_out : int
    activation_fn : str or activation class
        Default sigmoid.
    p_dropout : float
        The probability of dropping each input in training, 0 <= p < 1.
    book_init : bool
        network3's N(0, 1/n_out) starting weights instead of N(0, 1/n_in).
    mask_fn : callable, optional
        See :class:`~nndl.layers.Dropout`.
    book_dropout : bool
        network3's dropout (kept inputs unscaled in training, scaled by 1 - p_dropout
        in evaluation) instead of inverted dropout; see :class:`~nndl.layers.Dropout`.

    Shapes: (N, n_in) or (N, ...) with n_in values -> (N, n_out).  Biases start N(0, 1).
    """

    def __init__(self, n_in, n_out, activation_fn="sigmoid", p_dropout=0.0, book_init=False,
                 mask_fn=None, book_dropout=False):
        self.book_init = bool(book_init)
        super().__init__(n_in, n_out, activation=activation_fn,
                         init=_fan_out_init if self.book_init else "default")
        self.dropout = Dropout(_probability(p_dropout, f"{type(self).__name__} p_dropout"), mask_fn,
                               inverted=not book_dropout)

    @property
    def p_dropout(self):
        return self.dropout.p

    @property
    def mask(self):
        """The last training pass's dropout mask (None in evaluation)."""
        return self.dropout.mask

    @property
    def activation_fn(self):
        return self.activation

    @property
    def kernel(self):
        """``"dense"`` without dropout; ``"dense-dropout"`` with it, the masks drawn from
        the network's generator as :class:`~nndl.layers.Dropout` draws them; None for a
        frozen ``mask_fn`` (which the fused path cannot call)."""
        if self.p_dropout == 0.0:
            return super().kernel
        return "dense-dropout" if self.dropout.mask_fn is None and super().kernel else None

    @property
    def input_dropout(self):
        return self.p_dropout

    @property
    def input_keep_scale(self):
        """The factor on the inputs kept in training, :class:`~nndl.layers.Dropout`'s
        ``keep_scale`` (the fused path rounds it to the weights' dtype, as Dropout does)."""
        return self.dropout.keep_scale

    @property
    def stochastic(self):
        return self.dropout.stochastic

    def build(self, input_shape, rng, dtype):
        self.dropout.build(input_shape, rng, dtype)
        return super().build(input_shape, rng, dtype)

    def replica(self):
        r = super().replica()
        r.dropout = self.dropout.replica()
        return r

    def forward(self, a_in, train=False):
        """(N, n_in) or (N, ...) -> (N, n_out)."""
        a_in = self.dropout.forward(a_in.reshape(len(a_in), self.n_in), train)   # (N, n_in)
        return super().forward(a_in, train)

    def backward_from_delta(self, delta):
        """δ = ∂C/∂z (N, n_out) -> ∂C/∂a_in, through the dropout mask."""
        grad = super().backward_from_delta(delta)                            # BP2: wᵀδ
        if grad is None:
            return None
        return self.dropout.backward(grad.reshape(len(grad), self.n_in)).reshape(grad.shape)

    def config(self):
        return {"n_in": self.n_in, "n_out": self.n_out,
                "activation_fn": _activation_name(self.activation),
                "p_dropout": self.p_dropout, "book_init": self.book_init,
                **({} if self.dropout.inverted else {"book_dropout": True})}


def _fan_out_init(rng, shape, dtype):
    """network3's starting weights N(0, 1/n_out) (its bug, on request) and biases N(0, 1)."""
    return (_init_normal(rng, shape, np.sqrt(1.0 / shape[0]), dtype),
            _init_normal(rng, (shape[0],), 1.0, dtype))


class SoftmaxLayer(FullyConnectedLayer):
    """a = softmax((a_in ⊙ mask/(1-p)) wᵀ + b)  (ch. 6, network3's output layer).

    Parameters
    ----------
    n_in, n_out : int
    p_dropout : float
        Dropout of its inputs in training.
    mask_fn : callable, optional
    book_dropout : bool
        network3's dropout instead of inverted dropout (see FullyConnectedLayer).

    Use it with :class:`~nndl.costs.LogLikelihoodCost`, for which δ^L = a - y.  Weights
    and biases start at zero, as in network3.  Shapes: (N, n_in) -> (N, n_out).
    """

    def __init__(self, n_in, n_out, p_dropout=0.0, mask_fn=None, book_dropout=False):
        super().__init__(n_in, n_out, activation_fn="softmax", p_dropout=p_dropout,
                         mask_fn=mask_fn, book_dropout=book_dropout)
        self.init = "zeros"

    def config(self):
        return {"n_in": self.n_in, "n_out": self.n_out, "p_dropout": self.p_dropout,
                **({} if self.dropout.inverted else {"book_dropout": True})}
