"""The teaching notebooks' helpers (recsys_nb.teach) and the small VAE (recsys_nb.vae).

Models here are 8x8 pictures with a few filters, so that each compiles and trains in seconds.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from recsys_nb import teach, vae

SHAPE = (8, 8, 1)
FILTERS = (4, 8)


@pytest.fixture(scope="module")
def pictures():
    """32 smooth 8x8 pictures in [0, 1] (blobs at random places) and a seeded RNG's noise."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:8, 0:8]
    centres = rng.uniform(1.5, 6.5, (32, 2))
    blobs = np.exp(-((yy - centres[:, :1, None]) ** 2 + (xx - centres[:, 1:, None]) ** 2) / 4)
    return blobs[..., None].astype(np.float32)


def test_psnr_known_values():
    clean = np.zeros((2, 4, 4, 1), np.float32)
    other = clean.copy()
    other[0] += 0.1  # mse 0.01 -> 20 dB
    other[1] += 0.5  # mse 0.25 -> 6.02 dB
    np.testing.assert_allclose(teach.psnr(clean, other), [20.0, 10 * math.log10(4)], rtol=1e-6)
    assert np.isinf(teach.psnr(clean, clean)).all()
    # on a 0-255 scale the same relative error gives the same PSNR
    np.testing.assert_allclose(teach.psnr(clean * 255, other * 255, max_value=255.0)[0], 20.0)


def test_mse_per_image():
    a = np.zeros((3, 2, 2, 1))
    b = np.stack([np.zeros((2, 2, 1)), np.ones((2, 2, 1)), np.full((2, 2, 1), 0.5)])
    np.testing.assert_allclose(teach.mse(a, b), [0.0, 1.0, 0.25])


@pytest.mark.parametrize("kind", teach.NOISE_KINDS)
def test_add_noise_range_and_seed(pictures, kind):
    noisy = teach.add_noise(pictures, kind, amount=0.4, seed=3)
    assert noisy.shape == pictures.shape and noisy.dtype == np.float32
    assert noisy.min() >= 0.0 and noisy.max() <= 1.0
    assert not np.allclose(noisy, pictures)
    np.testing.assert_array_equal(noisy, teach.add_noise(pictures, kind, amount=0.4, seed=3))
    assert not np.array_equal(noisy, teach.add_noise(pictures, kind, amount=0.4, seed=4))
    np.testing.assert_array_equal(teach.add_noise(pictures, kind, amount=0.0), pictures)


def test_salt_and_pepper_hits_the_fraction_asked_for():
    grey = np.full((50, 20, 20, 1), 0.5, np.float32)
    noisy = teach.add_noise(grey, "salt_pepper", amount=0.2, seed=0)
    hit = noisy != 0.5
    assert abs(hit.mean() - 0.2) < 0.01
    assert set(np.unique(noisy[hit])) == {0.0, 1.0}
    assert abs((noisy[hit] == 1.0).mean() - 0.5) < 0.03


def test_gaussian_noise_has_the_asked_spread():
    grey = np.full((20, 28, 28, 1), 0.5, np.float32)
    noisy = teach.add_noise(grey, "gaussian", amount=0.1, seed=0)  # clipping is rare at 5 sd
    assert abs(float(noisy.std()) - 0.1) < 0.005


def test_add_noise_rejects_unknown_kind(pictures):
    with pytest.raises(ValueError, match="unknown noise"):
        teach.add_noise(pictures, "speckle")


def test_grid_codes_run_row_by_row_from_the_top():
    codes = teach.grid_codes((-1.0, -2.0), (1.0, 2.0), n=3)
    assert codes.shape == (9, 2)
    np.testing.assert_allclose(codes[0], [-1.0, 2.0])  # top left
    np.testing.assert_allclose(codes[2], [1.0, 2.0])  # top right
    np.testing.assert_allclose(codes[-1], [1.0, -2.0])  # bottom right


def test_mosaic_tiles_and_pads():
    images = np.arange(5, dtype=np.float32)[:, None, None, None] * np.ones((5, 2, 3, 1))
    tiled = teach.mosaic(images, ncols=2)
    assert tiled.shape == (3 * 2, 2 * 3)
    assert tiled[0, 0] == 0 and tiled[0, 3] == 1 and tiled[2, 0] == 2 and tiled[4, 0] == 4
    assert tiled[4, 3] == 0  # the missing sixth picture is black


def test_top_variance_dims():
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(500, 5)) * np.array([1.0, 5.0, 0.1, 3.0, 2.0])
    np.testing.assert_array_equal(teach.top_variance_dims(codes, k=3), [1, 3, 4])


def test_nearest_distance():
    rng = np.random.default_rng(0)
    reference = rng.random((40, 4, 4, 1)).astype(np.float32)
    samples = np.concatenate([reference[7:8], reference[3:4] + 0.1])
    np.testing.assert_allclose(teach.nearest_distance(samples, reference, chunk=1), [0.0, 0.1],
                               atol=1e-3)  # fmt: skip


def test_pca_reconstructions_are_exact_for_data_of_that_rank():
    rng = np.random.default_rng(0)
    basis = rng.random((3, 16))
    data = (rng.random((60, 3)) @ basis / 3).reshape(60, 4, 4, 1).astype(np.float32)
    back = teach.pca_reconstructions(data[:50], data[50:], n_components=3)
    assert back.shape == (10, 4, 4, 1)
    np.testing.assert_allclose(back, data[50:], atol=1e-5)
    fewer = teach.pca_reconstructions(data[:50], data[50:], n_components=1)
    assert teach.mse(data[50:], fewer).mean() > 1e-4


