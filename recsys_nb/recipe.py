"""One record of a training recipe: what decides a trained model, in one frozen dataclass.

Everything else is derived from :class:`Recipe`: the arguments of
:func:`recsys_nb.train` (its keyword options are the fields), the ``recipe`` entry of
``meta.json`` (and the flat keys older tools read), :meth:`Recipe.matches` (whether a
saved model was trained with it), the ``recsys-nb train`` flags (:func:`add_arguments`,
:meth:`Recipe.command`), ``make demo``'s reference recipes and the variants of
``benchmarks/retrieval.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import dataclass, field, fields

from .augment import AUGMENTATIONS
from .errors import RecsysError
from .model import check_depth

LOSS_NAMES = ("bce", "mse")
SCHEDULES = ("constant", "cosine")
DEFAULT_EPOCHS = 20
QUICK_EPOCHS = 2


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in str(text).split(",") if v)


def _opt(help: str, flag_type=None, **cli):
    """Field metadata: the ``recsys-nb train`` flag's help text and argparse options."""
    return {"help": help, "type": flag_type, "cli": cli}


@dataclass(frozen=True)
class Recipe:
    """How an autoencoder is trained. Fields left ``None`` take the dataset's default."""

    dataset: str = field(
        default="fashion-mnist",
        metadata=_opt("fashion-mnist, products or a catalogue folder", str),
    )
    epochs: int | None = field(
        default=None, metadata=_opt(f"epochs (default {DEFAULT_EPOCHS}; quick mode 2)", int)
    )
    batch_size: int = field(default=256, metadata=_opt("images per batch", int))
    latent_dim: int = field(default=32, metadata=_opt("size of the code (the embedding)", int))
    filters: tuple[int, ...] | None = field(
        default=None,
        metadata=_opt("channels per resolution level, e.g. 32,64,128", _ints, metavar="N,N"),
    )
    depth: int = field(
        default=1,
        metadata=_opt("3x3 convolutions per resolution level (2 adds a stride-1 one)", int),
    )
    decoder_depth: int | None = field(
        default=None,
        metadata=_opt("the decoder's convolutions per level (default: --depth)", int),
    )
    decoder_filters: tuple[int, ...] | None = field(
        default=None,
        metadata=_opt(
            "the decoder's channels per level, e.g. 16,32,64 (default: --filters): a "
            "lighter decoder trains faster, the code is the encoder's",
            _ints,
            metavar="N,N",
        ),
    )
    loss: str = field(default="bce", metadata=_opt("pixel loss", str, choices=list(LOSS_NAMES)))
    channels: int | None = field(
        default=None,
        metadata=_opt("3 = RGB (default for catalogues), 1 = grey", int, choices=[1, 3]),
    )
    image_size: tuple[int, ...] | None = field(
        default=None,
        metadata=_opt("height,width of catalogue images (default 64,48)", _ints, metavar="H,W"),
    )
    learning_rate: float = field(default=1e-3, metadata=_opt("Adam's learning rate", float))
    schedule: str = field(
        default="constant",
        metadata=_opt(
            "learning rate over the run: constant, or cosine (a short warm-up to the "
            "learning rate, then a cosine decay to 1% of it by the last epoch)",
            str,
            choices=list(SCHEDULES),
        ),
    )
    val_fraction: float = field(
        default=0.1, metadata=_opt("share of items held out for validation, by id", float)
    )
    patience: int = field(
        default=3, metadata=_opt("epochs without a better val loss before stopping", int)
    )
    seed: int = field(default=0, metadata=_opt("seed of the split, weights and batches", int))
    augment: tuple[str, ...] = field(
        default=(),
        metadata=_opt(
            "train on random copies: flip, shift, crop, tone, mask (the last two change "
            "the input only), comma-separated; no labels are used",
            lambda s: tuple(a for a in s.split(",") if a),
            metavar="KINDS",
        ),
    )
    colour_hint: bool = field(
        default=False,
        metadata=_opt(
            "give the decoder the image's colour histogram, so the code can leave colour out"
        ),
    )
    contrast: float = field(
        default=0.0,
        metadata=_opt(
            "also pull two augmented views of each image together in the code (a "
            "contrastive loss with this weight, e.g. 0.1; needs --augment)",
            float,
            metavar="WEIGHT",
        ),
    )
    hog: float = field(
        default=0.0,
        metadata=_opt(
            "also compare the edges of input and reconstruction (histograms of oriented "
            "gradients) with this weight, e.g. 300 as make demo does: the code has to keep "
            "the outlines",
            float,
            metavar="WEIGHT",
        ),
    )
    teacher: float = field(
        default=0.0,
        metadata=_opt(
            "also train a small head on the code to predict the pretrained CNN's features "
            "of the input (distillation, with this weight; grey input keeps colour out)",
            float,
            metavar="WEIGHT",
        ),
    )
    whiten: float | None = field(
        default=None,
        metadata=_opt(
            "centre (0) / whiten (1) the codes on the training split; applied at every embed",
            float,
            metavar="ALPHA",
        ),
    )

    def __post_init__(self):
        set_ = object.__setattr__
        augment = self.augment
        if isinstance(augment, str):
            augment = augment.split(",")
        set_(self, "augment", tuple(a for a in (augment or ()) if a))
        for name in ("filters", "decoder_filters", "image_size"):
            value = getattr(self, name)
            if value is not None:
                set_(self, name, _ints(value) if isinstance(value, str) else tuple(value))
        set_(self, "contrast", _weight("contrast", self.contrast))
        set_(self, "hog", _weight("hog", self.hog))
        set_(self, "teacher", _weight("teacher", self.teacher))
        set_(self, "colour_hint", bool(self.colour_hint))
        if self.epochs is not None and self.epochs < 1:
            raise RecsysError(f"epochs must be at least 1, got {self.epochs}")
        if self.schedule not in SCHEDULES:
            raise RecsysError(
                f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}"
            )
        if self.loss not in LOSS_NAMES:
            raise RecsysError(f"loss must be one of {', '.join(LOSS_NAMES)}, got {self.loss!r}")
        set_(self, "depth", check_depth(self.depth))
        if self.decoder_depth is not None:
            set_(self, "decoder_depth", check_depth(self.decoder_depth))
        check_whiten(self.whiten)
        unknown = sorted(set(self.augment) - set(AUGMENTATIONS))
        if unknown:
            raise RecsysError(
                f"unknown augmentation(s) {', '.join(unknown)}: use {', '.join(AUGMENTATIONS)}"
            )
        if self.contrast and not self.augment:
            raise RecsysError(
                "contrast compares two augmented views of each image: give augment too, "
                "e.g. augment='flip,shift,tone' (--augment flip,shift,tone), as make demo does"
            )

    def replace(self, **changes) -> Recipe:
        """A copy with some fields changed (checked like a new recipe)."""
        return dataclasses.replace(self, **changes)

    def resolved_epochs(self, quick: bool) -> int:
        """The epochs a run trains for: the recipe's, else 2 in quick mode and 20 otherwise."""
        if self.epochs is not None:
            return self.epochs
        return QUICK_EPOCHS if quick else DEFAULT_EPOCHS

    def to_dict(self) -> dict:
        """JSON-ready fields (tuples as lists), as stored under ``meta["recipe"]``."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, values: dict) -> Recipe:
        """The recipe of a ``meta["recipe"]`` dict; unknown keys are a clear error."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise RecsysError(
                f"unknown recipe fields {', '.join(unknown)}; known: {', '.join(sorted(names))}"
            )
        return cls(**values)

    @classmethod
    def from_meta(cls, meta: dict) -> Recipe:
        """The recipe a saved model was trained with (rebuilt from flat keys for old models)."""
        if "recipe" in meta:
            return cls.from_dict(meta["recipe"])
        split = meta.get("split", {})
        height, width, channels = (meta.get("input_shape") or [None, None, None])[-3:]
        return cls(
            dataset=meta.get("dataset", "fashion-mnist"),
            epochs=meta.get("requested_epochs"),
            batch_size=meta.get("batch_size", 256),
            latent_dim=meta.get("latent_dim", 32),
            filters=meta.get("filters"),
            depth=meta.get("depth", 1),
            decoder_depth=meta.get("decoder_depth"),
            decoder_filters=meta.get("decoder_filters"),
            loss=meta.get("loss", "bce"),
            channels=channels,
            image_size=None if meta.get("dataset") == "fashion-mnist" else (height, width),
            learning_rate=(meta.get("optimizer") or {}).get("learning_rate", 1e-3),
            schedule=(meta.get("optimizer") or {}).get("schedule", "constant"),
            val_fraction=split.get("val_fraction", 0.1),
            seed=split.get("seed", 0),
            augment=tuple(meta.get("augment") or ()),
            colour_hint=bool(meta.get("colour_hint")),
            contrast=meta.get("contrast") or 0.0,
            hog=meta.get("hog") or 0.0,
            teacher=meta.get("teacher") or 0.0,
            whiten=(meta.get("latent_transform") or {}).get("whiten"),
        )

    def matches(self, meta: dict, quick: bool, only=None) -> bool:
        """Whether a model's ``meta.json`` records training with this recipe.

        Compares what decides the model (``only``: just these fields); fields this recipe
        leaves ``None`` (filters, channels, image size) take whatever the model has, and
        quick runs ignore epochs.
        """
        if bool(meta.get("quick")) != quick:
            return False
        saved = Recipe.from_meta(meta)
        for f in fields(self):
            if f.name in ("dataset", "patience") or (only is not None and f.name not in only):
                continue
            mine = getattr(self, f.name)
            if f.name == "epochs" and quick:
                continue
            if mine is None and f.name in ("filters", "channels", "image_size", "epochs"):
                continue
            if mine != getattr(saved, f.name):
                return False
        return True

    def command(self, name: str | None = None) -> str:
        """The ``recsys-nb train`` command line that trains this recipe."""
        default = Recipe()
        words = ["recsys-nb", "train", "--dataset", self.dataset]
        if name:
            words += ["--name", name]
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "dataset" or value == getattr(default, f.name):
                continue
            flag = "--" + f.name.replace("_", "-")
            if isinstance(value, bool):
                words.append(flag)
            elif isinstance(value, tuple):
                words += [flag, ",".join(map(str, value))]
            else:
                words += [flag, str(value)]
        return " ".join(words)


