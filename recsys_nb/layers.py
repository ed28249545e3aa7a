"""Fast 3x3 convolution layers for Keras 3 on the XLA (JAX) CPU backend.

XLA CPU runs a forward stride-1 convolution through its fast library path
(YNNPACK/Eigen), but the convolutions that autodiff and transposed
convolutions produce are slow: the weight gradient is a convolution whose
"kernel" is the whole output gradient (window 28x28 and up, and with
rhs_dilation for strided layers), and a transposed convolution is a
convolution with lhs_dilation.  Per op, batch 256, 14x14x64 -> 28x28x32
Conv2DTranspose: forward 79 ms, input gradient 37 ms, weight gradient 748 ms,
while a plain matmul of the same size runs at ~80 GFLOP/s.  That is why the
autoencoder trained ~5x slower on JAX than on torch (jax-ml/jax#23783,
openxla/xla#34273).

These layers build the 3x3 windows from slices and reshapes (space-to-depth
for stride 2, sub-pixel phases for the transposed case) and contract them
with one matmul, so forward and backward are only matmuls, pads, slices and
transposes.  They compute exactly what Conv2D / Conv2DTranspose with
kernel_size=3, padding="same" compute, with the same kernel layout and
initialiser, so Keras weights can be copied across.  They use keras.ops only
and also run (more slowly than cuDNN/oneDNN convolutions) on the torch backend.
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
        # Output row 2m+p sums input rows m-s times kernel row taps_of_phase[p][s] (same for
        # columns); the four phases come from one matmul and are interleaved (depth-to-space).
        taps_of_phase = ({0: 0, 1: 2}, {0: 1})
        shifts = [(0, 0), (0, 1), (1, 0), (1, 1)]
        x = ops.pad(x, [[0, 0], [1, 0], [1, 0], [0, 0]])
        windows = ops.concatenate(
            [x[:, 1 - s : 1 - s + h, 1 - t : 1 - t + w, :] for s, t in shifts], axis=-1
        )
        kernel = ops.transpose(self.kernel, (0, 1, 3, 2))
        zero = ops.zeros((c, f), dtype=kernel.dtype)
        blocks = []
        for rows in taps_of_phase:
            for cols in taps_of_phase:
                blocks.append(
                    ops.concatenate(
                        [
                            kernel[rows[s], cols[t]] if s in rows and t in cols else zero
                            for s, t in shifts
                        ],
                        axis=0,
                    )
                )
        y = ops.matmul(windows, ops.concatenate(blocks, axis=1))  # (B, h, w, 4 phases * f)
        y = ops.transpose(ops.reshape(y, (-1, h, w, 2, 2, f)), (0, 1, 3, 2, 4, 5))
        return self.activation(ops.reshape(y, (-1, 2 * h, 2 * w, f)) + self.bias)


@keras.saving.register_keras_serializable(package="recsys_nb")
class OutConv(_Conv3x3):
    """Conv2D(filters, 3, padding="same"), e.g. the image output layer.

    Kept as XLA's own convolution: its forward and input gradient are fast; only the
    weight gradient is slow, and the matmul/shift rewrites measured no faster here.
    """

    def __init__(self, filters, activation="sigmoid", **kwargs):
        super().__init__(filters, activation, **kwargs)

    def call(self, x):
        return self.activation(ops.conv(x, self.kernel, padding="same") + self.bias)
