"""Fast 3x3 convolution layers for Keras 3 on the XLA (JAX) CPU backend.

XLA CPU sends a forward stride-1 convolution to its fast library path, but
the convolutions that transposed convs and autodiff produce are slow: a
transposed conv is a conv with lhs_dilation, and a weight gradient is a conv
whose window is the whole output gradient (rhs_dilation for stride 2).
Batch 256, Conv2DTranspose 14x14x64 -> 28x28x32: forward 79 ms, input
gradient 37 ms, weight gradient 748 ms (jax-ml/jax#23783, openxla/xla#34273).

DownConv gathers the 3x3 windows with pads, reshapes and slices (space-to-depth)
and contracts them in one matmul. UpConv and OutConv work the other way round
(scatter form): one matmul of the input against all taps, then shifted sums, so
UpConv does exactly the 9 taps' arithmetic and every weight gradient is a plain
matmul. No XLA convolution is left in the train step. They compute exactly
Conv2D / Conv2DTranspose (kernel 3, padding "same"), with the same kernel layout
and initialiser (tests/test_layers.py). keras.ops only, so they also run on
torch.

On JAX, UpConv and OutConv also bring their own backward pass (``jax.custom_vjp``), with
the bias and activation inside: the input gradient of a stride-2 transposed convolution
is the stride-2 convolution of the output gradient, i.e. DownConv's window gather and
one matmul, and the kernel gradient is one matmul of those windows with the input.
Autodiff of the scatter form instead gives XLA a web of pads, slices and adds with the
activation's mask fused into each of them: batch 32, 14x14x64 -> 28x28x32, forward and
backward 12.1 ms with autodiff, 5.9 ms this way. OutConv's gradients take the 3x3
windows of its (few-channel) output gradient the same way.
Train step, batch 256, 2-core CPU, 28x28x1 autoencoder: stock layers 9-10 CPU ms/img,
these 0.9-1.2 (benchmarks/train_speed.py; see benchmarks/README.md).
"""

import keras
from keras import ops

# y = activation(pre) -> d pre / d y from the output y alone (what the JAX backward needs)
_SLOPE_FROM_OUTPUT = {
    "relu": lambda y: ops.cast(y > 0, y.dtype),
    "sigmoid": lambda y: y * (1 - y),
    "linear": None,
}


def stride2_windows(x):
    """The 3x3 windows of a stride-2 "same" convolution: (B, 2h, 2w, C) -> (B, h, w, 9C).

    Window (m, n) holds rows 2m..2m+2 and columns 2n..2n+2 (zeros past the edge), tap
    (i, j) at channels ``(3i + j) * C``; pads, a reshape and slices (space-to-depth).
    """
    h, w, c = x.shape[1] // 2, x.shape[2] // 2, x.shape[3]
    # "same" pads 0 before and 1 after; pad 2 so rows/cols split into (block, phase).
    x = ops.pad(x, [[0, 0], [0, 2], [0, 2], [0, 0]])
    x = ops.reshape(x, (-1, h + 1, 2, w + 1, 2, c))
    taps = []
    for di in range(3):
        a, p = divmod(di, 2)
        for dj in range(3):
            b, q = divmod(dj, 2)
            taps.append(x[:, a : a + h, p, b : b + w, q, :])
    return ops.concatenate(taps, axis=-1)


class _Conv3x3(keras.layers.Layer):
    """Shared weights and config; subclasses set `_transposed` and `linear` (and may set
    `_jax_backward`: the gradients from the output and its gradient, see UpConv)."""

    _transposed = False
    _jax_backward = None

    def __init__(self, filters, activation=None, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.activation = keras.activations.get(activation)

    def build(self, input_shape):
        channels = input_shape[-1]
        shape = (
            (3, 3, self.filters, channels) if self._transposed else (3, 3, channels, self.filters)
        )
        self.kernel = self.add_weight(shape=shape, initializer="glorot_uniform", name="kernel")
        self.bias = self.add_weight(shape=(self.filters,), initializer="zeros", name="bias")

    def call(self, x):
        kernel, bias = ops.convert_to_tensor(self.kernel), ops.convert_to_tensor(self.bias)
        name = keras.activations.serialize(self.activation)
        if (
            self._jax_backward is not None
            and name in _SLOPE_FROM_OUTPUT
            and keras.backend.backend() == "jax"
        ):
            return _fused_jax(type(self), name)(x, kernel, bias)
        return self.activation(self.linear(x, kernel) + bias)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, activation=keras.activations.serialize(self.activation))
        return config