def check_whiten(whiten: float | None) -> None:
    """``whiten`` is ``None`` (raw codes) or between 0 (centre) and 1 (whiten), else an error."""
    if whiten is not None and not 0.0 <= whiten <= 1.0:  # NaN too
        raise RecsysError(f"whiten must be between 0 and 1, got {whiten}")


def _weight(name: str, value) -> float:
    """An extra loss term's weight as a float: 0 (off) or positive, else a clear error."""
    value = float(value or 0.0)
    if not value >= 0 or math.isinf(value):  # NaN too
        raise RecsysError(f"{name} must be 0 (off) or a positive weight, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One ``--flag`` per recipe field (``--batch-size`` for ``batch_size``), default unset."""
    for f in fields(Recipe):
        flag = "--" + f.name.replace("_", "-")
        meta = f.metadata
        if f.type == "bool" or isinstance(f.default, bool):
            parser.add_argument(flag, action="store_true", default=None, help=meta["help"])
            continue
        parser.add_argument(flag, type=meta["type"], default=None, help=meta["help"], **meta["cli"])


def from_arguments(args: argparse.Namespace, base: Recipe | None = None) -> Recipe:
    """The recipe of parsed ``recsys-nb train`` flags: ``base`` with the flags given."""
    given = {
        f.name: getattr(args, f.name)
        for f in fields(Recipe)
        if getattr(args, f.name, None) is not None
    }
    return (base or Recipe()).replace(**given)
