"""Stage 3, train: fit an autoencoder on a dataset and save it under ``models/<name>/``.

Seeded, with a validation split by id, EarlyStopping, a checkpoint after every
epoch (a run that is interrupted resumes from it) and a quick mode for tests and
notebook runs in CI (``quick=True`` or ``RECSYS_NB_QUICK=1``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import uuid
from pathlib import Path

import keras
import numpy as np

from . import __version__, settings
from .data import (
    INPUT_ONLY_AUGMENTATIONS,
    PRODUCT_IMAGE_SIZE,
    Dataset,
    augment_images,
    load_catalog,
    load_dataset,
    load_fashion_mnist,
)
from .embed import fit_latent_transform
from .errors import RecsysError
from .model import (
    DEFAULT_FILTERS,
    TrainedModel,
    build_autoencoder,
    check_depth,
    load_model,
    save_model,
    split_settings,
    write_meta,
)

PRODUCT_FILTERS = (32, 64, 128)
QUICK_TRAIN, QUICK_VAL, QUICK_EPOCHS = 2048, 512, 2


def quick_mode(quick: bool | None = None) -> bool:
    """``quick`` if given, else whether ``RECSYS_NB_QUICK`` is set to 1/true/yes."""
    return settings.quick(quick)


def model_dir(name) -> Path:
    """``<home>/models/<name>`` (see :mod:`recsys_nb.settings`); a name with a slash is a path."""
    name = str(name)
    if "/" in name or os.sep in name:
        return Path(name)
    return settings.models_dir() / name


def trained_with(meta: dict, spec: dict, quick: bool) -> bool:
    """Whether a model's ``meta.json`` records training with ``spec`` (``train()`` arguments).

    Compares what decides the model: channels, filters (when ``spec`` names them),
    augmentations, colour hint, view contrast, HOG weight, depth, pixel loss, latent
    transform, quick mode and (for full runs) the requested epochs.
    """
    channels = meta.get("input_shape", [0])[-1]
    filters = spec.get("filters")
    return (
        spec.get("channels", channels) == channels
        and (filters is None or [int(f) for f in filters] == meta.get("filters"))
        and (meta.get("latent_transform") or {}).get("whiten") == spec.get("whiten")
        and meta.get("augment", []) == [a for a in spec.get("augment", "").split(",") if a]
        and bool(meta.get("colour_hint")) == bool(spec.get("colour_hint"))
        and all(float(meta.get(k) or 0) == float(spec.get(k) or 0) for k in ("contrast", "hog"))
        and meta.get("depth", 1) == spec.get("depth", 1)
        and meta.get("loss", "bce") == spec.get("loss", "bce")
        and bool(meta.get("quick")) == quick
        and (quick or meta.get("requested_epochs") == spec["epochs"])
    )


class _Augmented(keras.utils.PyDataset):
    """Shuffled batches of freshly augmented images.

    The target is the augmented image without the input-only kinds ("tone", "mask"):
    flips and shifts are reconstructed as they are, tones and masked blocks are undone.
    With ``views=2`` a batch holds ``batch_size // 2`` items twice, as two independent
    augmentations: first views in the first half, second views in the second (the
    layout :class:`recsys_nb.model.ViewContrast` expects).
    """

    def __init__(self, images: np.ndarray, batch_size: int, kinds, seed: int, views: int = 1):
        super().__init__()
        self.views = views
        self.images, self.batch_size = images, max(1, batch_size // views)
        self.target_kinds = [k for k in kinds if k not in INPUT_ONLY_AUGMENTATIONS]
        self.input_kinds = [k for k in kinds if k in INPUT_ONLY_AUGMENTATIONS]
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(images))

    def __len__(self) -> int:
        return -(-len(self.images) // self.batch_size)

    def __getitem__(self, index):
        rows = np.sort(self.order[index * self.batch_size : (index + 1) * self.batch_size])
        rows = np.tile(rows, self.views)
        target = augment_images(self.images[rows], self.target_kinds, self.rng)
        if not self.input_kinds:
            return target, target
        return augment_images(target, self.input_kinds, self.rng), target

    def on_epoch_end(self):
        self.order = self.rng.permutation(len(self.images))


class _TrainingState(keras.callbacks.Callback):
    """Records the epoch reached and the history beside ModelCheckpoint's file, for resuming."""

    def __init__(self, folder: Path, history: dict, config: dict):
        super().__init__()
        self.folder, self.history, self.config = folder, history, config

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        state = {"epoch": epoch + 1, "history": self.history, "config": self.config}
        (self.folder / "checkpoint.json").write_text(json.dumps(state))


def _check_whiten(whiten: float | None) -> None:
    if whiten is not None and not 0.0 <= whiten <= 1.0:
        raise RecsysError(f"whiten must be between 0 and 1, got {whiten}")


