"""A small convolutional variational autoencoder (VAE) for 28x28 grey images (Keras 3, JAX).

The encoder gives each image a Gaussian in latent space (a mean and a log-variance per
dimension) instead of one point; :class:`Sampling` draws a code from it with the
reparameterisation trick (``mean + exp(log_var / 2) * eps``), so the gradient flows through
the mean and the variance, and adds the Kullback-Leibler divergence from the prior
N(0, I) to the model's losses with ``add_loss``. Compiled with binary cross-entropy, the
loss is the negative ELBO per pixel: the Bernoulli reconstruction term, a mean over pixels,
plus ``beta`` times the KL divergence divided by the number of pixels. Keras' own JAX train
step collects ``add_loss`` terms from the stateless forward pass, so no custom
``train_step`` is needed.

Because the KL term pulls every image's Gaussian towards N(0, I), the codes fill the
prior without holes, and a code drawn from N(0, I) decodes to a plausible image
(:func:`sample`); a plain autoencoder makes no such promise.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from .layers import DownConv, OutConv, UpConv


@keras.saving.register_keras_serializable(package="recsys_nb")
class Sampling(layers.Layer):
    """``(mean, log_var) -> mean + exp(log_var / 2) * eps`` with eps ~ N(0, I) when
    training (the mean otherwise), adding ``weight`` times KL(N(mean, var) || N(0, I)),
    averaged over the batch, as a loss."""

    def __init__(self, weight: float = 1.0, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.weight = float(weight)
        self.seed = int(seed)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        mean, log_var = inputs
        self.add_loss(self.weight * ops.mean(kl_divergence(mean, log_var)))
        if not training:
            return mean
        eps = keras.random.normal(ops.shape(mean), seed=self.seed_generator)
        return mean + ops.exp(0.5 * log_var) * eps

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "weight": self.weight, "seed": self.seed}


def kl_divergence(mean, log_var):
    """KL(N(mean, exp(log_var)) || N(0, I)) per row, summed over the latent dimensions."""
    return -0.5 * ops.sum(1.0 + log_var - ops.square(mean) - ops.exp(log_var), axis=-1)


def build_vae(
    latent_dim: int = 2,
    input_shape=(28, 28, 1),
    filters=(16, 32),
    beta: float = 1.0,
    learning_rate: float = 3e-3,
    seed: int = 0,
) -> keras.Model:
    """A compiled VAE (Adam, binary cross-entropy + ``beta`` * KL / pixels) with sub-models
    ``encoder`` (image -> [mean, log_var]) and ``decoder`` (code -> image), shaped like
    :func:`recsys_nb.teach.small_autoencoder`."""
    height, width, channels = (int(v) for v in input_shape)
    small = (height // 4, width // 4, filters[1])
    image = keras.Input((height, width, channels), name="image")
    x = DownConv(filters[0], activation="relu")(image)
    x = DownConv(filters[1], activation="relu")(x)
    x = layers.Flatten()(x)
    mean = layers.Dense(latent_dim, name="mean")(x)
    log_var = layers.Dense(latent_dim, name="log_var", kernel_initializer="zeros")(x)
    encoder = keras.Model(image, [mean, log_var], name="encoder")

    code = keras.Input((latent_dim,), name="code")
    y = layers.Dense(int(np.prod(small)), activation="relu")(code)
    y = layers.Reshape(small)(y)
    y = UpConv(filters[1], activation="relu")(y)
    y = UpConv(filters[0], activation="relu")(y)
    pixels = OutConv(channels, activation="sigmoid")(y)
    decoder = keras.Model(code, pixels, name="decoder")

    z_mean, z_log_var = encoder(image)
    pixels_n = height * width * channels
    z = Sampling(beta / pixels_n, seed=seed, name="sampling")([z_mean, z_log_var])
    vae = keras.Model(image, decoder(z), name="vae")
    vae.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="binary_crossentropy")
    return vae


def encode(vae: keras.Model, images, batch_size: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """The (mean, log_var) of each image's Gaussian in latent space."""
    mean, log_var = vae.get_layer("encoder").predict(
        np.asarray(images), batch_size=batch_size, verbose=0
    )
    return np.asarray(mean), np.asarray(log_var)


def prior_codes(n: int, latent_dim: int, seed: int = 0) -> np.ndarray:
    """``n`` codes drawn from the prior N(0, I), seeded."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, latent_dim)).astype(np.float32)


def sample(vae: keras.Model, n: int, seed: int = 0) -> np.ndarray:
    """``n`` new images: codes from the prior N(0, I) through the decoder."""
    decoder = vae.get_layer("decoder")
    codes = prior_codes(n, int(decoder.input.shape[-1]), seed)
    return np.asarray(decoder.predict(codes, verbose=0))
