"""Stages 2-3: the autoencoder, its backend, saving, and training."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest

import recsys_nb
from recsys_nb.embed import embed


def test_keras_runs_on_jax():
    assert keras.backend.backend() == "jax"


def test_other_backend_already_imported_is_a_clear_error():
    code = (
        "import os; os.environ['KERAS_BACKEND'] = 'numpy'; import keras\n"
        "try:\n    import recsys_nb\nexcept Exception as e:\n    print(type(e).__name__, e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "RecsysError" in out.stdout and "'numpy' backend" in out.stdout


@pytest.mark.parametrize(
    "shape, filters, params",
    [((28, 28, 1), (32, 64), 278_369), ((64, 48, 3), (32, 64, 128), None)],
)
def test_symmetric_autoencoder_shapes(shape, filters, params):
    model = recsys_nb.build_autoencoder(shape, latent_dim=32, filters=filters)
    x = np.random.default_rng(0).random((2, *shape), dtype=np.float32)
    assert model.predict(x, verbose=0).shape == (2, *shape)
    encoder = model.get_layer("encoder")
    assert encoder.predict(x, verbose=0).shape == (2, 32)
    if params is not None:  # the reference 28x28 model of the speed issue
        assert model.count_params() == params


def test_parameters_latent_channels_loss():
    model = recsys_nb.build_autoencoder((32, 24, 1), latent_dim=8, filters=(4, 8), loss="mse")
    assert model.get_layer("encoder").output.shape[-1] == 8
    assert model.loss == "mean_squared_error"
    with pytest.raises(recsys_nb.RecsysError, match="divisible"):
        recsys_nb.build_autoencoder((30, 30, 1), filters=(8, 16))
    with pytest.raises(recsys_nb.RecsysError, match="unknown loss"):
        recsys_nb.build_autoencoder((28, 28, 1), loss="hinge")


def test_depth_adds_stride_1_convolutions_at_each_level():
    shallow = recsys_nb.build_autoencoder((28, 28, 1), latent_dim=32, filters=(32, 64))
    deep = recsys_nb.build_autoencoder((28, 28, 1), latent_dim=32, filters=(32, 64), depth=2)
    x = np.random.default_rng(0).random((2, 28, 28, 1), dtype=np.float32)
    assert deep.predict(x, verbose=0).shape == (2, 28, 28, 1)
    assert deep.get_layer("encoder").predict(x, verbose=0).shape == (2, 32)
    # encoder: 3x3x32x32 after the 32-filter level, 3x3x64x64 after the 64 one (+ biases);
    # decoder: a 3x3 conv on each upsampling's input, 64 channels both times
    extra = (9 * 32 * 32 + 32) + 3 * (9 * 64 * 64 + 64)
    assert deep.count_params() - shallow.count_params() == extra
    for bad in (0, 1.5, True, "2"):
        with pytest.raises(recsys_nb.RecsysError, match="depth"):
            recsys_nb.build_autoencoder((28, 28, 1), filters=(32, 64), depth=bad)


def test_training_lowers_the_loss_and_writes_meta(tiny_product_model):
    meta = tiny_product_model.meta
    history = meta["history"]
    assert len(history["loss"]) == 2
    assert history["loss"][1] < history["loss"][0]
    assert history["val_loss"][1] < history["val_loss"][0]
    on_disk = json.loads((tiny_product_model.path / "meta.json").read_text())
    for key in (
        "dataset",
        "input_shape",
        "preprocessing",
        "latent_dim",
        "loss",
        "epochs",
        "train_loss",
        "val_loss",
        "versions",
        "git_commit",
        "trained_at",
        "model_id",
    ):
        assert key in on_disk, key
    assert on_disk["input_shape"] == [32, 24, 3] and on_disk["versions"]["backend"] == "jax"
    assert not (tiny_product_model.path / "checkpoint.keras").exists()


def test_save_load_round_trip_gives_identical_embeddings(tiny_product_model, small_catalog):
    images = recsys_nb.load_catalog(small_catalog, size=(32, 24)).images[:50]
    before = embed(tiny_product_model, images)
    loaded = recsys_nb.load_model(tiny_product_model.path)
    after = embed(loaded, images)
    np.testing.assert_array_equal(before, after)
    assert loaded.latent_dim == 16 and loaded.encoder.name == "encoder"


class InterruptAfter(keras.callbacks.Callback):
    """Stands for a killed process: stops training after ``epochs`` epochs."""

    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epochs:
            raise KeyboardInterrupt


def test_resume_continues_from_the_checkpoint(small_catalog, tmp_path):
    data = recsys_nb.load_catalog(small_catalog, size=(32, 24))
    common = dict(
        data=data,
        name=str(tmp_path / "m"),
        epochs=3,
        batch_size=64,
        filters=(4, 8),
        latent_dim=8,
        verbose=0,
    )
    with pytest.raises(KeyboardInterrupt):
        recsys_nb.train(callbacks=[InterruptAfter(1)], **common)
    state = json.loads((tmp_path / "m" / "checkpoint.json").read_text())
    assert state["epoch"] == 1 and not (tmp_path / "m" / "model.keras").exists()
    resumed = recsys_nb.train(**common)
    history = resumed.meta["history"]["loss"]
    assert len(history) == 3 and history[0] == state["history"]["loss"][0]
    assert not (tmp_path / "m" / "checkpoint.json").exists()


def test_not_a_model_folder(tmp_path):
    with pytest.raises(recsys_nb.RecsysError, match="not a model folder"):
        recsys_nb.load_model(tmp_path)


@pytest.mark.parametrize("contrast", [0.0, 0.5])  # 0.5: pairs 16 rows apart, across chunks
@pytest.mark.parametrize("batch", [48, 40])  # 3 micro-batches; 2 and a remainder of 8
def test_micro_batched_train_step_matches_the_whole_batch(batch, contrast):
    """One SGD step in micro-batches of 16 gives the whole batch's update and loss."""
    rng = np.random.default_rng(1)
    images = rng.random((batch, 28, 28, 1), dtype=np.float32) ** 3  # not all near 0.5
    results = []
    for micro in (0, 16):  # 0: Keras' own train step
        keras.utils.set_random_seed(0)
        model = recsys_nb.build_autoencoder(contrast=contrast)
        model.compile(optimizer=keras.optimizers.SGD(0.5), loss="binary_crossentropy")
        model.micro_batch = micro
        before = [w.copy() for w in model.get_weights()]
        history = model.fit(images, images, batch_size=batch, epochs=1, verbose=0)
        steps = [a - b for a, b in zip(model.get_weights(), before, strict=True)]
        results.append((steps, history.history["loss"][0]))
    (whole, whole_loss), (micro, micro_loss) = results
    assert micro_loss == pytest.approx(whole_loss, rel=1e-5)
    for a, b in zip(whole, micro, strict=True):
        assert np.abs(a).max() > 0
        np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-6)