_FUSED = {}


def _fused_jax(layer_type, activation: str):
    """``activation(layer_type.linear(x, kernel) + bias)`` with the layer's own backward."""
    key = (layer_type, activation)
    if key not in _FUSED:
        import jax

        slope = _SLOPE_FROM_OUTPUT[activation]
        act = keras.activations.get(activation)

        def primal(x, kernel, bias):
            return act(layer_type.linear(x, kernel) + bias)

        def forward(x, kernel, bias):
            y = primal(x, kernel, bias)
            return y, (x, kernel, y)

        def backward(saved, dy):
            x, kernel, y = saved
            dpre = dy if slope is None else dy * slope(y)
            dx, dkernel = layer_type._jax_backward(x, kernel, dpre)
            return dx, dkernel, ops.sum(dpre, axis=(0, 1, 2))

        fused = jax.custom_vjp(primal)
        fused.defvjp(forward, backward)
        _FUSED[key] = fused
    return _FUSED[key]


@keras.saving.register_keras_serializable(package="recsys_nb")
class DownConv(_Conv3x3):
    """Conv2D(filters, 3, strides=2, padding="same"); input height and width must be even."""

    def __init__(self, filters, activation="relu", **kwargs):
        super().__init__(filters, activation, **kwargs)

    @staticmethod
    def linear(x, kernel):
        c, f = kernel.shape[2], kernel.shape[3]
        return ops.matmul(stride2_windows(x), ops.reshape(kernel, (9 * c, f)))


@keras.saving.register_keras_serializable(package="recsys_nb")
class UpConv(_Conv3x3):
    """Conv2DTranspose(filters, 3, strides=2, padding="same"): output is 2H x 2W."""

    _transposed = True

    def __init__(self, filters, activation="relu", **kwargs):
        super().__init__(filters, activation, **kwargs)

    @staticmethod
    def linear(x, kernel):
        h, w, c, f = x.shape[1], x.shape[2], x.shape[3], kernel.shape[2]
        # Scatter form: input pixel (m, n) adds x[m, n] @ kernel[i, j].T to output (2m+i, 2n+j)
        # (cropped to 2h x 2w).  One matmul per kernel row i gives the three column taps j
        # side by side; tap j=2 lands on the next column block, phase 0.  Exactly the 9 taps'
        # arithmetic (a gather over 4 input shifts would do 16), and the weight gradient is
        # a plain x^T @ dz matmul.
        kernel = ops.transpose(kernel, (0, 3, 1, 2))  # (i, C, j, F)
        rows = []
        for i in range(3):
            z = ops.matmul(x, ops.reshape(kernel[i], (c, 3 * f)))  # (B, h, w, [j0 j1 j2] F)
            nxt = ops.pad(z[..., 2 * f :], [[0, 0], [0, 0], [1, 0], [0, 0]])[:, :, :w]
            rows.append(ops.concatenate([z[..., :f] + nxt, z[..., f : 2 * f]], axis=-1))
        # Kernel row 2 lands on the next row block, phase 0; row 1 on phase 1.
        below = ops.pad(rows[2], [[0, 0], [1, 0], [0, 0], [0, 0]])[:, :h]
        y = ops.stack([rows[0] + below, rows[1]], axis=2)  # (B, h, 2, w, 2F)
        return ops.reshape(y, (-1, 2 * h, 2 * w, f))

    @staticmethod
    def _jax_backward(x, kernel, dy):
        # Output (2m+i, 2n+j) came from input (m, n) through tap (i, j): the input gradient
        # is the stride-2 convolution of dy, DownConv's windows against the same kernel.
        f, c = kernel.shape[2], kernel.shape[3]
        windows = ops.reshape(stride2_windows(dy), (-1, 9 * f))
        dx = ops.reshape(ops.matmul(windows, ops.reshape(kernel, (9 * f, c))), x.shape)
        dkernel = ops.matmul(ops.transpose(windows), ops.reshape(x, (-1, c)))
        return dx, ops.reshape(dkernel, kernel.shape)


