"""recsys_nb.recipe: one record of a training recipe, from which flags, meta and checks derive."""

from __future__ import annotations

import dataclasses
import shlex

import pytest

import recsys_nb
from recsys_nb import recipe as recipe_module
from recsys_nb.cli import _parser
from recsys_nb.demo import REFERENCE
from recsys_nb.recipe import Recipe


def parse(command: str) -> Recipe:
    words = shlex.split(command)
    assert words[:2] == ["recsys-nb", "train"]
    return recipe_module.from_arguments(_parser().parse_args(words[1:]))


def test_every_field_is_a_train_flag():
    help_text = _parser().parse_args(["train"]).__dict__
    for f in dataclasses.fields(Recipe):
        assert f.name in help_text, f"recsys-nb train has no --{f.name.replace('_', '-')}"
    assert parse("recsys-nb train") == Recipe()


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_demo_recipes_round_trip_through_their_command(name):
    recipe = REFERENCE[name]
    assert parse(recipe.command(name)) == recipe


def test_command_names_only_what_differs_from_the_defaults():
    recipe = Recipe(dataset="products", channels=1, augment="flip,tone", contrast=0.1)
    assert recipe.command("x") == (
        "recsys-nb train --dataset products --name x --channels 1 --augment flip,tone "
        "--contrast 0.1"
    )
    assert parse(recipe.command("x")) == recipe
    assert "--colour-hint" in Recipe(colour_hint=True).command()


def test_dict_round_trip_and_unknown_fields():
    recipe = Recipe(dataset="products", filters=(8, 16), image_size=(32, 24), whiten=0.5)
    assert Recipe.from_dict(recipe.to_dict()) == recipe
    assert recipe.to_dict()["filters"] == [8, 16]  # JSON-ready
    with pytest.raises(recsys_nb.RecsysError, match="unknown recipe fields colour"):
        Recipe.from_dict({"colour": 1})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"hog": float("nan")}, "hog must be 0"),
        ({"contrast": -1}, "contrast must be 0"),
        ({"contrast": 0.1}, "give augment too"),
        ({"augment": "flip,blur"}, "unknown augmentation"),
        ({"whiten": 1.5}, "whiten must be between 0 and 1"),
        ({"depth": 0}, "depth"),
        ({"epochs": 0}, "epochs must be at least 1"),
        ({"loss": "l1"}, "loss must be one of bce, mse"),
    ],
)
def test_bad_values_are_clear_errors(changes, message):
    with pytest.raises(recsys_nb.RecsysError, match=message):
        Recipe(**changes)


