"""The recsys-nb command: contracts and one-line errors with exit status 2."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from recsys_nb.cli import main

CLI = str(Path(sys.executable).with_name("recsys-nb"))


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_recommend_table_and_json(capsys, tiny_product_model, small_catalog):
    model = tiny_product_model.path
    code, out, _ = run_cli(
        capsys, "recommend", "--model", model, "--catalog", small_catalog, "--id", 21379, "-k", 5
    )
    assert code == 0
    header = out.splitlines()[0].split()
    assert header[:5] == ["rank", "id", "score", "articleType", "baseColour"] and "name" in header
    assert len(out.splitlines()) == 6
    code, out, _ = run_cli(
        capsys,
        "recommend",
        "--model",
        model,
        "--catalog",
        small_catalog,
        "--id",
        21379,
        "-k",
        5,
        "--json",
    )
    rows = json.loads(out)
    assert code == 0 and len(rows) == 5 and {"id", "score"} <= set(rows[0])
    assert all(isinstance(r["id"], int) for r in rows)


def test_evaluate_json_format(capsys, tiny_product_model, small_catalog):
    code, out, _ = run_cli(
        capsys,
        "evaluate",
        "--model",
        tiny_product_model.path,
        "--catalog",
        small_catalog,
        "--k",
        10,
        "--json",
    )
    report = json.loads(out)
    assert code == 0 and report["k"] == 10
    model = report["results"]["model"]
    assert set(model["precision"]) == {"articleType", "subCategory", "masterCategory"}
    assert 0.0 <= model["same_colour"] <= 1.0
    baselines = {"raw_rgb", "raw_grey", "pca32", "colour_hist", "hog", "chance"}
    assert baselines <= set(report["results"])
    # the tiny model trained on the first 300 items: only the unseen ones are evaluated
    assert report["split"] == "val" and 0 < report["n_items"] < 300


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["recommend", "--model", "{model}", "--catalog", "{catalog}", "--id", "424242"],
            "unknown id 424242",
        ),
        (["recommend", "--model", "{tmp}", "--id", "1"], "is not a model folder"),
        (
            ["recommend", "--model", "{model}", "--catalog", "{catalog}", "--image", "{tiny}"],
            "does not fit the model",
        ),
        (["evaluate", "--model", "{model}", "--catalog", "{tmp}/nowhere"], "RECSYS_NB_DATA"),
        (
            ["train", "--dataset", "{catalog}", "--name", "{tmp}/m", "--depth", "0"],
            "depth (convolutions per level) must be 1 or more, got 0",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    capsys, tmp_path, tiny_product_model, small_catalog, args, message
):
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (4, 4), "blue").save(tiny)
    fill = {
        "model": tiny_product_model.path,
        "catalog": small_catalog,
        "tmp": tmp_path,
        "tiny": tiny,
    }
    code, out, err = run_cli(capsys, *(a.format(**fill) for a in args))
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_console_script_missing_data_exits_2_without_traceback(tmp_path):
    env = {"RECSYS_NB_DATA": str(tmp_path), "KERAS_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [CLI, "train", "--quick", "--name", str(tmp_path / "m")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 2
    assert "RECSYS_NB_DATA" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_info_shows_the_training_recipe(capsys, tiny_product_model):
    code, out, _ = run_cli(capsys, "info", "--model", tiny_product_model.path)
    assert code == 0
    fields = dict(line.strip().split(": ", 1) for line in out.splitlines())
    assert fields["loss"] == "bce" and fields["hog"] == "0.0" and fields["augment"] == "[]"
    assert fields["depth"] == "1"
    assert fields["latent_dim"] == "16" and fields["parameters"] == (
        f"{tiny_product_model.autoencoder.count_params():,}"
    )
