"""Stage 1: loaders, preprocessing, bad files and the split by id."""

import numpy as np
import pandas as pd
import pytest

import recsys_nb
from conftest import write_image
from recsys_nb.data import FASHION_MNIST_CLASSES, load_image, read_idx


def test_fashion_mnist_shapes_dtypes_and_ranges():
    test = recsys_nb.load_fashion_mnist("test")
    assert test.images.shape == (10000, 28, 28, 1)
    assert test.images.dtype == np.float32
    assert 0.0 == test.images.min() and test.images.max() == 1.0
    counts = test.meta["label"].value_counts()
    assert set(counts.index) == set(FASHION_MNIST_CLASSES) and (counts == 1000).all()
    np.testing.assert_array_equal(test.ids, np.arange(10000))


def test_fashion_mnist_found_through_keras_cache(tmp_path, monkeypatch, shared_data):
    cache = tmp_path / "keras" / "datasets" / "fashion-mnist"
    cache.mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (cache / name).symlink_to(shared_data / "fashion-mnist" / name)
    monkeypatch.setenv("RECSYS_NB_DATA", str(tmp_path / "nothing-here"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    assert len(recsys_nb.load_fashion_mnist("test")) == 10000


def test_missing_data_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("RECSYS_NB_DATA", str(tmp_path))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(recsys_nb.RecsysError, match="RECSYS_NB_DATA") as err:
        recsys_nb.load_catalog()
    assert "dataset-fashion-mnist" in str(err.value) and "Kaggle" in str(err.value)


def test_truncated_idx_file_is_refused(tmp_path):
    import gzip

    path = tmp_path / "bad-idx3-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(bytes([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28]) + b"\0" * 100)
    with pytest.raises(recsys_nb.RecsysError, match="truncated"):
        read_idx(path)


def test_catalog_shapes_ids_and_labels(small_catalog):
    data = recsys_nb.load_catalog(small_catalog, cache=False)
    assert data.images.shape == (300, 64, 48, 3)
    assert data.images.dtype == np.float32
    assert 0.0 <= data.images.min() and data.images.max() <= 1.0
    styles = pd.read_csv(small_catalog / "styles.csv")
    np.testing.assert_array_equal(data.ids, styles["id"].to_numpy())
    assert data.meta.loc[21379, "articleType"] == "Track Pants"


def test_catalog_cache_gives_identical_pixels(small_catalog):
    first = recsys_nb.load_catalog(small_catalog)
    again = recsys_nb.load_catalog(small_catalog)
    np.testing.assert_array_equal(first.images, again.images)
    np.testing.assert_array_equal(first.ids, again.ids)


@pytest.mark.parametrize("name", ["generated", "11489.jpg", "13378.jpg"])
def test_grey_jpegs_become_rgb(products_dir, tmp_path, name):
    from PIL import Image

    if name == "generated":
        path = write_image(tmp_path / "grey.jpg", mode="L", colour=(90,))
    else:
        path = products_dir / "images" / name
    assert Image.open(path).mode == "L"
    pixels = load_image(path)
    assert pixels.shape == (64, 48, 3) and pixels.dtype == np.uint8
    assert np.array_equal(pixels[..., 0], pixels[..., 2])  # grey stays grey in RGB


def test_odd_sized_images_are_padded_with_white_not_dropped(tmp_path):
    for size in [(53, 80), (60, 60), (60, 77)]:
        path = write_image(tmp_path / f"{size[0]}x{size[1]}.jpg", size=size, colour=(0, 0, 0))
        pixels = load_image(path)
        assert pixels.shape == (64, 48, 3)
        assert pixels[32, 24].max() < 60  # the dark square stays in the middle
    square = load_image(tmp_path / "60x60.jpg")
    assert square[:4].min() > 240 and square[-4:].min() > 240  # white bands above and below


@pytest.mark.parametrize("name", ["11151.jpg", "1799.jpg", "25943.jpg", "56128.jpg", "59606.jpg"])
def test_shared_odd_sized_products_load(products_dir, name):
    from PIL import Image

    path = products_dir / "images" / name
    assert Image.open(path).size != (60, 80)
    pixels = load_image(path)
    assert pixels.shape == (64, 48, 3)
    assert pixels.min() < 150  # the product is still there, not a blank page


def _catalog_with_corrupt_file(tmp_path):
    folder = tmp_path / "cat"
    write_image(folder / "images" / "1.jpg")
    write_image(folder / "images" / "2.jpg", colour=(0, 200, 0))
    (folder / "images" / "3.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    (folder / "styles.csv").write_text(
        "id,articleType,productDisplayName\n1,Tshirts,red\n2,Tshirts,green\n3,Shirts,broken\n"
    )
    return folder


def test_corrupt_jpeg_error_names_the_file(tmp_path):
    folder = _catalog_with_corrupt_file(tmp_path)
    with pytest.raises(recsys_nb.RecsysError, match=r"3\.jpg"):
        recsys_nb.load_catalog(folder, cache=False)


def test_corrupt_jpeg_skipped_with_warning_and_count(tmp_path):
    folder = _catalog_with_corrupt_file(tmp_path)
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        data = recsys_nb.load_catalog(folder, skip_bad=True, cache=False)
    assert list(data.ids) == [1, 2] and len(data.skipped) == 1
    assert list(data.meta.index) == [1, 2]


def test_rows_without_an_image_are_left_out_with_a_warning(tmp_path):
    folder = _catalog_with_corrupt_file(tmp_path)
    (folder / "images" / "3.jpg").unlink()
    with open(folder / "styles.csv", "a") as styles:
        styles.write("4,Shirts,no file\n")
    for cache in (True, True, False):  # writes the cache, reads it, bypasses it
        with pytest.warns(UserWarning, match=r"2 catalogue row\(s\) have no image .* id: 3"):
            data = recsys_nb.load_catalog(folder, size=(8, 6), cache=cache)
        assert list(data.ids) == [1, 2] and data.skipped == []
        paths = [str(folder / "images" / f"{i}.jpg") for i in (1, 2)]
        assert list(data.meta["image_path"]) == paths


def test_plain_image_folder(tmp_path):
    for i, colour in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255)]):
        write_image(tmp_path / "imgs" / f"p{i}.png", size=(30, 40), colour=colour)
    data = recsys_nb.load_image_folder(tmp_path / "imgs", size=(32, 24))
    assert data.images.shape == (3, 32, 24, 3) and data.images.dtype == np.float32
    assert list(data.meta["name"]) == ["p0", "p1", "p2"]
    assert data.images[0, 16, 12, 0] > 0.9 and data.images[0, 16, 12, 1] < 0.1


def test_split_by_id_is_deterministic_disjoint_and_stable():
    ids = np.arange(10000)
    val = recsys_nb.is_validation(ids, 0.1, seed=0)
    assert 0.08 < val.mean() < 0.12
    np.testing.assert_array_equal(val, recsys_nb.is_validation(ids, 0.1, seed=0))
    # an id's side does not depend on the other ids
    np.testing.assert_array_equal(val[5000:], recsys_nb.is_validation(ids[5000:], 0.1, seed=0))
    assert not np.array_equal(val, recsys_nb.is_validation(ids, 0.1, seed=1))


def test_dataset_split_never_shares_ids(small_catalog):
    train, val = recsys_nb.load_catalog(small_catalog).split(0.2, seed=3)
    assert len(train) + len(val) == 300
    assert not set(train.ids) & set(val.ids)
    assert train.images.shape[0] == len(train.meta) == len(train)
