"""recsys_nb.layers: exact stand-ins for Keras' Conv2D / Conv2DTranspose (values and gradients)."""

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

from recsys_nb.layers import DownConv, OutConv, UpConv

STOCK = {
    "down": lambda f, act: keras.layers.Conv2D(f, 3, strides=2, padding="same", activation=act),
    "up": lambda f, act: keras.layers.Conv2DTranspose(
        f, 3, strides=2, padding="same", activation=act
    ),
    "out": lambda f, act: keras.layers.Conv2D(f, 3, padding="same", activation=act),
}
OURS = {"down": DownConv, "up": UpConv, "out": OutConv}

CASES = [
    ("down", 4, "relu", (2, 6, 8, 3)),
    ("down", 32, "relu", (3, 4, 4, 1)),
    ("down", 5, None, (2, 10, 6, 2)),
    ("up", 6, "relu", (2, 3, 4, 5)),
    ("up", 32, "relu", (2, 7, 7, 8)),
    ("up", 3, None, (1, 5, 3, 2)),
    ("out", 1, "sigmoid", (2, 6, 6, 4)),
    ("out", 3, "sigmoid", (2, 8, 6, 32)),
    ("out", 2, None, (1, 5, 7, 3)),
    # activations whose slope the JAX backward cannot take from the output: autodiff
    ("up", 4, "tanh", (2, 3, 4, 5)),
    ("out", 2, "tanh", (1, 5, 7, 3)),
]


def _pair(kind, filters, activation, shape, seed=0):
    """Our layer and Keras' layer with the same random weights (copied: same layout)."""
    rng = np.random.default_rng(seed)
    stock, ours = STOCK[kind](filters, activation), OURS[kind](filters, activation=activation)
    stock.build(shape)
    ours.build(shape)
    weights = [rng.standard_normal(w.shape).astype("float32") * 0.5 for w in stock.weights]
    stock.set_weights(weights)
    ours.set_weights(weights)
    assert [w.shape for w in ours.weights] == [w.shape for w in stock.weights]
    return ours, stock, rng.random(shape, dtype=np.float32)


def _value_and_grads(layer, x, probe):
    """Output and d(sum(sin(y) * probe)) / d(input, kernel, bias)."""

    def loss(x, kernel, bias):
        y = layer.stateless_call([kernel, bias], [], x)[0]
        return jnp.sum(jnp.sin(y) * probe), y

    (_, y), grads = jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True)(
        jnp.asarray(x), layer.kernel.value, layer.bias.value
    )
    return np.asarray(y), [np.asarray(g) for g in grads]


@pytest.mark.parametrize("kind, filters, activation, shape", CASES)
def test_layer_matches_keras_layer(kind, filters, activation, shape):
    ours, stock, x = _pair(kind, filters, activation, shape)
    expected = np.asarray(stock(x))
    got = np.asarray(ours(x))
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)

    probe = np.random.default_rng(1).standard_normal(expected.shape).astype("float32")
    y_ours, g_ours = _value_and_grads(ours, x, probe)
    y_stock, g_stock = _value_and_grads(stock, x, probe)
    np.testing.assert_allclose(y_ours, y_stock, rtol=1e-5, atol=1e-5)
    for name, a, b in zip(("input", "kernel", "bias"), g_ours, g_stock, strict=True):
        scale = max(1.0, float(np.abs(b).max()))
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * scale, err_msg=f"d/d{name}")


def test_layers_under_jit_and_model_save_load_round_trip(tmp_path):
    image = keras.Input((8, 8, 3))
    y = OutConv(3)(UpConv(4)(UpConv(5)(DownConv(6)(DownConv(4)(image)))))
    model = keras.Model(image, y)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    x = np.random.default_rng(0).random((4, 8, 8, 3), dtype=np.float32)
    model.fit(x, x, epochs=1, batch_size=2, verbose=0)
    before = model.predict(x, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), before, rtol=1e-6, atol=1e-6)
    kinds = [type(layer).__name__ for layer in loaded.layers[1:]]
    assert kinds == ["DownConv", "DownConv", "UpConv", "UpConv", "OutConv"]
    assert loaded.layers[-1].get_config()["activation"] == "sigmoid"
    assert loaded.layers[1].get_config()["filters"] == 4


@pytest.mark.parametrize(
    "layer, shape, own",
    [
        (UpConv(4), (1, 3, 4, 5), True),
        (OutConv(1), (1, 6, 6, 4), True),
        (UpConv(4, activation="tanh"), (1, 3, 4, 5), False),  # autodiff fallback
        (DownConv(4), (1, 6, 8, 3), False),  # autodiff was as fast: no own backward
    ],
)
def test_which_layers_bring_their_own_jax_backward(layer, shape, own):
    layer.build(shape)
    jaxpr = str(jax.make_jaxpr(lambda x: layer(x))(jnp.zeros(shape)))
    assert ("custom_vjp" in jaxpr) == own


def test_conv_kind_uses_stock_convolutions_past_the_cpu():
    from recsys_nb.layers import conv_kind

    assert conv_kind() == "matmul"  # this machine: JAX on a CPU
    assert conv_kind(platform="cpu") == "matmul"
    assert conv_kind(platform="gpu") == conv_kind(platform="tpu") == "stock"
    assert conv_kind("stock", platform="cpu") == "stock"
    with pytest.raises(ValueError, match="convolutions must be one of"):
        conv_kind("cudnn")


def test_stock_and_matmul_autoencoders_compute_the_same_function():
    import recsys_nb

    keras.utils.set_random_seed(0)
    kwargs = {"input_shape": (16, 12, 1), "latent_dim": 4, "filters": (4, 8), "depth": 2}
    fast = recsys_nb.build_autoencoder(**kwargs)
    stock = recsys_nb.build_autoencoder(**kwargs, convolutions="stock")
    kinds = {type(layer).__name__ for layer in stock.get_layer("decoder").layers}
    assert {"Conv2D", "Conv2DTranspose"} <= kinds and "UpConv" not in kinds
    stock.set_weights(fast.get_weights())  # one kernel layout
    images = np.random.default_rng(0).random((3, 16, 12, 1)).astype("float32")
    np.testing.assert_allclose(
        stock.predict(images, verbose=0), fast.predict(images, verbose=0), atol=1e-5
    )