def test_micro_batch_fits_the_cache():
    small = recsys_nb.build_autoencoder()
    photo = recsys_nb.build_autoencoder((64, 48, 1), filters=(32, 64, 128))
    assert isinstance(small, recsys_nb.model.Autoencoder)
    # 28x28x32 floats per image (100 kB) -> 32 in 4 MiB; 64x48x32 (393 kB) -> 8.
    assert recsys_nb.model._auto_micro_batch(small) == 32
    assert recsys_nb.model._auto_micro_batch(photo) == 8


def test_colour_hint_is_the_histogram_of_the_item_pixels():
    from recsys_nb.model import ColourHint

    image = np.ones((1, 4, 4, 3), dtype=np.float32)  # white background
    image[0, :2, :2] = [1.0, 0.0, 0.0]  # 4 red pixels
    image[0, 3, 3] = [0.3, 0.3, 0.3]  # 1 grey pixel
    hint = np.asarray(ColourHint(bins=4)(image)).reshape(3, 4)  # channel x bin
    np.testing.assert_allclose(hint[0], [0, 0.2, 0, 0.8])  # red: 0.3 -> bin 1, 1.0 -> bin 3
    np.testing.assert_allclose(hint[1], [0.8, 0.2, 0, 0])
    assert np.asarray(ColourHint()(np.ones((2, 4, 4, 1), np.float32))).sum() == 0  # all white


def test_colour_hint_model_trains_saves_and_decodes(tmp_path):
    model = recsys_nb.build_autoencoder((16, 12, 3), filters=(8, 16), colour_hint=True)
    assert [tuple(i.shape) for i in model.get_layer("decoder").inputs] == [(None, 32), (None, 24)]
    images = np.random.default_rng(0).random((64, 16, 12, 3), dtype=np.float32)
    model.fit(images, images, batch_size=32, epochs=1, verbose=0)
    recsys_nb.model.save_model(model, tmp_path, {"name": "hint"})
    loaded = recsys_nb.load_model(tmp_path)
    np.testing.assert_allclose(
        loaded.autoencoder.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-6
    )
    codes = loaded.encoder.predict(images[:3], verbose=0)
    np.testing.assert_allclose(
        loaded.decode(codes, images[:3]), model.predict(images[:3], verbose=0), atol=1e-5
    )
    assert loaded.decode(codes, images[0]).shape == (3, 16, 12, 3)  # one image's colours for all


