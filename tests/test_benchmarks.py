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


def test_demo_time_reads_the_demos_own_lines(capsys):
    from recsys_nb.demo import _Stages

    spec = importlib.util.spec_from_file_location(
        "demo_time_benchmark", SCRIPT.parent / "demo_time.py"
    )
    demo_time = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo_time)
    stages = _Stages(2)
    for what in ("products: train", "products: embed the catalogue and evaluate"):
        with stages.stage(what):
            pass
    output = capsys.readouterr().out + "\n".join(
        [
            "14391 items embedded; articleType P@10: model 0.415 vs raw pixels (raw_rgb) 0.311",
            "       P@10 articleType P@10 subCategory P@10 masterCategory same_colour@10 MRR",
            "model             0.415            0.676               0.874          0.168 0.668",
            "hog               0.415            0.681               0.879          0.157 0.681",
            "demo finished in 412 s",
        ]
    )
    parsed = demo_time.parse_demo(output)
    assert list(parsed["stages"]) == [
        "products: train",
        "products: embed the catalogue and evaluate",
    ]
    assert parsed["demo_s"] == 412
    assert parsed["figures"] == {"articleType P@10": 0.415, "same_colour@10": 0.168}
    row = {"run": 1, "commit": "abc", "make_demo_s": 500, "installs_s": 88, **parsed}
    assert "| 1 | abc | 500 | 88 | 0 | 0 | articleType P@10 0.415" in demo_time.table([row])