def _loss_weight(name: str, value) -> float:
    """An extra loss term's weight as a float: 0 (off) or positive, else a clear error."""
    value = float(value or 0.0)
    if not value >= 0:  # NaN too
        raise RecsysError(f"{name} must be 0 (off) or a positive weight, got {value}")
    return value


def train(
    dataset="fashion-mnist",
    name: str | None = None,
    *,
    epochs: int | None = None,
    batch_size: int = 256,
    latent_dim: int = 32,
    filters=None,
    loss: str = "bce",
    channels: int | None = None,
    image_size=None,
    learning_rate: float = 1e-3,
    val_fraction: float = 0.1,
    patience: int = 3,
    seed: int = 0,
    quick: bool | None = None,
    resume: bool = True,
    verbose="auto",
    data: Dataset | None = None,
    callbacks: list | None = None,
    augment=(),
    whiten: float | None = None,
    colour_hint: bool = False,
    contrast: float = 0.0,
    hog: float = 0.0,
    depth: int = 1,
) -> TrainedModel:
    """Train an autoencoder and save it as ``models/<name>/model.keras`` + ``meta.json``.

    ``dataset`` is ``"fashion-mnist"``, ``"products"`` (the shared catalogue) or a
    catalogue folder; ``data`` passes an already loaded :class:`Dataset` instead. The
    validation split is made by id (:func:`recsys_nb.data.is_validation`), so the
    same items stay out of training in every run. With ``resume`` an interrupted run
    of the same name continues from its last epoch. Extra Keras ``callbacks`` (a live
    plot in a notebook, say) run after the project's own.

    ``augment`` (``"flip"``, ``"shift"``, ``"tone"``, ``"mask"``; see
    :func:`recsys_nb.data.augment_images`) trains on randomly changed copies of the images,
    drawn anew each epoch; ``"tone"`` and ``"mask"`` change only the input, so the model
    learns to rebuild the original from it. ``colour_hint`` gives the decoder the
    input's colour histogram besides the code (:class:`recsys_nb.model.ColourHint`), so
    the code, the embedding, need not carry colour. ``contrast`` > 0 trains on two
    augmented views of each item per batch and adds, with that weight, a contrastive loss
    that pulls the two views' codes together and pushes other items' apart
    (:class:`recsys_nb.model.ViewContrast`); it needs ``augment`` to make the views.
    ``hog`` > 0 adds, with that weight, the distance between the edge histograms (HOG)
    of the target and of the reconstruction (:class:`recsys_nb.model.ShapeLoss`): the
    code has to keep outlines and inner edges, not only the large areas of tone.
    ``depth`` is the number of 3x3 convolutions per resolution level (see
    :func:`recsys_nb.model.build_autoencoder`).
    ``whiten`` fits a latent transform on the training images' codes after training
    (0: centre on their mean, 1: full whitening, between: partial), kept in
    ``meta.json`` and applied by :func:`recsys_nb.embed.embed` to every embedding.
    No labels are used either way.
    """
    quick = quick_mode(quick)
    is_mnist = dataset == "fashion-mnist"
    name = name or ("fashion-mnist" if is_mnist else "products")
    folder = model_dir(name)
    if data is None:
        size = tuple(image_size or PRODUCT_IMAGE_SIZE)
        kwargs = {} if is_mnist else {"size": size, "channels": channels or 3}
        data = load_dataset(dataset, split="train" if is_mnist else None, **kwargs)
    if filters is None:
        filters = DEFAULT_FILTERS if data.images.shape[1] <= 32 else PRODUCT_FILTERS
    if epochs is None:
        epochs = QUICK_EPOCHS if quick else 20
    if epochs < 1:
        raise RecsysError(f"epochs must be at least 1, got {epochs}")
    if isinstance(augment, str):
        augment = [a for a in augment.split(",") if a]
    augment = tuple(augment or ())
    augment_images(data.images[:1], augment, np.random.default_rng(0))  # check the names
    contrast = _loss_weight("contrast", contrast)
    if contrast and not augment:
        raise RecsysError(
            "contrast compares two augmented views of each image: give augment too, "
            "e.g. augment='flip,shift,tone' (--augment flip,shift,tone), as make demo does"
        )
    hog = _loss_weight("hog", hog)
    depth = check_depth(depth)
    _check_whiten(whiten)

    train_set, val_set = data.split(val_fraction, seed)
    if quick:
        train_set = train_set.subset(slice(0, QUICK_TRAIN))
        val_set = val_set.subset(slice(0, QUICK_VAL))
    if len(train_set) == 0 or len(val_set) == 0:
        raise RecsysError(
            f"{data.name} has {len(data)} images: too few for a train/validation split"
        )

    keras.utils.set_random_seed(seed)
    config = {
        "input_shape": list(data.images.shape[1:]),
        "latent_dim": latent_dim,
        "filters": list(filters),
        "loss": loss,
        "learning_rate": learning_rate,
    }
    if colour_hint:
        config["colour_hint"] = True
    if augment:
        config["augment"] = list(augment)
    if contrast:
        config["contrast"] = contrast
    if hog:
        config["hog"] = hog
    if depth != 1:
        config["depth"] = depth
    folder.mkdir(parents=True, exist_ok=True)
    history: dict = {}
    initial_epoch = 0
    state_file = folder / "checkpoint.json"
    if resume and state_file.is_file() and (folder / "checkpoint.keras").is_file():
        state = json.loads(state_file.read_text())
        if state.get("config") == config and state["epoch"] < epochs:
            autoencoder = keras.saving.load_model(folder / "checkpoint.keras")
            initial_epoch, history = state["epoch"], state["history"]
            print(f"resuming {folder} from epoch {initial_epoch}")
    if initial_epoch == 0:
        autoencoder = build_autoencoder(**{k: v for k, v in config.items() if k != "augment"})

    callbacks = [
        keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=patience, restore_best_weights=True
        ),
        keras.callbacks.ModelCheckpoint(folder / "checkpoint.keras"),
        _TrainingState(folder, history, config),
        *(callbacks or []),
    ]
    started = dt.datetime.now(dt.UTC)
    if augment:
        views = 2 if contrast else 1
        batches = _Augmented(train_set.images, batch_size, augment, seed + initial_epoch, views)
        fit_args = {"x": batches}
    else:
        fit_args = {
            "x": train_set.images,
            "y": train_set.images,
            "batch_size": batch_size,
            "shuffle": True,
        }
    autoencoder.fit(
        **fit_args,
        validation_data=(val_set.images, val_set.images),
        epochs=epochs,
        initial_epoch=initial_epoch,
        callbacks=callbacks,
        verbose=verbose,
    )

    best = int(np.argmin(history["val_loss"]))
    meta = {
        "model_id": f"{name}-{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}",
        "name": folder.name,
        "dataset": data.name,
        "source": data.source,
        "split": {"by": "id", "val_fraction": val_fraction, "seed": seed},
        "n_train": len(train_set),
        "n_val": len(val_set),
        "quick": quick,
        "input_shape": config["input_shape"],
        "preprocessing": data.preprocessing,
        "latent_dim": latent_dim,
        "filters": list(filters),
        "loss": loss,
        "optimizer": {"name": "adam", "learning_rate": learning_rate},
        "batch_size": batch_size,
        "requested_epochs": epochs,
        "epochs": len(history["loss"]),
        "best_epoch": best + 1,
        "train_loss": history["loss"][best],
        "val_loss": history["val_loss"][best],
        "history": history,
        "augment": list(augment),
        "colour_hint": bool(colour_hint),
        "contrast": contrast,
        "hog": hog,
        "depth": depth,
        "versions": _versions(),
        "git_commit": _git_commit(),
        "trained_at": started.isoformat(timespec="seconds"),
        "train_seconds": round((dt.datetime.now(dt.UTC) - started).total_seconds(), 1),
    }
    if whiten is not None:
        codes = autoencoder.get_layer("encoder").predict(
            train_set.images, batch_size=1024, verbose=0
        )
        meta["latent_transform"] = fit_latent_transform(codes, whiten)
    save_model(autoencoder, folder, meta)
    for leftover in ("checkpoint.keras", "checkpoint.json", "embeddings.npz"):
        (folder / leftover).unlink(missing_ok=True)
    return load_model(folder)


