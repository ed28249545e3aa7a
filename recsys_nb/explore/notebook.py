"""The notebooks' catalogue and models: quick mode (``RECSYS_NB_QUICK=1``) or full."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .. import settings
from ..data import Dataset, data_root, load_catalog
from ..demo import REFERENCE
from ..model import TrainedModel, load_model
from ..recipe import Recipe
from ..train import model_dir, quick_mode

QUICK_ITEMS = 2000
QUICK_SIZE = (32, 24)  # height, width: a quarter of the pixels of the full 64x48
# the notebooks' own product models when make demo's are not there
QUICK_RECIPE = Recipe(
    dataset="products",
    epochs=15,
    image_size=QUICK_SIZE,
    filters=(16, 32),
    batch_size=64,
    learning_rate=2e-3,
)
# full mode: make demo's reference recipe (models/products, used as it is when there)
FULL_RECIPE = REFERENCE["products"]


def notebook_catalog(quick: bool | None = None, items: int = QUICK_ITEMS) -> Path:
    """The catalogue folder the notebooks use.

    Full mode: the shared catalogue (``$RECSYS_NB_DATA/fashion-products``). Quick mode:
    ``data/quick-catalog-2000/`` under the home folder (:mod:`recsys_nb.settings`), its
    first 2,000 rows (``styles.csv`` plus links to the images), created on first use.
    """
    source = data_root() / "fashion-products"
    if not quick_mode(quick):
        return source
    folder = settings.quick_catalog_dir(items)
    styles = folder / "styles.csv"
    if styles.is_file() and (folder / "images").is_dir():
        return folder
    if not (source / "styles.csv").is_file():
        load_catalog(source)  # raises the loader's error: where to get the data
    lines = (source / "styles.csv").read_text().splitlines()[: items + 1]
    (folder / "images").mkdir(parents=True, exist_ok=True)
    for line in lines[1:]:
        name = f"{line.split(',', 1)[0]}.jpg"
        target, link = source / "images" / name, folder / "images" / name
        if target.is_file() and not link.exists():
            os.symlink(target, link)
    tmp = styles.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(styles)
    return folder


def notebook_model(
    name: str = "products",
    *,
    latent_dim: int = 32,
    loss: str = "bce",
    quick: bool | None = None,
    retrain: bool = False,
    verbose=0,
    callbacks: list | None = None,
    recipe: Recipe | None = None,
) -> TrainedModel:
    """A product model for the notebooks: reused when already trained, else trained now.

    Quick mode: ``models/quick-<name>`` trained with :data:`QUICK_RECIPE` on the quick
    catalogue (under a minute on 2 cores). Full mode: ``models/<name>`` (``make demo``
    trains ``models/products``, which is used as it is), else trained with
    :data:`FULL_RECIPE`, make demo's reference recipe, on the whole catalogue (12 to 25
    minutes on 2 cores). A variant (another ``latent_dim`` or
    ``loss``) gets its own folder, ``<name>-z<latent_dim>-<loss>``; ``recipe`` replaces
    the mode's recipe.
    """
    from ..train import train

    quick = quick_mode(quick)
    recipe = (recipe or (QUICK_RECIPE if quick else FULL_RECIPE)).replace(
        latent_dim=latent_dim, loss=loss
    )
    if (latent_dim, loss) != (32, "bce"):
        name = f"{name}-z{latent_dim}-{loss}"
    folder = model_dir(f"quick-{name}" if quick else name)
    if not retrain and (folder / "meta.json").is_file():
        meta = json.loads((folder / "meta.json").read_text())
        if recipe.matches(meta, quick) or (not quick and name == "products"):
            return load_model(folder)
    catalog = notebook_catalog(quick)
    return train(
        recipe.replace(dataset=str(catalog)),
        str(folder),
        quick=quick,
        resume=not quick,
        verbose=verbose,
        callbacks=callbacks,
    )


def model_items(model, catalog=None) -> Dataset:
    """The catalogue (default: the model's own) at the model's input size."""
    model = load_model(model)
    height, width, channels = model.input_shape
    source = catalog or model.meta.get("source")
    return load_catalog(source, size=(height, width), channels=channels)