@keras.saving.register_keras_serializable(package="recsys_nb")
class OutConv(_Conv3x3):
    """Conv2D(filters, 3, padding="same"), e.g. the image output layer (few filters).

    One matmul of the input against all nine taps (C -> 9 * filters), then the taps'
    shifted sums, rows then columns; this way the weight gradient is a matmul too
    (XLA's own convolution is fast forward but its weight gradient is not).
    """

    def __init__(self, filters, activation="sigmoid", **kwargs):
        super().__init__(filters, activation, **kwargs)

    @staticmethod
    def linear(x, kernel):
        h, w, c, f = x.shape[1], x.shape[2], x.shape[3], kernel.shape[3]
        # out[m, n] = sum_ij x[m + i - 1, n + j - 1] @ kernel[i, j]
        kernel = ops.reshape(ops.transpose(kernel, (2, 0, 1, 3)), (c, 9 * f))
        z = ops.reshape(ops.matmul(x, kernel), (-1, h, w, 3, 3 * f))
        z = ops.pad(z, [[0, 0], [1, 1], [0, 0], [0, 0], [0, 0]])
        r = z[:, 0:h, :, 0] + z[:, 1 : h + 1, :, 1] + z[:, 2 : h + 2, :, 2]  # (B, h, w, 3F)
        r = ops.pad(r, [[0, 0], [0, 0], [1, 1], [0, 0]])
        return r[:, :, 0:w, :f] + r[:, :, 1 : w + 1, f : 2 * f] + r[:, :, 2 : w + 2, 2 * f :]

    @staticmethod
    def _jax_backward(x, kernel, dy):
        # out[m, n] = sum_ij x[m + i - 1, n + j - 1] @ kernel[i, j], so the gradients
        # pair each input pixel with the output gradient at the mirrored offsets.
        h, w, c, f = x.shape[1], x.shape[2], x.shape[3], kernel.shape[3]
        pad = ops.pad(dy, [[0, 0], [1, 1], [1, 1], [0, 0]])
        # tap (i, j) of pixel (m, n): dy[m - i + 1, n - j + 1]
        windows = ops.concatenate(
            [pad[:, 2 - i : 2 - i + h, 2 - j : 2 - j + w] for i in range(3) for j in range(3)],
            axis=-1,
        )  # (B, h, w, 9F)
        flat = ops.reshape(kernel, (9, c, f))
        dx = ops.matmul(windows, ops.reshape(ops.transpose(flat, (0, 2, 1)), (9 * f, c)))
        dkernel = ops.matmul(
            ops.transpose(ops.reshape(windows, (-1, 9 * f))), ops.reshape(x, (-1, c))
        )  # (9F, C)
        return dx, ops.transpose(ops.reshape(dkernel, (3, 3, f, c)), (0, 1, 3, 2))


# --- which convolutions a model is built with ---------------------------------------------

CONVOLUTIONS = ("auto", "matmul", "stock")


def conv_kind(convolutions: str = "auto", platform: str | None = None) -> str:
    """``"matmul"`` (the layers above) or ``"stock"`` (Keras' Conv2D / Conv2DTranspose).

    ``"auto"`` picks the layers above where XLA's own convolutions are slow, JAX on a CPU
    (and Keras' other backends, the speed benchmark's torch run), and Keras' stock layers
    where JAX runs on a GPU or TPU (cuDNN). ``platform`` is JAX's default backend
    (``jax.default_backend()``) unless given. Both compute the same function with the same
    kernel layout, so a model's weights fit either.
    """
    if convolutions not in CONVOLUTIONS:
        raise ValueError(
            f"convolutions must be one of {', '.join(CONVOLUTIONS)}, got {convolutions!r}"
        )
    if convolutions != "auto":
        return convolutions
    if platform is None:
        if keras.backend.backend() != "jax":
            return "matmul"
        import jax

        platform = jax.default_backend()
    return "matmul" if platform == "cpu" else "stock"


def conv3x3(filters: int, kind: str, *, stride: int = 1, transpose: bool = False, activation):
    """A 3x3 "same" convolution layer of either kind: stride 2 down (``stride=2``), stride 2
    up (``transpose=True``) or stride 1."""
    if kind == "stock":
        if transpose:
            return keras.layers.Conv2DTranspose(
                filters, 3, strides=2, padding="same", activation=activation
            )
        return keras.layers.Conv2D(
            filters, 3, strides=stride, padding="same", activation=activation
        )
    if transpose:
        return UpConv(filters, activation=activation)
    return (DownConv if stride == 2 else OutConv)(filters, activation=activation)
