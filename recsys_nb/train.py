"""Stage 3, train: fit an autoencoder on a dataset and save it under ``models/<name>/``.

Seeded, with a validation split by id, EarlyStopping, a checkpoint after every
epoch (a run that is interrupted resumes from it) and a quick mode for tests and
notebook runs in CI (``quick=True`` or ``RECSYS_NB_QUICK=1``).
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import subprocess
import uuid
from pathlib import Path

import keras
import numpy as np

from . import __version__, settings
from .augment import INPUT_ONLY_AUGMENTATIONS, augment_images
from .data import (
    PRODUCT_IMAGE_SIZE,
    Dataset,
    load_catalog,
    load_dataset,
    load_fashion_mnist,
)
from .embed import fit_latent_transform, l2_normalize
from .errors import RecsysError
from .model import (
    DEFAULT_FILTERS,
    TrainedModel,
    build_autoencoder,
    inference_model,
    load_model,
    save_model,
    split_settings,
    write_meta,
)
from .recipe import Recipe, check_whiten

PRODUCT_FILTERS = (32, 64, 128)
QUICK_TRAIN, QUICK_VAL = 2048, 512


def quick_mode(quick: bool | None = None) -> bool:
    """``quick`` if given, else whether ``RECSYS_NB_QUICK`` is set to 1/true/yes."""
    return settings.quick(quick)


def model_dir(name) -> Path:
    """``<home>/models/<name>`` (see :mod:`recsys_nb.settings`); a name with a slash is a path."""
    return settings.model_dir(name)


def trained_with(meta: dict, recipe, quick: bool) -> bool:
    """Whether a model's ``meta.json`` records training with ``recipe``: a :class:`Recipe`
    (every field that decides the model) or a dict of some of its fields (those, and the
    epochs); see :meth:`Recipe.matches`."""
    if isinstance(recipe, Recipe):
        return recipe.matches(meta, quick)
    return Recipe(**recipe).matches(meta, quick, only={*recipe, "epochs"})


class _Augmented(keras.utils.PyDataset):
    """Shuffled batches of freshly augmented images.

    The target is the augmented image without the input-only kinds ("tone", "mask"):
    flips and shifts are reconstructed as they are, tones and masked blocks are undone.
    With ``views=2`` a batch holds ``batch_size // 2`` items twice, as two independent
    augmentations: first views in the first half, second views in the second (the
    layout :class:`recsys_nb.model.ViewContrast` expects).
    """

    def __init__(
        self, images: np.ndarray, batch_size: int, kinds, seed: int, views: int = 1, extra=None
    ):
        super().__init__()
        self.views, self.extra = views, extra
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
        inputs = augment_images(target, self.input_kinds, self.rng) if self.input_kinds else target
        if self.extra is None:
            return inputs, target
        return inputs, (target, self.extra[rows])

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


def train(
    dataset: str | Recipe | None = None,
    name: str | None = None,
    *,
    recipe: Recipe | None = None,
    quick: bool | None = None,
    resume: bool = True,
    verbose="auto",
    data: Dataset | None = None,
    callbacks: list | None = None,
    **options,
) -> TrainedModel:
    """Train an autoencoder with a :class:`Recipe`; save it as ``models/<name>/model.keras``.

    ``train(Recipe(...), name)``, ``train(dataset, name, recipe=...)`` or the recipe's
    fields as keywords: ``train("products", epochs=8, hog=300.0)``. ``dataset`` is
    ``"fashion-mnist"``, ``"products"`` (the shared catalogue) or a catalogue folder;
    ``data`` passes an already loaded :class:`Dataset` instead. The validation split is
    made by id (:func:`recsys_nb.data.is_validation`), so the same items stay out of
    training in every run. With ``resume`` an interrupted run of the same name continues
    from its last epoch. Extra Keras ``callbacks`` (a live plot in a notebook, say) run
    after the project's own. The recipe, with its defaults resolved, is saved under
    ``meta["recipe"]``; what each field does is in :class:`Recipe` (augmentations, the
    colour hint, the view-contrast and HOG loss terms, depth, the latent transform).
    No labels are used.
    """
    recipe = _as_recipe(dataset, recipe, options)
    quick = quick_mode(quick)
    is_mnist = recipe.dataset == "fashion-mnist"
    folder = model_dir(name or ("fashion-mnist" if is_mnist else "products"))
    if data is None:
        data = _load(recipe)
    recipe = resolve_recipe(recipe, data, quick)
    train_set, val_set = data.split(recipe.val_fraction, recipe.seed)
    if quick:
        train_set = train_set.subset(slice(0, QUICK_TRAIN))
        val_set = val_set.subset(slice(0, QUICK_VAL))
    if len(train_set) == 0 or len(val_set) == 0:
        raise RecsysError(
            f"{data.name} has {len(data)} images: too few for a train/validation split"
        )

    teacher = _teacher_targets(recipe, train_set, val_set)
    keras.utils.set_random_seed(recipe.seed)
    config = _model_config(recipe, data, teacher, len(train_set))
    folder.mkdir(parents=True, exist_ok=True)
    autoencoder, initial_epoch, history = _build_or_resume(folder, config, recipe, resume)
    callbacks = [
        keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=recipe.patience, restore_best_weights=True
        ),
        keras.callbacks.ModelCheckpoint(folder / "checkpoint.keras"),
        _TrainingState(folder, history, config),
        *(callbacks or []),
    ]
    started = dt.datetime.now(dt.UTC)
    val_target = val_set.images if teacher is None else (val_set.images, teacher[1])
    autoencoder.fit(
        **_fit_inputs(recipe, train_set, initial_epoch, teacher),
        validation_data=(val_set.images, val_target),
        epochs=recipe.epochs,
        initial_epoch=initial_epoch,
        callbacks=callbacks,
        verbose=verbose,
    )
    meta = _meta(recipe, folder, data, train_set, val_set, history, quick, started)
    if recipe.whiten is not None:
        codes = autoencoder.get_layer("encoder").predict(
            train_set.images, batch_size=1024, verbose=0
        )
        meta["latent_transform"] = fit_latent_transform(codes, recipe.whiten)
    save_model(inference_model(autoencoder), folder, meta)
    for leftover in ("checkpoint.keras", "checkpoint.json", "embeddings.npz"):
        (folder / leftover).unlink(missing_ok=True)
    return load_model(folder)


def resolve_recipe(recipe: Recipe, data: Dataset, quick: bool = False) -> Recipe:
    """``recipe`` with what ``data`` decides filled in: epochs (quick mode's or the
    recipe's), filters (the default for the image size), channels and image size."""
    filters = recipe.filters or (DEFAULT_FILTERS if data.images.shape[1] <= 32 else PRODUCT_FILTERS)
    return recipe.replace(
        epochs=recipe.resolved_epochs(quick),
        filters=filters,
        channels=int(data.images.shape[-1]),
        image_size=None if data.name == "fashion-mnist" else tuple(data.images.shape[1:3]),
    )


def _as_recipe(dataset, recipe: Recipe | None, options: dict) -> Recipe:
    if isinstance(dataset, Recipe):
        recipe, dataset = dataset, None
    recipe = recipe or Recipe()
    if dataset is not None:
        options = {"dataset": str(dataset), **options}
    unknown = sorted(set(options) - set(Recipe.__dataclass_fields__))
    if unknown:
        raise RecsysError(
            f"train() got unknown option(s) {', '.join(unknown)}: the recipe's fields are "
            f"{', '.join(Recipe.__dataclass_fields__)}"
        )
    return recipe.replace(**options)


def _load(recipe: Recipe) -> Dataset:
    if recipe.dataset == "fashion-mnist":
        return load_dataset(recipe.dataset, split="train")
    size = tuple(recipe.image_size or PRODUCT_IMAGE_SIZE)
    return load_dataset(recipe.dataset, size=size, channels=recipe.channels or 3)


def _teacher_targets(recipe: Recipe, train_set: Dataset, val_set: Dataset):
    """The teacher's features (L2-normalised) of the training and validation images, or
    ``None`` without a teacher term: EfficientNet-Lite0's pooled features
    (:func:`recsys_nb.cnn.dataset_features`, cached per item) of the items the model
    sees, on grey input for a grey model so that colour stays out of the code."""
    if not recipe.teacher:
        return None
    from .cnn import dataset_features

    colour = "grey" if train_set.images.shape[-1] == 1 else "rgb"
    return tuple(
        l2_normalize(dataset_features(part, colour=colour)) for part in (train_set, val_set)
    )


def _model_config(recipe: Recipe, data: Dataset, teacher=None, n_train: int = 0) -> dict:
    """The architecture and losses: :func:`build_autoencoder`'s arguments plus ``augment``
    (a resumed checkpoint must have been trained with the very same)."""
    config = {
        "input_shape": list(data.images.shape[1:]),
        "latent_dim": recipe.latent_dim,
        "filters": list(recipe.filters),
        "loss": recipe.loss,
        "learning_rate": recipe.learning_rate,
    }
    optional = {
        "colour_hint": recipe.colour_hint,
        "augment": list(recipe.augment),
        "contrast": recipe.contrast,
        "hog": recipe.hog,
        "depth": recipe.depth if recipe.depth != 1 else None,
        "decoder_depth": recipe.decoder_depth,
        "decoder_filters": list(recipe.decoder_filters or ()),
        "teacher": recipe.teacher,
        "teacher_dim": None if teacher is None else int(teacher[0].shape[1]),
        "schedule": None if recipe.schedule == "constant" else recipe.schedule,
    }
    if recipe.schedule != "constant":  # the schedule runs over every step of the run
        per_batch = recipe.batch_size // (2 if recipe.contrast else 1)
        optional["total_steps"] = -(-n_train // per_batch) * recipe.epochs
    config.update({k: v for k, v in optional.items() if v})
    return config


def _build_args(config: dict) -> dict:
    """:func:`build_autoencoder`'s arguments from a :func:`_model_config` (all of it but
    ``augment``, which is the data's side)."""
    return {k: v for k, v in config.items() if k != "augment"}


def _build_or_resume(folder: Path, config: dict, recipe: Recipe, resume: bool):
    """The model to fit, the epoch to start from and the history so far."""
    state_file = folder / "checkpoint.json"
    if resume and state_file.is_file() and (folder / "checkpoint.keras").is_file():
        state = json.loads(state_file.read_text())
        if state.get("config") == config and state["epoch"] < recipe.epochs:
            print(f"resuming {folder} from epoch {state['epoch']}")
            model = keras.saving.load_model(folder / "checkpoint.keras")
            return model, state["epoch"], state["history"]
    model = build_autoencoder(**_build_args(config))
    return model, 0, {}


def _fit_inputs(recipe: Recipe, train_set: Dataset, initial_epoch: int, teacher=None) -> dict:
    extra = None if teacher is None else teacher[0]
    if recipe.augment:
        views = 2 if recipe.contrast else 1
        seed = recipe.seed + initial_epoch
        batches = _Augmented(
            train_set.images, recipe.batch_size, recipe.augment, seed, views, extra
        )
        return {"x": batches}
    return {
        "x": train_set.images,
        "y": train_set.images if extra is None else (train_set.images, extra),
        "batch_size": recipe.batch_size,
        "shuffle": True,
    }


def _meta(recipe, folder, data, train_set, val_set, history, quick, started) -> dict:
    """``meta.json``: the recipe, and the flat keys derived from it that tools read."""
    best = int(np.argmin(history["val_loss"]))
    return {
        "model_id": f"{folder.name}-{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}",
        "name": folder.name,
        "dataset": data.name,
        "source": data.source,
        "recipe": recipe.to_dict(),
        "split": {"by": "id", "val_fraction": recipe.val_fraction, "seed": recipe.seed},
        "n_train": len(train_set),
        "n_val": len(val_set),
        "quick": quick,
        "input_shape": list(data.images.shape[1:]),
        "preprocessing": data.preprocessing,
        "latent_dim": recipe.latent_dim,
        "filters": list(recipe.filters),
        "loss": recipe.loss,
        "optimizer": {
            "name": "adam",
            "learning_rate": recipe.learning_rate,
            "schedule": recipe.schedule,
        },
        "batch_size": recipe.batch_size,
        "requested_epochs": recipe.epochs,
        "epochs": len(history["loss"]),
        "best_epoch": best + 1,
        "train_loss": history["loss"][best],
        "val_loss": history["val_loss"][best],
        "history": history,
        "augment": list(recipe.augment),
        "colour_hint": recipe.colour_hint,
        "contrast": recipe.contrast,
        "hog": recipe.hog,
        "teacher": recipe.teacher,
        "depth": recipe.depth,
        "decoder_depth": recipe.decoder_depth,
        "decoder_filters": None if recipe.decoder_filters is None else list(recipe.decoder_filters),
        "versions": _versions(),
        "git_commit": _git_commit(),
        "trained_at": started.isoformat(timespec="seconds"),
        "train_seconds": round((dt.datetime.now(dt.UTC) - started).total_seconds(), 1),
    }


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
    check_whiten(whiten)
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
