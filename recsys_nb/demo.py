"""``make demo``: train the two reference models, embed, evaluate, and print what was made.

``python -m recsys_nb.demo [--quick] [--retrain]``. A model already trained with the
same settings is reused, so a second run only embeds and evaluates.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time

import keras

from .errors import RecsysError
from .recipe import Recipe

# The reference models: what `make demo` leaves in models/<name>, as recipes
# (`Recipe.command()` gives the `recsys-nb train` line): the best measured in
# benchmarks/retrieval.py for the demo's time
# (README "Does the autoencoder match by shape or by colour?"). Both with the HOG loss
# (the reconstruction's edge histograms must match the input's).
# Products: greyscale input, two flipped / shifted / toned views of each item per batch
# and a contrast term (weight 0.1) pulling their codes together, 8 epochs, codes
# half-whitened on the training split (--whiten 0.5), and a decoder with half the
# encoder's channels (--decoder-filters 16,32,64: 1.9x the images per second; the code
# is the encoder's) with --hog 1000: articleType P@10 0.413 and same_colour@10 0.161
# against 0.414 / 0.168 for the full decoder with --hog 300 (p-dec-half-hog1000).
# Fashion-MNIST: no augmentation, a second 3x3 convolution per level (--depth 2), raw
# codes, 4 epochs with a cosine schedule peaking at 0.003 (fm-cos4): on the validation
# part of its training set P@10 0.813, as 8 epochs at a constant 0.001 gave, in half the
# steps (6 epochs gave 0.814; test P@10 0.819 both).
REFERENCE = {
    "fashion-mnist": Recipe(
        dataset="fashion-mnist",
        epochs=4,
        hog=300.0,
        depth=2,
        schedule="cosine",
        learning_rate=0.003,
    ),
    "products": Recipe(
        dataset="products",
        epochs=8,
        channels=1,
        decoder_filters=(16, 32, 64),
        augment=("flip", "shift", "tone"),
        contrast=0.1,
        hog=1000.0,
        whiten=0.5,
    ),
}
EXAMPLE_QUERIES = {"products": 21379, "fashion-mnist": 0}
RAW_BASELINE = {"products": "raw_rgb", "fashion-mnist": "raw_grey"}


def _up_to_date(name: str, recipe: Recipe, quick: bool) -> bool:
    from .model import load_model
    from .train import model_dir

    try:
        return recipe.matches(load_model(model_dir(name)).meta, quick)
    except RecsysError:
        return False


class _Stages:
    """One line per stage of the demo: what starts, and when it ends, its time and the
    demo's so far."""

    def __init__(self, total: int):
        self.started, self.total, self.done = time.time(), total, 0
        self.times: dict[str, float] = {}

    @contextlib.contextmanager
    def stage(self, what: str):
        self.done += 1
        began = time.time()
        print(f"\n[{self.done}/{self.total}] {what} ...", flush=True)
        yield
        now = time.time()
        self.times[what] = now - began
        print(
            f"[{self.done}/{self.total}] {what}: {now - began:.0f} s "
            f"(demo so far {now - self.started:.0f} s)",
            flush=True,
        )


class _EpochClock(keras.callbacks.Callback):
    """After each epoch: elapsed time and an estimate of the time left."""

    def __init__(self, name: str, epochs: int):
        super().__init__()
        self.name, self.epochs = name, epochs

    def on_train_begin(self, logs=None):
        self.began = time.time()

    def on_epoch_end(self, epoch, logs=None):
        elapsed = time.time() - self.began
        left = elapsed / (epoch + 1) * (self.epochs - epoch - 1)
        print(
            f"    {self.name}: epoch {epoch + 1}/{self.epochs}, {elapsed:.0f} s, "
            f"about {left:.0f} s left",
            flush=True,
        )


def run(quick: bool = False, retrain: bool = False) -> int:
    from .cli import format_results
    from .evaluate import evaluate
    from .recommend import MemoryStore
    from .train import model_dir, train

    started = time.time()
    stages = _Stages(2 * len(REFERENCE))
    summary = []
    for name, recipe in REFERENCE.items():
        if quick:
            recipe = recipe.replace(epochs=None)
        with stages.stage(f"{name}: train"):
            if not retrain and _up_to_date(name, recipe, quick):
                print(f"{model_dir(name)} is up to date (use --retrain to train again)")
            else:
                print(recipe.command(name), flush=True)
                clock = _EpochClock(name, recipe.resolved_epochs(quick))
                train(recipe, name, quick=quick, verbose=0, callbacks=[clock])
        with stages.stage(f"{name}: embed the catalogue and evaluate"):
            store = MemoryStore.from_model(model_dir(name))
            report = evaluate(store.model, limit=2000 if quick else None)
        summary.append((name, store, report))

    print("\n=== what the demo made ===")
    for name, store, report in summary:
        m = store.model.meta
        raw = RAW_BASELINE[name]
        first_label = next(iter(report["results"]["model"]["precision"]))
        p_model = report["results"]["model"]["precision"][first_label]
        p_raw = report["results"][raw]["precision"][first_label]
        print(
            f"\n{store.model.path}  ({m['n_train']} train / {m['n_val']} val images, "
            f"{m['epochs']} epochs, train loss {m['train_loss']:.4f}, "
            f"val loss {m['val_loss']:.4f}, {m['train_seconds']:.0f} s)"
        )
        print(
            f"{len(store)} items embedded; {first_label} P@{report['k']}: model {p_model:.3f} "
            f"vs raw pixels ({raw}) {p_raw:.3f} on {report['n_items']} unseen items"
        )
        print(format_results(report))
        query = EXAMPLE_QUERIES[name]
        recs = store.recommend(query, k=5).rename(columns={"productDisplayName": "name"})
        described = store.meta.loc[query]
        label = described.get("productDisplayName", described.get("label"))
        print(f"products like {query} ({label}):")
        cols = [
            c
            for c in ("rank", "id", "score", "articleType", "baseColour", "name", "label")
            if c in recs.columns
        ]
        print(recs[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    total = time.time() - started
    print(f"\ndemo finished in {total:.0f} s")
    for what, seconds in stages.times.items():
        print(f"  {seconds:6.0f} s  {what}")
    print(
        "next: `make lab` opens the notebooks in JupyterLab; "
        "`.venv/bin/recsys-nb recommend --model models/products --id 21379 -k 10`"
    )
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recsys_nb.demo", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small subsets, 2 epochs")
    parser.add_argument("--retrain", action="store_true", help="train even if models exist")
    args = parser.parse_args(argv)
    from .train import quick_mode

    try:
        return run(quick=quick_mode(args.quick or None), retrain=args.retrain)
    except RecsysError as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