def training_images(meta: dict) -> np.ndarray:
    """A trained model's training split (by id, as it was trained on), from ``meta.json``."""
    if meta.get("dataset") == "fashion-mnist":
        data = load_fashion_mnist("train")
    else:
        height, width, channels = meta["input_shape"]
        data = load_catalog(meta["source"], size=(height, width), channels=channels)
    train_part, _ = data.split(*split_settings(meta))
    return train_part.images[: meta["n_train"]]


def refit_latent_transform(model, whiten: float | None) -> TrainedModel:
    """Fit a saved model's latent transform again, with another ``whiten``, no retraining.

    The same fit as ``train(whiten=...)``: on the codes of the model's training split.
    ``None`` removes the transform. The catalogue embeddings saved beside the model
    (``embeddings.npz``) no longer fit and are removed: embed again after this.
    """
    model = load_model(model)
    _check_whiten(whiten)
    meta = {k: v for k, v in model.meta.items() if k != "latent_transform"}
    if whiten is not None:
        codes = model.encoder.predict(training_images(meta), batch_size=1024, verbose=0)
        meta["latent_transform"] = fit_latent_transform(codes, whiten)
    write_meta(model.path, meta)
    (model.path / "embeddings.npz").unlink(missing_ok=True)
    return load_model(model.path)


def _versions() -> dict:
    import jax

    return {
        "recsys_nb": __version__,
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "jax": jax.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def _git_commit() -> str | None:
    checkout = settings.source_checkout()
    if checkout is None:
        return None
    try:
        out = subprocess.run(
            ["git", "-C", str(checkout), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