def test_cli_reports_a_bad_recipe_in_one_line(capsys):
    from recsys_nb.cli import main

    assert main(["train", "--contrast", "0.1", "--epochs", "1"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "give augment too" in err[0]


def test_matches_a_legacy_meta_without_a_recipe_entry():
    meta = {  # what meta.json held before the recipe entry
        "dataset": "fashion-mnist",
        "quick": False,
        "input_shape": [28, 28, 1],
        "latent_dim": 32,
        "filters": [32, 64],
        "loss": "bce",
        "optimizer": {"name": "adam", "learning_rate": 0.001},
        "batch_size": 256,
        "requested_epochs": 8,
        "split": {"by": "id", "val_fraction": 0.1, "seed": 0},
        "augment": [],
        "hog": 300.0,
        "depth": 2,
    }
    recipe = Recipe(dataset="fashion-mnist", epochs=8, hog=300.0, depth=2)  # then make demo's
    assert recipe.matches(meta, quick=False)
    assert not recipe.replace(depth=1).matches(meta, quick=False)
    assert not recipe.replace(schedule="cosine").matches(meta, quick=False)
    assert not recipe.matches(meta, quick=True)  # another mode
    assert recipe.replace(epochs=None).matches({**meta, "quick": True}, True)


def test_train_saves_the_resolved_recipe(small_catalog, models_dir):
    data = recsys_nb.load_catalog(small_catalog, size=(32, 24), channels=1)
    wanted = Recipe(dataset=str(small_catalog), epochs=1, filters=(4, 8), latent_dim=4, hog=1.0)
    model = recsys_nb.train(wanted, str(models_dir / "recipe"), data=data, verbose=0)
    saved = Recipe.from_meta(model.meta)
    assert saved == wanted.replace(channels=1, image_size=(32, 24))
    assert wanted.matches(model.meta, quick=False)
    assert model.meta["hog"] == 1.0 and model.meta["filters"] == [4, 8]  # flat keys derived
    with pytest.raises(recsys_nb.RecsysError, match="unknown option.*colour"):
        recsys_nb.train(wanted, "x", colour=1)


def test_cosine_schedule_warms_up_then_decays():
    from recsys_nb.model import learning_rate_schedule

    assert learning_rate_schedule(1e-3, "constant", None) == 1e-3
    lr = learning_rate_schedule(1e-3, "cosine", 200)
    at = [float(lr(step)) for step in (0, 10, 105, 200)]
    assert at[0] == pytest.approx(1e-4) and at[1] == pytest.approx(1e-3)
    assert at[1] > at[2] > at[3] and at[3] == pytest.approx(1e-5, rel=0.05)
    with pytest.raises(recsys_nb.RecsysError, match="schedule must be one of"):
        Recipe(schedule="step")


def test_train_with_a_cosine_schedule_records_it(small_catalog, models_dir):
    data = recsys_nb.load_catalog(small_catalog, size=(32, 24), channels=1)
    recipe = Recipe(epochs=2, filters=(4, 8), latent_dim=4, schedule="cosine", batch_size=64)
    model = recsys_nb.train(recipe, str(models_dir / "cosine"), data=data, verbose=0)
    assert model.meta["optimizer"]["schedule"] == "cosine"
    assert Recipe.from_meta(model.meta).schedule == "cosine"
    assert not recipe.replace(schedule="constant").matches(model.meta, quick=False)


def test_decoder_depth_apart_from_the_encoder():
    from recsys_nb.model import build_autoencoder

    both = build_autoencoder((16, 12, 1), latent_dim=4, filters=(4, 8), depth=2)
    lean = build_autoencoder((16, 12, 1), latent_dim=4, filters=(4, 8), depth=2, decoder_depth=1)
    assert len(lean.get_layer("encoder").layers) == len(both.get_layer("encoder").layers)
    assert len(both.get_layer("decoder").layers) - len(lean.get_layer("decoder").layers) == 2
    recipe = Recipe(depth=2, decoder_depth=1)
    assert "--decoder-depth 1" in recipe.command() and parse(recipe.command()) == recipe
    with pytest.raises(recsys_nb.RecsysError, match="depth"):
        Recipe(decoder_depth=0)


def test_decoder_filters_apart_from_the_encoder(small_catalog, models_dir):
    from recsys_nb.model import build_autoencoder

    light = build_autoencoder((16, 12, 1), latent_dim=4, filters=(8, 16), decoder_filters=(2, 4))
    kernels = [tuple(w.shape) for w in light.get_layer("decoder").weights if w.ndim == 4]
    # UpConv kernels are (3, 3, out, in): 4 -> 4 channels at the small level, then 4 -> 2;
    # the output OutConv's is (3, 3, in, out): 2 -> 1
    assert kernels == [(3, 3, 4, 4), (3, 3, 2, 4), (3, 3, 2, 1)]
    assert light.get_layer("encoder").output.shape[-1] == 4
    with pytest.raises(recsys_nb.RecsysError, match="one entry per level"):
        build_autoencoder((16, 12, 1), filters=(8, 16), decoder_filters=(4,))
    recipe = Recipe(epochs=1, filters=(4, 8), decoder_filters=(2, 4), latent_dim=4, batch_size=64)
    assert "--decoder-filters 2,4" in recipe.command() and parse(recipe.command()) == recipe
    data = recsys_nb.load_catalog(small_catalog, size=(32, 24), channels=1)
    model = recsys_nb.train(recipe, str(models_dir / "light"), data=data, verbose=0)
    assert model.meta["decoder_filters"] == [2, 4] and recipe.matches(model.meta, quick=False)
    assert not recipe.replace(decoder_filters=None).matches(model.meta, quick=False)


def test_teacher_term_trains_a_head_that_the_saved_model_drops(small_catalog, models_dir):
    data = recsys_nb.load_catalog(small_catalog, size=(32, 24), channels=1)
    data = data.subset(slice(0, 120))
    recipe = Recipe(epochs=1, filters=(4, 8), latent_dim=4, batch_size=32, teacher=2.0)
    model = recsys_nb.train(recipe, str(models_dir / "teacher"), data=data, verbose=0)
    assert model.meta["teacher"] == 2.0 and "teacher_loss" in model.meta["history"]
    assert len(model.autoencoder.outputs) == 1  # the head is for training only
    assert [la.name for la in model.autoencoder.layers if la.name.startswith("teacher")] == []
    assert recsys_nb.embed(model, data.images[:3]).shape == (3, 4)
    assert recipe.matches(model.meta, quick=False)
    assert not recipe.replace(teacher=0.0).matches(model.meta, quick=False)
