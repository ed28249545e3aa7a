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
torch. Train step, batch 256, 2-core CPU, 28x28x1 autoencoder: stock layers
9.3 CPU ms/img, these 2.1 (benchmarks/train_speed.py; see benchmarks/README.md).
"""

import keras
from keras import ops


class _Conv3x3(keras.layers.Layer):
    """Shared weights and config; subclasses set `_transposed` and `call`."""

    _transposed = False

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

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, activation=keras.activations.serialize(self.activation))
        return config


@keras.saving.register_keras_serializable(package="recsys_nb")
class DownConv(_Conv3x3):
    """Conv2D(filters, 3, strides=2, padding="same"); input height and width must be even."""

    def __init__(self, filters, activation="relu", **kwargs):
        super().__init__(filters, activation, **kwargs)

    def call(self, x):
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
        y = ops.matmul(
            ops.concatenate(taps, axis=-1), ops.reshape(self.kernel, (9 * c, self.filters))
        )
        return self.activation(y + self.bias)


@keras.saving.register_keras_serializable(package="recsys_nb")
class UpConv(_Conv3x3):
    """Conv2DTranspose(filters, 3, strides=2, padding="same"): output is 2H x 2W."""

    _transposed = True

    def __init__(self, filters, activation="relu", **kwargs):
        super().__init__(filters, activation, **kwargs)

    def call(self, x):
        h, w, c, f = x.shape[1], x.shape[2], x.shape[3], self.filters
        # Scatter form: input pixel (m, n) adds x[m, n] @ kernel[i, j].T to output (2m+i, 2n+j)
        # (cropped to 2h x 2w).  One matmul per kernel row i gives the three column taps j
        # side by side; tap j=2 lands on the next column block, phase 0.  Exactly the 9 taps'
        # arithmetic (a gather over 4 input shifts would do 16), and the weight gradient is
        # a plain x^T @ dz matmul.
        kernel = ops.transpose(self.kernel, (0, 3, 1, 2))  # (i, C, j, F)
        rows = []
        for i in range(3):
            z = ops.matmul(x, ops.reshape(kernel[i], (c, 3 * f)))  # (B, h, w, [j0 j1 j2] F)
            nxt = ops.pad(z[..., 2 * f :], [[0, 0], [0, 0], [1, 0], [0, 0]])[:, :, :w]
            rows.append(ops.concatenate([z[..., :f] + nxt, z[..., f : 2 * f]], axis=-1))
        # Kernel row 2 lands on the next row block, phase 0; row 1 on phase 1.
        below = ops.pad(rows[2], [[0, 0], [1, 0], [0, 0], [0, 0]])[:, :h]
        y = ops.stack([rows[0] + below, rows[1]], axis=2)  # (B, h, 2, w, 2F)
        return self.activation(ops.reshape(y, (-1, 2 * h, 2 * w, f)) + self.bias)


@keras.saving.register_keras_serializable(package="recsys_nb")
class OutConv(_Conv3x3):
    """Conv2D(filters, 3, padding="same"), e.g. the image output layer (few filters).

    One matmul of the input against all nine taps (C -> 9 * filters), then the taps'
    shifted sums, rows then columns; this way the weight gradient is a matmul too
    (XLA's own convolution is fast forward but its weight gradient is not).
    """

    def __init__(self, filters, activation="sigmoid", **kwargs):
        super().__init__(filters, activation, **kwargs)

    def call(self, x):
        h, w, c, f = x.shape[1], x.shape[2], x.shape[3], self.filters
        # out[m, n] = sum_ij x[m + i - 1, n + j - 1] @ kernel[i, j]
        kernel = ops.reshape(ops.transpose(self.kernel, (2, 0, 1, 3)), (c, 9 * f))
        z = ops.reshape(ops.matmul(x, kernel), (-1, h, w, 3, 3 * f))
        z = ops.pad(z, [[0, 0], [1, 1], [0, 0], [0, 0], [0, 0]])
        r = z[:, 0:h, :, 0] + z[:, 1 : h + 1, :, 1] + z[:, 2 : h + 2, :, 2]  # (B, h, w, 3F)
        r = ops.pad(r, [[0, 0], [0, 0], [1, 1], [0, 0]])
        y = r[:, :, 0:w, :f] + r[:, :, 1 : w + 1, f : 2 * f] + r[:, :, 2 : w + 2, 2 * f :]
        return self.activation(y + self.bias)
