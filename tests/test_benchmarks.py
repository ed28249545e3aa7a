"""The retrieval benchmark's own logic: its command lines and how it updates saved rows."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "retrieval.py"


@pytest.fixture(scope="module")
def retrieval():
    spec = importlib.util.spec_from_file_location("retrieval_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_variants_are_recipes_with_their_train_command(retrieval):
    from recsys_nb.recipe import Recipe

    assert all(isinstance(r, Recipe) for r in retrieval.VARIANTS.values())
    deep = retrieval.VARIANTS["fm-hog300-deep"]
    assert deep.command("m") == (
        "recsys-nb train --dataset fashion-mnist --name m --epochs 8 --depth 2 --hog 300.0"
    )
    crop = retrieval.VARIANTS["products-grey-contrast-crop"]
    assert crop.augment == ("flip", "crop", "tone") and crop.contrast == 0.5
    assert crop.channels == 1 and crop.whiten == 0.5  # the rest from the contrast recipe


def test_merge_replaces_rerun_variants_in_place_and_appends_new_ones(retrieval):
    def rows(variant, *tags):
        return [{"variant": variant, "latent transform": t} for t in tags]

    old = rows("a", "codes", "whiten 0.5") + rows("baseline: hog", "") + rows("b", "codes")
    new = rows("baseline: hog", "") + rows("b", "codes", "centred") + rows("c", "codes")
    merged = retrieval.merge(old, new)
    assert [(r["variant"], r["latent transform"]) for r in merged] == [
        ("a", "codes"),
        ("a", "whiten 0.5"),
        ("baseline: hog", ""),
        ("b", "codes"),
        ("b", "centred"),
        ("c", "codes"),
    ]
    assert merged[2] is new[0]  # the re-run baseline, not the old row