def test_view_contrast_loss_by_hand():
    from recsys_nb.model import view_contrast_loss

    # Two items whose two views agree exactly and are orthogonal to each other: the right
    # partner scores 1/t = 10, the other 0, so each row's cross-entropy is log(1 + e^-10).
    views = np.array([[2.0, 0.0], [0.0, 3.0], [1.0, 0.0], [0.0, 0.5]], dtype=np.float32)
    assert float(view_contrast_loss(views, 0.1)) == pytest.approx(np.log1p(np.exp(-10)), rel=1e-3)
    # Swapped partners: each row's right partner scores 0 and the wrong one 10.
    swapped = views[[0, 1, 3, 2]]
    assert float(view_contrast_loss(swapped, 0.1)) == pytest.approx(np.log1p(np.exp(10)), rel=1e-5)


def test_view_contrast_adds_its_loss_only_in_training():
    from recsys_nb.model import ViewContrast

    codes = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    layer = ViewContrast(weight=0.5)
    np.testing.assert_array_equal(np.asarray(layer(codes)), codes)
    assert not layer.losses
    layer(codes, training=True)
    expected = 0.5 * float(recsys_nb.model.view_contrast_loss(codes, 0.1))
    assert [float(v) for v in layer.losses] == [pytest.approx(expected)]


def test_contrast_model_trains_on_paired_views_and_saves(small_catalog, models_dir):
    from recsys_nb.train import trained_with

    data = recsys_nb.load_catalog(small_catalog, size=(32, 24), channels=1)
    with pytest.raises(recsys_nb.RecsysError, match="augment"):
        recsys_nb.train(data=data, name=str(models_dir / "bad"), epochs=1, contrast=0.1)
    for bad in (-1, float("nan")):
        with pytest.raises(recsys_nb.RecsysError, match="contrast must be"):
            recsys_nb.train(data=data, name=str(models_dir / "bad"), epochs=1, contrast=bad)
    model = recsys_nb.train(
        data=data,
        name=str(models_dir / "tiny-contrast"),
        epochs=1,
        batch_size=32,
        filters=(8, 16),
        latent_dim=8,
        augment="flip,tone",
        contrast=0.1,
        verbose=0,
    )
    assert model.meta["contrast"] == 0.1 and np.isfinite(model.meta["val_loss"])
    assert model.autoencoder.get_layer("view_contrast").weight == 0.1
    spec = {"channels": 1, "augment": "flip,tone", "contrast": 0.1, "epochs": 1}
    assert trained_with(model.meta, spec, quick=model.meta["quick"])
    assert not trained_with(model.meta, {**spec, "contrast": 0}, quick=model.meta["quick"])
    assert trained_with(model.meta, {**spec, "filters": (8, 16)}, quick=model.meta["quick"])
    assert not trained_with(model.meta, {**spec, "filters": (8, 32)}, quick=model.meta["quick"])
    images = data.images[:4]
    np.testing.assert_allclose(  # at inference the layer leaves the codes alone
        model.autoencoder.predict(images, verbose=0),
        model.decode(model.encoder.predict(images, verbose=0), images),
        atol=1e-5,
    )


