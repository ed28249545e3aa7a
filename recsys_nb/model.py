"""Stage 2, model: a symmetric convolutional autoencoder in Keras 3 (JAX backend).

Encoder: stride-2 3x3 convolutions (one per entry of ``filters``), flatten, a linear
``Dense(latent_dim)``. Decoder: the mirror image, ``Dense`` back to the smallest
feature map, stride-2 3x3 transposed convolutions, and a 3x3 sigmoid convolution to
the image's channels. The encoder and decoder are named sub-models, so
``model.encoder`` works on its own.

On a CPU, :class:`Autoencoder` trains each batch in cache-sized micro-batches inside
one jitted train step (the gradient is the same as the whole batch's); see its docstring.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from keras import layers

from . import settings
from .errors import RecsysError
from .layers import conv3x3, conv_kind
from .terms import (  # noqa: F401  (re-exported: recsys_nb.model.ShapeLoss and the rest)
    LOSSES,
    ColourHint,
    ShapeLoss,
    ViewContrast,
    cosine_distance,
    gradient_histograms,
    view_contrast_loss,
)

DEFAULT_LATENT_DIM = 32
DEFAULT_FILTERS = (32, 64)
# Largest activation a micro-batch may hold: small enough for the CPU's caches.
MICRO_BATCH_BYTES = 2**22
TEACHER_HIDDEN = 512  # units of the distillation head's hidden layer


@keras.saving.register_keras_serializable(package="recsys_nb")
class Autoencoder(keras.Model):
    """A functional Keras model whose JAX train step runs in micro-batches on a CPU.

    On 2 CPU cores a batch of 256 images is memory-bound: the decoder's activations
    (up to 58 MB for one 28x28 layer) do not fit in any cache. The train step therefore
    splits the batch into micro-batches of ``micro_batch`` images (a power of two whose
    largest activation fits in ``MICRO_BATCH_BYTES``), runs forward and backward on each
    inside a ``lax.scan`` and applies the optimizer once to the summed gradient: the same
    update as the whole batch, but the default models train 1.5-1.65x faster
    (benchmarks/train_speed.py). A :class:`ViewContrast` loss, which pairs rows across
    the whole batch, is handled as in "gradient caching": one encoder pass over the whole
    batch gives the contrast loss and its gradient with respect to each row's code, and
    each micro-batch then back-propagates its rows' share of it. On a GPU, or on another
    backend, it is Keras' own train step. ``model.micro_batch`` sets the size
    (``None``: automatic; ``0``: off).
    """

    micro_batch: int | None = None

    def train_step(self, *args):
        import jax

        micro = _auto_micro_batch(self) if self.micro_batch is None else self.micro_batch
        if keras.backend.backend() != "jax" or jax.default_backend() != "cpu" or not micro:
            return super().train_step(*args)
        return _micro_batch_train_step(self, micro, *args)


def _all_layers(model: keras.Model):
    """Every layer of ``model``, nested models' layers included (public ``.layers`` only)."""
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def _auto_micro_batch(model: keras.Model) -> int | None:
    """The largest power of two whose biggest layer output fits in MICRO_BATCH_BYTES."""
    sizes = []
    for layer in _all_layers(model):
        try:
            shape = tuple(layer.output.shape)[1:]
        except (AttributeError, ValueError):
            continue
        if all(isinstance(d, int) for d in shape):
            sizes.append(int(np.prod(shape)))
    if not sizes:
        return None
    images = max(1, MICRO_BATCH_BYTES // (4 * max(sizes)))
    return 1 << (images.bit_length() - 1)


def _micro_batch_train_step(model: Autoencoder, micro: int, state, data):
    """Keras' JAX ``train_step`` with the gradient accumulated over micro-batches."""
    import jax

    trainable, non_trainable, optimizer_vars, metrics_vars = state
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    batch = x.shape[0]
    if batch <= micro:
        return keras.Model.train_step(model, state, data)
    grad_fn = jax.value_and_grad(model.compute_loss_and_updates, has_aux=True)
    full = batch // micro * micro

    def split(a, lo, hi, shape):
        return (
            None if a is None else jax.tree.map(lambda t: t[lo:hi].reshape(shape + t.shape[1:]), a)
        )

    def chunked(a):
        """``a``'s micro-batches stacked, and its remainder (``None`` if there is none)."""
        rest = split(a, full, batch, (batch - full,)) if full < batch else None
        return split(a, 0, full, (full // micro, micro)), rest

    x_chunks, x_rest = chunked(x)
    contrast = next((la for la in model.layers if isinstance(la, ViewContrast)), None)
    code_grads = None
    if contrast is not None and contrast.weight > 0:
        contrast_loss, code_grads, linear = _contrast_code_gradient(
            model, contrast, trainable, non_trainable, x_chunks, x_rest
        )

    def chunk_grads(carry, chunk):
        non_trainable, metrics_vars, total = carry
        cx, cy, cw, cg = chunk
        if contrast is not None:
            # The chunk's loss is a mean over its rows, weighted by its size when its
            # gradient is summed; the contrast gradient (a sum over rows) is scaled to match.
            scaled = None if cg is None else cg * (batch / cx.shape[0])
            object.__setattr__(contrast, "code_grads", scaled)
        try:
            (_, aux), grads = grad_fn(
                trainable, non_trainable, metrics_vars, cx, cy, cw,
                training=True, optimizer_variables=optimizer_vars,
            )  # fmt: skip
        finally:
            if contrast is not None:
                object.__setattr__(contrast, "code_grads", None)
        loss, y_pred, non_trainable, metrics_vars = aux
        # Summed in the carry: stacking every chunk's gradients and summing them after
        # the scan made the whole 28x28 train step about 10% slower.
        total = jax.tree.map(lambda t, g: t + g * cx.shape[0], total, grads)
        return (non_trainable, metrics_vars, total), (loss, y_pred)

    (y_chunks, y_rest), (w_chunks, w_rest), (g_chunks, g_rest) = (
        chunked(a) for a in (y, sample_weight, code_grads)
    )
    chunks = (x_chunks, y_chunks, w_chunks, g_chunks)

    zeros = jax.tree.map(jax.numpy.zeros_like, trainable)
    carry, (losses, y_pred) = jax.lax.scan(
        chunk_grads, (non_trainable, metrics_vars, zeros), chunks
    )
    loss = losses.sum() * micro
    y_pred = jax.tree.map(lambda p: p.reshape((full,) + p.shape[2:]), y_pred)
    if full < batch:  # the batch's remainder, e.g. an epoch's last batch
        rest_n = batch - full
        carry, (rest_loss, rest_pred) = chunk_grads(carry, (x_rest, y_rest, w_rest, g_rest))
        loss = loss + rest_loss * rest_n
        y_pred = jax.tree.map(lambda p, r: jax.numpy.concatenate([p, r]), y_pred, rest_pred)
    non_trainable, metrics_vars, grads = carry
    grads = jax.tree.map(lambda g: g / batch, grads)
    if code_grads is not None:  # the chunks' losses held <grad, code>, not the contrast loss
        loss = loss + (contrast_loss - linear) * batch
    trainable, optimizer_vars = model.optimizer.stateless_apply(optimizer_vars, grads, trainable)
    logs, metrics_vars = model._update_metrics_variables(
        metrics_vars, loss / batch, x, y, y_pred, sample_weight
    )
    return logs, (trainable, non_trainable, optimizer_vars, metrics_vars)


def _contrast_code_gradient(model, contrast, trainable, non_trainable, x_chunks, x_rest):
    """The contrast loss of a whole batch, its gradient ``g`` with respect to each row's
    code ``z`` and ``sum(g * z)`` (what the micro-batches' losses hold instead). The codes
    come from the encoder run over the train step's micro-batches (``x_chunks``, stacked,
    then ``x_rest`` unless ``None``): over the whole batch at once its activations leave
    the cache (17% of the product recipe's step, against 9% this way)."""
    import jax

    encoder = model.get_layer("encoder")
    where = {id(v): i for i, v in enumerate(model.trainable_variables)}
    where_fixed = {id(v): i for i, v in enumerate(model.non_trainable_variables)}
    weights = [trainable[where[id(v)]] for v in encoder.trainable_variables]
    fixed = [non_trainable[where_fixed[id(v)]] for v in encoder.non_trainable_variables]

    def encode(images):
        return encoder.stateless_call(weights, fixed, images, training=True)[0]

    codes = jax.lax.map(encode, x_chunks)
    codes = codes.reshape((-1,) + codes.shape[2:])
    if x_rest is not None:
        codes = jax.numpy.concatenate([codes, encode(x_rest)])
    codes = jax.lax.stop_gradient(codes)
    loss, grads = jax.value_and_grad(contrast.loss_of)(codes)
    return loss, grads, (grads * codes).sum()


def check_depth(depth) -> int:
    """``depth`` (3x3 convolutions per resolution level) as an int >= 1, else a clear error."""
    if isinstance(depth, bool) or not isinstance(depth, int | np.integer) or depth < 1:
        raise RecsysError(f"depth (convolutions per level) must be 1 or more, got {depth!r}")
    return int(depth)


def build_autoencoder(
    input_shape=(28, 28, 1),
    latent_dim: int = DEFAULT_LATENT_DIM,
    filters=DEFAULT_FILTERS,
    loss: str = "bce",
    learning_rate: float = 1e-3,
    colour_hint: bool = False,
    contrast: float = 0.0,
    hog: float = 0.0,
    depth: int = 1,
    decoder_depth: int | None = None,
    decoder_filters=None,
    convolutions: str = "auto",
    teacher: float = 0.0,
    teacher_dim: int = 0,
    schedule: str = "constant",
    total_steps: int | None = None,
) -> keras.Model:
    """A compiled autoencoder with ``encoder`` and ``decoder`` sub-models (Adam).

    Each of ``filters`` is one resolution level: a stride-2 3x3 convolution in the
    encoder, mirrored by a stride-2 transposed one in the decoder. ``depth`` > 1 adds
    ``depth - 1`` stride-1 3x3 convolutions (ReLU) at each level, after the encoder's
    downsampling and before the decoder's upsampling: more non-linearity and a wider
    view per level at the same code size. ``decoder_depth`` sets the decoder's apart (by
    default the same): the code is the encoder's, and the decoder's extra convolutions at
    the larger levels are the step's largest cost.

    ``colour_hint``: the decoder also gets the input's colour histogram
    (:class:`ColourHint`), so that the code can leave colour out. ``contrast`` > 0 adds
    :class:`ViewContrast` with that weight on the code: train it on batches of paired
    views (``recsys_nb.train(contrast=...)`` makes them). ``hog`` > 0 adds, with that
    weight, the distance between the input's and the reconstruction's edge histograms
    (:class:`ShapeLoss`). ``teacher`` > 0 (with ``teacher_dim``) makes a training model
    with a second output: a small head on the code that predicts a teacher network's
    features of the input (distillation: fit it with ``y=(images, features)``), whose
    :func:`cosine_distance` to the teacher's counts with that weight;
    :func:`inference_model` drops the head after training. ``convolutions`` chooses the
    convolution layers (:func:`recsys_nb.layers.conv_kind`: by default the matmul layers
    on a CPU, Keras' stock ones, cuDNN, on a GPU); the weights fit either.
    """
    kind = conv_kind(convolutions)
    height, width, channels = (int(v) for v in input_shape)
    filters = tuple(int(f) for f in filters)
    decoder_filters = tuple(int(f) for f in (decoder_filters or filters))
    scale = 2 ** len(filters)
    if loss not in LOSSES:
        raise RecsysError(f"unknown loss {loss!r}: use one of {', '.join(LOSSES)}")
    if channels not in (1, 3):
        raise RecsysError(f"channels must be 1 (grey) or 3 (RGB), got {channels}")
    depth = check_depth(depth)
    if decoder_depth is not None:
        decoder_depth = check_depth(decoder_depth)
    if len(decoder_filters) != len(filters):
        raise RecsysError(
            f"decoder_filters {decoder_filters} needs one entry per level of filters {filters}"
        )
    if not filters or height % scale or width % scale:
        raise RecsysError(
            f"input {height}x{width} must be divisible by 2**len(filters) = {scale} "
            f"(filters={filters}); pick another image size or fewer filters"
        )

    image = keras.Input((height, width, channels), name="image")
    x = image
    for f in filters:
        x = conv3x3(f, kind, stride=2, activation="relu")(x)
        for _ in range(depth - 1):
            x = conv3x3(f, kind, activation="relu")(x)
    x = layers.Flatten()(x)
    latent = layers.Dense(latent_dim, name="latent")(x)
    encoder = keras.Model(image, latent, name="encoder")

    code = keras.Input((latent_dim,), name="code")
    grid = (height // scale, width // scale, decoder_filters[-1])
    if colour_hint:
        hint_layer = ColourHint(name="colour_hint")
        hint = keras.Input((channels * hint_layer.bins,), name="hint")
        y = layers.Concatenate()([code, hint])
    else:
        y = code
    y = layers.Dense(int(np.prod(grid)), activation="relu")(y)
    y = layers.Reshape(grid)(y)
    for f in reversed(decoder_filters):
        for _ in range((depth if decoder_depth is None else decoder_depth) - 1):
            y = conv3x3(int(y.shape[-1]), kind, activation="relu")(y)
        y = conv3x3(f, kind, transpose=True, activation="relu")(y)
    reconstruction = conv3x3(channels, kind, activation="sigmoid")(y)
    encoded = encoder(image)
    if contrast:
        encoded = ViewContrast(contrast, name="view_contrast")(encoded)
    if colour_hint:
        decoder = keras.Model([code, hint], reconstruction, name="decoder")
        output = decoder([encoded, hint_layer(image)])
    else:
        decoder = keras.Model(code, reconstruction, name="decoder")
        output = decoder(encoded)
    objective = ShapeLoss(loss, hog) if hog else LOSSES[loss]
    optimizer = keras.optimizers.Adam(learning_rate_schedule(learning_rate, schedule, total_steps))
    if teacher:
        hidden = layers.Dense(TEACHER_HIDDEN, activation="relu", name="teacher_hidden")(encoded)
        predicted = layers.Dense(int(teacher_dim), name="teacher")(hidden)
        autoencoder = Autoencoder(image, [output, predicted], name="autoencoder")
        autoencoder.compile(
            optimizer=optimizer,
            loss=[objective, cosine_distance],
            loss_weights=[1.0, float(teacher)],
        )
        return autoencoder
    autoencoder = Autoencoder(image, output, name="autoencoder")
    autoencoder.compile(optimizer=optimizer, loss=objective)
    return autoencoder


def learning_rate_schedule(learning_rate: float, schedule: str, total_steps: int | None):
    """Adam's learning rate: ``"constant"``, or ``"cosine"`` over ``total_steps`` train
    steps (a warm-up from a tenth of it over the first 5%, then a cosine decay to 1%)."""
    if schedule == "constant":
        return learning_rate
    if schedule != "cosine" or not total_steps:
        raise RecsysError(f"schedule {schedule!r} needs total_steps; use constant or cosine")
    warmup = max(1, total_steps // 20)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=learning_rate / 10,
        decay_steps=max(1, total_steps - warmup),
        alpha=0.01,
        warmup_target=learning_rate,
        warmup_steps=warmup,
    )


def inference_model(autoencoder: keras.Model) -> keras.Model:
    """The image -> reconstruction model of a trained autoencoder (the teacher head of a
    distilled one dropped; its encoder and decoder shared, not copied)."""
    if len(autoencoder.outputs) == 1:
        return autoencoder
    return keras.Model(autoencoder.inputs, autoencoder.outputs[0], name="autoencoder")


@dataclass
class TrainedModel:
    """A saved model folder: ``model.keras`` and ``meta.json``."""

    path: Path
    autoencoder: keras.Model
    meta: dict

    @property
    def encoder(self) -> keras.Model:
        return self.autoencoder.get_layer("encoder")

    @property
    def decoder(self) -> keras.Model:
        return self.autoencoder.get_layer("decoder")

    def decode(self, codes, images) -> np.ndarray:
        """Images decoded from latent ``codes``.

        A ``colour_hint`` model's decoder also needs colours: those of ``images`` (one
        image per code, or one image for all codes). Other models ignore ``images``.
        """
        codes = np.asarray(codes, dtype=np.float32)
        if len(self.decoder.inputs) == 1:
            return self.decoder.predict(codes, verbose=0)
        images = np.asarray(images, dtype=np.float32)
        hints = self.autoencoder.get_layer("colour_hint")(images.reshape((-1, *self.input_shape)))
        hints = np.broadcast_to(np.asarray(hints), (len(codes), hints.shape[-1]))
        return self.decoder.predict([codes, hints], verbose=0)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.autoencoder.input_shape[1:])

    @property
    def latent_dim(self) -> int:
        return int(self.encoder.output_shape[-1])

    @property
    def name(self) -> str:
        return self.path.name


def save_model(autoencoder: keras.Model, folder, meta: dict) -> Path:
    """Write ``model.keras`` and ``meta.json`` to ``folder`` (created if needed)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    autoencoder.save(folder / "model.keras")
    write_meta(folder, meta)
    return folder


def write_meta(folder, meta: dict) -> None:
    """Write a model folder's ``meta.json``."""
    (Path(folder) / "meta.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")


def split_settings(meta: dict) -> tuple[float, int]:
    """``(val_fraction, seed)`` of the train/validation split by id a model was trained with."""
    split = meta.get("split", {})
    return split.get("val_fraction", 0.1), split.get("seed", 0)


def load_model(folder) -> TrainedModel:
    """Load a model folder written by :func:`save_model` / :func:`recsys_nb.train`, or a
    model by name from the models folder (``"products"``: ``<home>/models/products``).

    ``"cnn"`` is the pretrained EfficientNet-Lite0 (:class:`recsys_nb.cnn.PretrainedCNN`)."""
    if isinstance(folder, TrainedModel):
        return folder
    if isinstance(folder, str) and folder == "cnn":  # the pretrained CNN, not a folder
        from .cnn import load_cnn

        return load_cnn()
    folder = Path(folder)
    if not folder.is_dir() and len(folder.parts) == 1:
        folder = settings.model_dir(folder.name)
    files = [folder / "model.keras", folder / "meta.json"]
    if not all(f.is_file() for f in files):
        raise RecsysError(
            f"{folder} is not a model folder (it needs model.keras and meta.json); "
            "train one with `recsys-nb train` or `make demo`"
        )
    try:
        autoencoder = keras.saving.load_model(files[0], compile=False)
        meta = json.loads(files[1].read_text())
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RecsysError(f"cannot load the model in {folder}: {exc}") from exc
    return TrainedModel(folder, autoencoder, meta)
