"""The benchmarks' own logic: retrieval's command lines and saved rows, demo_time's parsing,
flops' count of make demo's work."""

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


def test_flops_counts_make_demos_images_through_each_network():
    from recsys_nb.demo import REFERENCE
    from recsys_nb.evaluate import CNN_FIT_ITEMS

    spec = importlib.util.spec_from_file_location("flops_benchmark", SCRIPT.parent / "flops.py")
    flops = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(flops)
    net = {"train_mflop_img": 100.0, "forward_mflop_img": 30.0, "encoder_mflop_img": 10.0}
    rows = {
        "fm": {**net, "img_s": 500.0},
        "products": {**net, "img_s": 250.0},
        "cnn": {"forward_mflop_img": 400.0, "img_s": 200.0},
    }
    n = {"train": 5000, "val": 500, "catalogue": 6000, "evaluated": 1000}
    stages = {s["stage"]: s for s in flops.demo_work(rows, {"fashion-mnist": n, "products": n})}
    # the demo's own stage names, so that demo_time.json's times line up with them
    assert list(stages) == [
        f"{name}: {what}"
        for name in ("fashion-mnist", "products")
        for what in ("train", "embed the catalogue and evaluate")
    ]
    products = REFERENCE["products"]
    assert products.contrast  # two views of each training item per epoch
    trained = products.epochs * 2 * 5000
    train = stages["products: train"]
    assert train["tflop"] == pytest.approx((trained * 100 + products.epochs * 500 * 30) / 1e6)
    assert train["at_measured_s"] == pytest.approx(
        trained / 250 + products.epochs * 500 * 0.3 / 250
    )
    cnn_items = 1000 + min(CNN_FIT_ITEMS, 5000)
    evaluate = stages["fashion-mnist: embed the catalogue and evaluate"]
    assert evaluate["tflop"] == pytest.approx((6000 * 10 + cnn_items * 400) / 1e6)
    assert evaluate["at_measured_s"] == pytest.approx(cnn_items / 200)
