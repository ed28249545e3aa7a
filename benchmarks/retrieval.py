"""Retrieval ablation: does the autoencoder match products by shape or by colour?

Trains (or loads, when ``models/<variant>`` already holds the same recipe) each
variant with :func:`recsys_nb.train` -- exactly what ``recsys-nb train`` runs -- and
evaluates it with :func:`recsys_nb.evaluate.evaluate` on images it never trained on:
the validation split (by id) of the shared catalogue at 64x48, and the Fashion-MNIST
test set. Every trained model is also evaluated with other latent transforms fitted
on its training codes (raw codes, centred, half / fully whitened), which needs no
retraining. The baselines (raw pixels, PCA-32, colour histogram, chance) come from the
same evaluation run.

    python benchmarks/retrieval.py            # the full variants (hours on 2 busy cores)
    python benchmarks/retrieval.py --quick    # small subsets, 2 epochs: minutes
    python benchmarks/retrieval.py --variants products-grey,fm-w --no-train

Writes ``benchmarks/results/retrieval{,-quick}.md`` and ``.json`` and prints the table.
With ``--variants`` the rows of those variants (and the baselines evaluated with them)
replace their old rows in the saved results; the other variants' rows are kept.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import recsys_nb  # noqa: F401  (sets the Keras backend)
from recsys_nb.embed import fit_latent_transform
from recsys_nb.errors import RecsysError
from recsys_nb.evaluate import evaluate
from recsys_nb.model import load_model
from recsys_nb.recipe import Recipe
from recsys_nb.settings import models_dir
from recsys_nb.train import train, training_images

RESULTS = Path(__file__).resolve().parent / "results"
K = 10

# the view-contrast recipe that `make demo` trained before the HOG loss (recsys_nb.demo),
# kept here so that the variants below keep their meaning if the demo's recipe changes
CONTRAST_FIELDS = {
    "dataset": "products",
    "channels": 1,
    "epochs": 6,
    "augment": "flip,shift,tone",
    "contrast": 0.1,
    "whiten": 0.5,
}
# the demo-time issue's Fashion-MNIST recipes: --depth 2 and the HOG loss, a cosine schedule
FM_COSINE_FIELDS = {
    "dataset": "fashion-mnist",
    "hog": 300.0,
    "depth": 2,
    "schedule": "cosine",
    "learning_rate": 0.003,
}
# name -> recipe (`Recipe.command(name)` is its `recsys-nb train` line)
VARIANTS = {
    name: Recipe(**fields)
    for name, fields in {
        "products-rgb": {"dataset": "products", "channels": 3, "epochs": 4},
        "products-grey": {"dataset": "products", "channels": 1, "epochs": 14, "whiten": 1.0},
        "products-grey-aug": {
            "dataset": "products",
            "channels": 1,
            "epochs": 4,
            "augment": "flip,shift",
            "whiten": 0.5,
        },
        "products-grey-tone": {
            "dataset": "products",
            "channels": 1,
            "epochs": 12,
            "augment": "tone",
            "whiten": 0.5,
        },
        "products-grey-mask": {
            "dataset": "products",
            "channels": 1,
            "epochs": 12,
            "augment": "mask",
            "whiten": 0.5,
        },
        "products-grey-hint": {
            "dataset": "products",
            "channels": 1,
            "epochs": 12,
            "colour_hint": True,
            "whiten": 0.5,
        },
        "products-grey-contrast": CONTRAST_FIELDS,
        "products-grey-contrast-12": {**CONTRAST_FIELDS, "epochs": 12},
        "products-rgb-contrast": {**CONTRAST_FIELDS, "channels": 3},
        "products-grey-contrast-crop": {
            **CONTRAST_FIELDS,
            "augment": "flip,crop,tone",
            "contrast": 0.5,
        },
        "products-grey-contrast-w1": {**CONTRAST_FIELDS, "contrast": 1.0},
        "products-grey-contrast-wide": {**CONTRAST_FIELDS, "filters": (64, 128, 256)},
        "products-grey-contrast-hog10": {**CONTRAST_FIELDS, "hog": 10.0},
        "products-grey-contrast-hog30": {**CONTRAST_FIELDS, "epochs": 8, "hog": 30.0},
        "products-grey-contrast-hog100": {**CONTRAST_FIELDS, "epochs": 8, "hog": 100.0},
        "products-grey-contrast-hog300": {**CONTRAST_FIELDS, "epochs": 8, "hog": 300.0},
        "products-grey-contrast-hog1000": {**CONTRAST_FIELDS, "epochs": 8, "hog": 1000.0},
        "products-grey-contrast-hog300-deep": {
            **CONTRAST_FIELDS,
            "epochs": 8,
            "hog": 300.0,
            "depth": 2,
        },
        "fm-w": {"dataset": "fashion-mnist", "epochs": 4, "whiten": 0.5},
        "fm-mask": {"dataset": "fashion-mnist", "epochs": 8, "augment": "mask", "whiten": 0.5},
        "fm-contrast": {
            "dataset": "fashion-mnist",
            "epochs": 6,
            "augment": "flip,crop,tone",
            "contrast": 0.5,
            "whiten": 0.5,
        },
        "fm-hog30": {"dataset": "fashion-mnist", "epochs": 8, "whiten": 0.5, "hog": 30.0},
        "fm-hog300": {"dataset": "fashion-mnist", "epochs": 8, "whiten": 0.5, "hog": 300.0},
        # chosen on the Fashion-MNIST validation split (P@10 label, FM val), not on the test set
        "fm-hog300-16": {"dataset": "fashion-mnist", "epochs": 16, "hog": 300.0},
        "fm-hog1000": {"dataset": "fashion-mnist", "epochs": 8, "hog": 1000.0},
        "fm-hog300-mse": {"dataset": "fashion-mnist", "epochs": 8, "hog": 300.0, "loss": "mse"},
        "fm-hog300-wide": {
            "dataset": "fashion-mnist",
            "epochs": 8,
            "hog": 300.0,
            "filters": (64, 128),
        },
        "fm-hog300-views": {
            "dataset": "fashion-mnist",
            "epochs": 8,
            "hog": 300.0,
            "augment": "flip,shift",
            "contrast": 0.1,
        },
        "fm-hog300-deep": {"dataset": "fashion-mnist", "epochs": 8, "hog": 300.0, "depth": 2},
        "fm-hog300-deep-16": {"dataset": "fashion-mnist", "epochs": 16, "hog": 300.0, "depth": 2},
        # the demo-time issue: fewer epochs with a cosine schedule, a lighter decoder
        "fm-cos4": {**FM_COSINE_FIELDS, "epochs": 4},
        "fm-dec1-cos6": {**FM_COSINE_FIELDS, "epochs": 6, "decoder_depth": 1},
        # the CNN issue: the code also predicts the CNN's (grey) features, weight 2
        "p-teacher2": {**CONTRAST_FIELDS, "epochs": 8, "hog": 300.0, "teacher": 2.0},
        "p-cos4": {
            **CONTRAST_FIELDS,
            "epochs": 4,
            "hog": 300.0,
            "schedule": "cosine",
            "learning_rate": 0.002,
        },
        # the demo-time issue again: a decoder with half the channels (1.9x the img/s)
        "p-dec-half": {
            **CONTRAST_FIELDS,
            "epochs": 8,
            "hog": 300.0,
            "decoder_filters": (16, 32, 64),
        },
        "p-dec-half-hog1000": {
            **CONTRAST_FIELDS,
            "epochs": 8,
            "hog": 1000.0,
            "decoder_filters": (16, 32, 64),
        },
        "fm-cos6": {**FM_COSINE_FIELDS, "epochs": 6},
        # a lighter decoder for Fashion-MNIST too (1.7x the img/s), fewer epochs
        "fm-dec1-cos5": {**FM_COSINE_FIELDS, "epochs": 5, "decoder_depth": 1},
        "fm-dec1-cos4": {**FM_COSINE_FIELDS, "epochs": 4, "decoder_depth": 1},
        # the decoder's stride-1 convolution at 14x14 has 64 channels (after the first
        # upsampling): 37% of the multiply-adds; half the decoder's channels, 1.55x img/s
        # (unlike the products' it loses: val P@10 0.807)
        "fm-dec-half-cos4": {**FM_COSINE_FIELDS, "epochs": 4, "decoder_filters": (16, 32)},
        "p-dec-half-cos6": {
            **CONTRAST_FIELDS,
            "epochs": 6,
            "hog": 1000.0,
            "decoder_filters": (16, 32, 64),
            "schedule": "cosine",
            "learning_rate": 0.002,
        },
    }.items()
}
# latent transforms evaluated on every model, fitted on its own training codes
TRANSFORMS = {"codes": None, "centred": 0.0, "whiten 0.5": 0.5, "whiten 1": 1.0}


def get_model(name: str, spec: dict, quick: bool, allow_train: bool):
    name = f"{name}-quick" if quick else name  # never overwrite a full model
    folder = models_dir() / name
    try:
        model = load_model(folder)
        if spec.matches(model.meta, quick):
            print(f"{name}: loaded {folder}", flush=True)
            return model
    except RecsysError:
        pass
    if not allow_train:
        print(f"{name}: no trained model with this recipe in {folder}; skipped", flush=True)
        return None
    print(f"{name}: training ({spec.command(name)})", flush=True)
    return train(spec, name, quick=quick, verbose=2)


def training_codes(model) -> np.ndarray:
    """The encoder's codes of the model's training split (what transforms are fitted on)."""
    return model.encoder.predict(training_images(model.meta), batch_size=1024, verbose=0)


def row(variant, transform, model, result, spec=None, val_result=None) -> dict:
    out = {
        "variant": variant,
        "latent transform": transform,
        "dataset": "fashion-mnist" if "label" in result["precision"] else "products",
        "latent": model.latent_dim if model else None,
        "train_s": model.meta.get("train_seconds") if model else None,
        "epochs": model.meta.get("epochs") if model else None,
        "val_loss": model.meta.get("val_loss") if model else None,
        "precision": result["precision"],
        "same_colour": result.get("same_colour"),
        "mrr": result["mrr"],
        "fm_val_precision": val_result["precision"] if val_result else None,
    }
    if spec is not None:
        out["command"] = spec.command(variant)
    return out


def run(names, quick: bool, allow_train: bool, limit=None) -> list[dict]:
    rows, baselines_done = [], set()
    for name in names:
        spec = VARIANTS[name]
        model = get_model(name, spec, quick, allow_train)
        if model is None:
            continue
        started = time.time()
        report = evaluate(model, k=K, baselines=spec.dataset not in baselines_done, limit=limit)
        baselines_done.add(spec.dataset)
        codes = training_codes(model)
        stored = model.meta.pop("latent_transform", None)
        try:
            for label, whiten in TRANSFORMS.items():
                if whiten is not None:
                    model.meta["latent_transform"] = fit_latent_transform(codes, whiten)
                else:
                    model.meta.pop("latent_transform", None)
                result = evaluate(model, k=K, baselines=False, limit=limit)["results"]["model"]
                val_result = None
                if spec.dataset == "fashion-mnist":  # what a recipe is chosen on
                    val_report = evaluate(model, k=K, split="val", baselines=False, limit=limit)
                    val_result = val_report["results"]["model"]
                tag = label + (" (stored)" if (stored or {}).get("whiten") == whiten else "")
                rows.append(row(name, tag, model, result, spec, val_result))
        finally:
            model.meta.pop("latent_transform", None)
            if stored is not None:
                model.meta["latent_transform"] = stored
        for base, result in report["results"].items():
            if base != "model":
                rows.append(row(f"baseline: {base}", "", None, result))
        print(f"{name}: evaluated on {report['n_items']} items in {time.time() - started:.0f} s")
    return rows


def merge(old: list[dict], new: list[dict]) -> list[dict]:
    """``old`` rows with those of ``new``'s variants (and re-run baselines) replaced.

    A variant keeps its place; a new one is added at the end, its baselines before it
    if they are new too.
    """
    fresh: dict[str, list[dict]] = {}
    for r in new:
        fresh.setdefault(r["variant"], []).append(r)
    out, placed = [], set()
    for r in old:
        name = r["variant"]
        if name not in fresh:
            out.append(r)
        elif name not in placed:
            out += fresh[name]
            placed.add(name)
    return out + [r for name, group in fresh.items() if name not in placed for r in group]


def table(rows: list[dict]) -> str:
    labels = ["articleType", "subCategory", "masterCategory", "label"]
    head = ["variant", "latent transform", "d", "train s", "epochs", "val loss"]
    head += [f"P@{K} {label}" for label in labels] + [f"same_colour@{K}", "MRR"]
    head += [f"P@{K} label, FM val"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def fmt(v, spec="{:.3f}"):
        return "" if v is None else spec.format(v)

    for r in rows:
        cells = [r["variant"], r["latent transform"], fmt(r["latent"], "{}")]
        cells += [fmt(r["train_s"], "{:.0f}"), fmt(r["epochs"], "{}"), fmt(r["val_loss"], "{:.4f}")]
        cells += [fmt(r["precision"].get(label)) for label in labels]
        cells += [fmt(r["same_colour"]), fmt(r["mrr"])]
        cells += [fmt((r.get("fm_val_precision") or {}).get("label"))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small subsets, 2 epochs")
    parser.add_argument("--variants", help=f"comma-separated, from {', '.join(VARIANTS)}")
    parser.add_argument("--no-train", dest="train", action="store_false", help="load only")
    args = parser.parse_args(argv)
    names = args.variants.split(",") if args.variants else list(VARIANTS)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}")
    if args.quick:
        VARIANTS.update({n: VARIANTS[n].replace(epochs=2) for n in names})
    rows = run(names, args.quick, args.train, limit=2000 if args.quick else None)
    suffix = "-quick" if args.quick else ""
    RESULTS.mkdir(parents=True, exist_ok=True)
    saved = RESULTS / f"retrieval{suffix}.json"
    if args.variants and saved.is_file():
        rows = merge(json.loads(saved.read_text()), rows)
    text = table(rows)
    note = (
        f"k = {K}, cosine, each item queries all other evaluated items. Products: the "
        "validation split (by id) of the shared catalogue, 64x48; Fashion-MNIST: the test "
        "set, and (last column) the validation part of its training set, on which recipes "
        "are chosen. Baselines are evaluated on the same items in the same run.\n\n"
    )
    (RESULTS / f"retrieval{suffix}.md").write_text(note + text + "\n")
    (RESULTS / f"retrieval{suffix}.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