@pytest.fixture(scope="module")
def small_ae():
    keras.utils.set_random_seed(0)
    return teach.small_autoencoder(latent_dim=3, filters=FILTERS, input_shape=SHAPE)


def test_small_autoencoder_shapes_and_walks(small_ae, pictures):
    encoder, decoder = small_ae.get_layer("encoder"), small_ae.get_layer("decoder")
    assert tuple(encoder.output.shape) == (None, 3)
    assert tuple(decoder.output.shape) == (None, *SHAPE)
    assert teach.reconstruct(small_ae, pictures).shape == pictures.shape
    errors = teach.reconstruction_errors(small_ae, pictures)
    assert errors.shape == (len(pictures),) and (errors > 0).all()
    codes = encoder.predict(pictures, verbose=0)
    walk = teach.interpolate(decoder, codes[0], codes[1], steps=5)
    assert walk.shape == (5, *SHAPE)
    np.testing.assert_allclose(walk[0], decoder.predict(codes[:1], verbose=0)[0], atol=1e-5)
    np.testing.assert_allclose(walk[-1], decoder.predict(codes[1:2], verbose=0)[0], atol=1e-5)
    walks = teach.traverse(decoder, codes[0], dims=[2, 0], codes=codes, steps=4)
    assert walks.shape == (2, 4, *SHAPE)
    grid = teach.manifold_grid(
        keras.Sequential([keras.Input((2,)), keras.layers.Dense(64), keras.layers.Reshape(SHAPE)]),
        (-1, -1), (1, 1), n=3,
    )  # fmt: skip
    assert grid.shape == (3 * 8, 3 * 8)


def test_small_autoencoder_learns_and_estimates_its_time(small_ae, pictures):
    seconds = teach.estimate_fit_seconds(
        lambda: teach.small_autoencoder(3, filters=FILTERS, input_shape=SHAPE),
        pictures, epochs=2, batch_size=16, validation=pictures, steps=2,
    )  # fmt: skip
    assert 0 < seconds < 60
    before = small_ae.evaluate(pictures, pictures, verbose=0)
    small_ae.fit(pictures, pictures, batch_size=16, epochs=30, verbose=0)
    assert small_ae.evaluate(pictures, pictures, verbose=0) < before - 0.01


@pytest.fixture(scope="module")
def small_vae():
    keras.utils.set_random_seed(0)
    return vae.build_vae(latent_dim=2, input_shape=SHAPE, filters=FILTERS, beta=1.0)


def test_vae_loss_is_cross_entropy_plus_kl(small_vae, pictures):
    """Keras' JAX train/test step picks up the KL term that Sampling adds with add_loss."""
    loss = small_vae.evaluate(pictures, pictures, batch_size=len(pictures), verbose=0)
    mean, log_var = vae.encode(small_vae, pictures)
    p = np.clip(small_vae.predict(pictures, verbose=0), 1e-7, 1 - 1e-7)  # decodes the mean
    bce = -np.mean(pictures * np.log(p) + (1 - pictures) * np.log(1 - p))
    kl = -0.5 * np.sum(1 + log_var - mean**2 - np.exp(log_var), axis=1).mean()
    assert kl > 0
    assert loss == pytest.approx(bce + kl / np.prod(SHAPE), rel=1e-3)


def test_vae_trains_and_its_loss_falls(small_vae, pictures):
    before = small_vae.evaluate(pictures, pictures, verbose=0)
    history = small_vae.fit(pictures, pictures, batch_size=16, epochs=30, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert small_vae.evaluate(pictures, pictures, verbose=0) < before - 0.01


def test_sampling_draws_around_the_mean_when_training():
    layer = vae.Sampling(weight=0.0, seed=1)
    mean = np.zeros((1000, 2), np.float32)
    log_var = np.full((1000, 2), np.log(4.0), np.float32)  # sd 2
    drawn = keras.ops.convert_to_numpy(layer([mean, log_var], training=True))
    assert abs(drawn.std() - 2.0) < 0.15 and abs(drawn.mean()) < 0.15
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer([mean, log_var])), mean)


def test_kl_divergence_is_zero_only_at_the_prior():
    zero = keras.ops.convert_to_numpy(vae.kl_divergence(np.zeros((1, 3)), np.zeros((1, 3))))
    off = keras.ops.convert_to_numpy(vae.kl_divergence(np.ones((1, 3)), np.zeros((1, 3))))
    np.testing.assert_allclose(zero, [0.0], atol=1e-7)
    np.testing.assert_allclose(off, [1.5], rtol=1e-6)  # 0.5 * sum(mean**2)


def test_vae_samples(small_vae):
    images = vae.sample(small_vae, 6, seed=2)
    assert images.shape == (6, *SHAPE)
    assert images.min() >= 0.0 and images.max() <= 1.0
    np.testing.assert_array_equal(vae.prior_codes(4, 2, seed=5), vae.prior_codes(4, 2, seed=5))
    assert vae.prior_codes(4, 2, seed=5).shape == (4, 2)
    np.testing.assert_array_equal(images, vae.sample(small_vae, 6, seed=2))


def test_hole_fraction():
    rng = np.random.default_rng(0)
    reference = rng.random((2000, 2))  # the unit square, filled
    inside = rng.uniform(0.1, 0.9, (200, 2))
    outside = rng.uniform(2.0, 3.0, (200, 2))
    assert teach.hole_fraction(inside, reference) < 0.05
    assert teach.hole_fraction(outside, reference) == 1.0
    assert teach.hole_fraction(np.concatenate([inside, outside]), reference) == pytest.approx(
        0.5, abs=0.03
    )