def edge_image(size=16, low=0.2, high=0.8):
    """A grey image, dark on the left half and light on the right: one vertical edge."""
    image = np.full((1, size, size, 1), low, dtype=np.float32)
    image[:, :, size // 2 :] = high
    return image


def test_gradient_histograms_see_edges_not_tones():
    from recsys_nb.model import gradient_histograms

    vertical = np.asarray(gradient_histograms(edge_image()))
    assert vertical.shape == (1, 3, 3, 36)  # 4x4 cells of 4 pixels, 3x3 blocks of 2x2 cells
    cells = vertical.reshape(-1, 9)
    cells = cells[cells.sum(axis=1) > 0]
    assert len(cells) and (cells.argmax(axis=1) == 0).all()  # gradient along x: bin 0
    horizontal = np.asarray(gradient_histograms(edge_image().transpose(0, 2, 1, 3)))
    cells = horizontal.reshape(-1, 9)
    cells = cells[cells.sum(axis=1) > 0]
    np.testing.assert_allclose(cells[:, 4], cells[:, 5], rtol=1e-5)  # 160 and 200 degrees
    assert (cells[:, [4, 5]].min(axis=1) >= cells.max(axis=1) - 1e-6).all()
    # flat images have no edges; a fainter edge gives about the same normalised histograms
    assert np.abs(np.asarray(gradient_histograms(np.full((1, 16, 16, 1), 0.6)))).max() == 0
    faint = np.asarray(gradient_histograms(edge_image(low=0.4, high=0.7)))
    np.testing.assert_allclose(faint, vertical, atol=0.05)
    assert np.abs(faint - vertical).max() > 0
    # RGB images go by their luminance: a grey RGB image is its grey image
    rgb = np.repeat(edge_image(), 3, axis=-1)
    np.testing.assert_allclose(np.asarray(gradient_histograms(rgb)), vertical, atol=1e-6)


def test_shape_loss_adds_the_histograms_distance():
    import jax

    from recsys_nb.model import ShapeLoss, gradient_histograms

    rng = np.random.default_rng(0)
    target = rng.random((4, 16, 12, 1), dtype=np.float32)
    output = np.clip(target + rng.normal(0, 0.1, target.shape), 0.01, 0.99).astype(np.float32)
    pixels = float(keras.losses.BinaryCrossentropy()(target, output))
    edges = float(
        np.mean((np.asarray(gradient_histograms(target)) - gradient_histograms(output)) ** 2)
    )
    assert edges > 0
    assert float(ShapeLoss("bce", 0.0)(target, output)) == pytest.approx(pixels, rel=1e-5)
    assert float(ShapeLoss("bce", 3.0)(target, output)) == pytest.approx(
        pixels + 3 * edges, rel=1e-5
    )
    mse = float(np.mean((target - output) ** 2))
    assert float(ShapeLoss("mse", 3.0)(target, output)) == pytest.approx(mse + 3 * edges, rel=1e-4)
    with pytest.raises(recsys_nb.RecsysError, match="unknown loss"):
        ShapeLoss("l1")
    # flat images (no gradient anywhere) still give a finite gradient
    flat = np.full((2, 16, 12, 1), 0.5, dtype=np.float32)
    grad = jax.grad(lambda y: ShapeLoss("bce", 10.0)(flat, y))(flat * 0.9)
    assert np.isfinite(np.asarray(grad)).all()


def test_hog_model_trains_saves_and_loads(small_catalog, models_dir):
    from recsys_nb.train import trained_with

    data = recsys_nb.load_catalog(small_catalog, size=(32, 24), channels=1)
    for bad in (-1, float("nan")):
        with pytest.raises(recsys_nb.RecsysError, match="hog must be"):
            recsys_nb.train(data=data, name=str(models_dir / "bad"), epochs=1, hog=bad)
    model = recsys_nb.train(
        data=data,
        name=str(models_dir / "tiny-hog"),
        epochs=1,
        batch_size=32,
        filters=(8, 16),
        latent_dim=8,
        hog=5.0,
        verbose=0,
    )
    assert model.meta["hog"] == 5.0 and np.isfinite(model.meta["val_loss"])
    compiled = keras.saving.load_model(model.path / "model.keras")  # as a resumed run does
    loss = compiled.loss
    assert isinstance(loss, recsys_nb.model.ShapeLoss) and (loss.base, loss.hog) == ("bce", 5.0)
    spec = {"channels": 1, "hog": 5.0, "epochs": 1}
    assert trained_with(model.meta, spec, quick=model.meta["quick"])
    assert not trained_with(model.meta, {**spec, "hog": 0}, quick=model.meta["quick"])
    assert not trained_with(model.meta, {**spec, "loss": "mse"}, quick=model.meta["quick"])
    images = data.images[:8]
    val_loss = compiled.evaluate(images, images, verbose=0)
    plain = keras.losses.BinaryCrossentropy()(images, compiled.predict(images, verbose=0))
    assert val_loss > float(plain)  # the edge term is part of the reported loss


def test_deeper_model_trains_and_records_its_depth(small_catalog, models_dir):
    from recsys_nb.train import trained_with

    data = recsys_nb.load_catalog(small_catalog, size=(32, 24), channels=1)
    with pytest.raises(recsys_nb.RecsysError, match="depth"):
        recsys_nb.train(data=data, name=str(models_dir / "bad"), epochs=1, depth=0)
    assert not (models_dir / "bad").exists()
    model = recsys_nb.train(
        data=data, name=str(models_dir / "tiny-deep"), epochs=1, filters=(8, 16), depth=2, verbose=0
    )
    assert model.meta["depth"] == 2
    reloaded = recsys_nb.load_model(model.path)
    assert len(reloaded.encoder.layers) == len(model.encoder.layers) == 7  # in, 2 x 2, flat, code
    images = data.images[:4]
    np.testing.assert_allclose(
        recsys_nb.embed(reloaded, images), recsys_nb.embed(model, images), atol=1e-6
    )
    spec = {"channels": 1, "epochs": 1, "depth": 2}
    assert trained_with(model.meta, spec, quick=model.meta["quick"])
    assert not trained_with(model.meta, {**spec, "depth": 1}, quick=model.meta["quick"])
    older = {k: v for k, v in model.meta.items() if k not in ("depth", "recipe")}  # depth 1
    assert trained_with(older, {"channels": 1, "epochs": 1}, quick=model.meta["quick"])
