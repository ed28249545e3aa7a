"""recsys_nb.settings: every path from one place, resolved when used, never site-packages."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsys_nb import settings
from recsys_nb.mongod import LocalMongo
from recsys_nb.train import model_dir

CHECKOUT = Path(__file__).resolve().parent.parent


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in (
        settings.HOME_ENV,
        settings.MONGO_DIR_ENV,
        settings.DATA_ENV,
        settings.URI_ENV,
        settings.QUICK_ENV,
    ):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_a_source_checkout_keeps_its_layout(clean_env):
    assert settings.source_checkout() == CHECKOUT
    assert settings.home() == CHECKOUT
    assert model_dir("products") == CHECKOUT / "models" / "products"
    assert settings.mongo_dir() == CHECKOUT / "data" / "mongo"
    assert settings.data_root() == CHECKOUT.parent / "shared" / "data"


def test_home_from_the_environment_moves_every_writable_path(clean_env, tmp_path):
    clean_env.setenv(settings.HOME_ENV, str(tmp_path / "home"))
    home = tmp_path / "home"
    assert model_dir("products") == home / "models" / "products"
    assert settings.cache_dir() == home / "data" / "cache"
    assert settings.exports_dir() == home / "data" / "exports"
    assert settings.quick_catalog_dir(7) == home / "data" / "quick-catalog-7"
    assert LocalMongo().root == home / "data" / "mongo"
    # resolved when used: unsetting it goes back to the checkout at once
    clean_env.delenv(settings.HOME_ENV)
    assert model_dir("products") == CHECKOUT / "models" / "products"


def test_an_installed_package_uses_the_user_data_folder(clean_env, tmp_path):
    # (tests/test_wheel.py runs a real installed package; this checks the two parts)
    installed = tmp_path / "site-packages" / "recsys_nb"
    installed.mkdir(parents=True)
    assert settings.source_checkout(installed) is None
    clean_env.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert settings.user_data_home() == tmp_path / "xdg" / settings.APP_NAME


def test_describe_names_every_source_and_hides_passwords(clean_env, tmp_path):
    clean_env.setenv(settings.MONGO_DIR_ENV, str(tmp_path / "db"))
    clean_env.setenv(settings.URI_ENV, "mongodb+srv://ana:s3cret@cluster0.example.net/")
    clean_env.setenv(settings.QUICK_ENV, "yes")
    by_name = {s.name: s for s in settings.describe()}
    assert by_name["home"].source == "source checkout"
    assert by_name["mongo_dir"].value == tmp_path / "db"
    assert by_name["mongo_dir"].source == "$RECSYS_NB_MONGO_DIR"
    assert by_name["quick"].value is True and by_name["quick"].source == "$RECSYS_NB_QUICK"
    assert "s3cret" not in str(by_name["mongodb_uri"].value)
    assert by_name["mongodb_uri"].source == "$MONGODB_URI"
    assert {"models", "cache", "exports", "data_root", "jax_cache"} <= set(by_name)


@pytest.mark.parametrize(
    ("value", "quick"), [("1", True), ("TRUE", True), ("0", False), ("", False)]
)
def test_quick_mode_from_the_environment(clean_env, value, quick):
    clean_env.setenv(settings.QUICK_ENV, value)
    assert settings.quick() is quick
    assert settings.quick(not quick) is (not quick)  # an explicit value wins


def test_a_model_loads_by_name_from_the_models_folder(clean_env, tmp_path, tiny_product_model):
    import shutil

    import recsys_nb

    clean_env.setenv(settings.HOME_ENV, str(tmp_path))
    shutil.copytree(tiny_product_model.path, tmp_path / "models" / "tiny")
    clean_env.chdir(tmp_path)  # a bare name is looked up in the models folder, not here
    assert recsys_nb.load_model("tiny").path == tmp_path / "models" / "tiny"
    with pytest.raises(recsys_nb.RecsysError, match="not a model folder"):
        recsys_nb.load_model("missing")
