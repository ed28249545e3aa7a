"""The pretrained CNN (recsys_nb.cnn), its torch-free weight reader (recsys_nb.pth), its
feature cache, its rows in the evaluation and its use where a model goes."""

from __future__ import annotations

import os
import pickle
import shutil
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import recsys_nb
from recsys_nb import cnn
from recsys_nb.data import load_catalog
from recsys_nb.errors import RecsysError
from recsys_nb.evaluate import PRODUCT_LABELS, evaluate
from recsys_nb.pth import UnsafeWeightsError, load_state_dict

N_IMAGES = 6  # real catalogue photos per test: the network's tests stay at seconds


@pytest.fixture(scope="module")
def state():
    return load_state_dict(cnn.weights_path())


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An empty RECSYS_NB_HOME: a fresh feature cache and models folder."""
    monkeypatch.setenv("RECSYS_NB_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def catalog(tmp_path, products_dir) -> Path:
    """A 6-item catalogue folder of real photos, copied (so a test may change one)."""
    folder = tmp_path / "catalog"
    lines = (products_dir / "styles.csv").read_text().splitlines()[: N_IMAGES + 1]
    (folder / "images").mkdir(parents=True)
    (folder / "styles.csv").write_text("\n".join(lines) + "\n")
    for line in lines[1:]:
        name = f"{line.split(',', 1)[0]}.jpg"
        shutil.copy(products_dir / "images" / name, folder / "images" / name)
    return folder


@pytest.fixture
def computed(monkeypatch) -> list[int]:
    """How many images each run of the network behind the feature cache got."""
    calls: list[int] = []
    compute = cnn._compute

    def counting(pixels, *args):
        calls.append(len(pixels))
        return compute(pixels, *args)

    monkeypatch.setattr(cnn, "_compute", counting)
    return calls


# --- the weights, read without torch ----------------------------------------------------------


def test_weights_read_without_torch(state):
    assert len(state) == 296
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_blocks.0._depthwise_conv.weight"].shape == (32, 1, 3, 3)
    assert state["_blocks.1._expand_conv.weight"].shape == (96, 16, 1, 1)
    assert state["_blocks.15._project_conv.weight"].shape == (320, 1152, 1, 1)
    assert state["_conv_head.weight"].shape == (1280, 320, 1, 1)
    assert state["_fc.weight"].shape == (1000, 1280)
    assert {v.dtype for k, v in state.items() if "num_batches" not in k} == {np.dtype("float32")}
    tracked = state["_bn0.num_batches_tracked"]
    assert tracked.shape == () and tracked.dtype == np.int64
    assert state["_bn1.running_var"].min() > 0
    assert all(np.isfinite(v).all() for v in state.values())


# A .pth pickle written opcode by opcode (protocol 2), so that no test needs torch to make one.
def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _str(text: str) -> bytes:
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def _int(value: int) -> bytes:
    return b"J" + struct.pack("<i", value)


def _tuple(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"


def _tensor(key: str, numel: int, offset: int, size, stride) -> bytes:
    storage = _tuple(_str("storage"), _global("torch", "FloatStorage"), _str(key), _str("cpu"))
    storage = storage[:-1] + _int(numel) + b"t"  # (..., numel)
    hooks = _global("collections", "OrderedDict") + b")R"
    args = _tuple(
        storage + b"Q",  # BINPERSID: the storage
        _int(offset),
        _tuple(*map(_int, size)),
        _tuple(*map(_int, stride)),
        b"\x89",  # NEWFALSE: requires_grad
        hooks,
    )
    return _global("torch._utils", "_rebuild_tensor_v2") + args + b"R"


def _state_pickle(tensors: dict) -> bytes:
    return b"\x80\x02}(" + b"".join(_str(k) + t for k, t in tensors.items()) + b"u."


def _zip_pth(path: Path, payload: bytes, storages: dict | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", payload)
        archive.writestr("archive/byteorder", "little")
        for key, raw in (storages or {}).items():
            archive.writestr(f"archive/data/{key}", raw)
    return path


def test_zip_checkpoint_storage_offsets_and_strides(tmp_path):
    payload = _state_pickle(
        {"t": _tensor("0", 12, 2, (2, 3), (1, 2)), "every3": _tensor("0", 12, 0, (4,), (3,))}
    )
    flat = np.arange(12, dtype=np.float32)
    path = _zip_pth(tmp_path / "views.pth", payload, {"0": flat.astype("<f4").tobytes()})
    out = load_state_dict(path)
    assert np.array_equal(out["t"], [[2, 4, 6], [3, 5, 7]]) and out["t"].flags.c_contiguous
    assert np.array_equal(out["every3"], [0, 3, 6, 9]) and out["every3"].dtype == np.float32
    past_end = _state_pickle({"t": _tensor("0", 12, 8, (5,), (1,))})
    with pytest.raises(RecsysError, match="runs past its storage"):
        load_state_dict(_zip_pth(tmp_path / "bad.pth", past_end, {"0": flat.tobytes()}))


class _Exploit:
    """Pickles as ``os.system(command)``: what a booby-trapped .pth file holds."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


@pytest.mark.parametrize("legacy", [False, True])
def test_malicious_pickle_is_refused_and_nothing_runs(tmp_path, legacy):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"weight": _Exploit(f"touch {marker}")}, protocol=2)
    assert b"system" in payload  # a GLOBAL for (posix|os).system
    if legacy:  # torch's old format: magic number, protocol, system info, then the object
        path = tmp_path / "evil-legacy.pth"
        header = b"".join(pickle.dumps(x, protocol=2) for x in (0x1950A86A20F9469CFC6C, 1001, {}))
        path.write_bytes(header + payload)
    else:
        path = _zip_pth(tmp_path / "evil.pth", payload)
    with pytest.raises(
        UnsafeWeightsError, match=r"refusing to load .*system.*nothing in it was run"
    ):
        load_state_dict(path)
    assert not marker.exists()
    assert issubclass(UnsafeWeightsError, RecsysError)  # one line on the CLI


def test_other_globals_and_bad_files_are_refused(tmp_path):
    with pytest.raises(UnsafeWeightsError, match=r"asks for (__builtin__|builtins)\.eval"):
        load_state_dict(_zip_pth(tmp_path / "eval.pth", pickle.dumps(eval, protocol=2)))
    # a storage type the reader does not know is a global like any other
    odd = _state_pickle({"t": _tensor("0", 1, 0, (1,), (1,))}).replace(b"FloatStorage", b"Tensor")
    with pytest.raises(UnsafeWeightsError, match="torch.Tensor"):
        load_state_dict(_zip_pth(tmp_path / "odd.pth", odd, {"0": b"\0" * 4}))
    with pytest.raises(RecsysError, match="does not hold a state dict"):
        load_state_dict(_zip_pth(tmp_path / "list.pth", pickle.dumps([1, 2], protocol=2)))
    (tmp_path / "junk.pth").write_bytes(b"not a pickle at all")
    with pytest.raises(RecsysError, match="cannot read weights file"):
        load_state_dict(tmp_path / "junk.pth")


# --- the Keras port against torch's reference code -----------------------------------------------


def test_features_equal_torch_extract_features(products_dir):
    torch = pytest.importorskip("torch")  # the `bench` extra; `make test` installs it
    from efficientnet_lite_pytorch import EfficientNet

    size = cnn.INPUT_SIZE
    ids = [line.split(",", 1)[0] for line in (products_dir / "styles.csv").open()][1:5]
    pixels = cnn._file_pixels([products_dir / "images" / f"{i}.jpg" for i in ids], size, "rgb")
    ours = cnn._run(pixels, size, "rgb")

    reference = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=str(cnn.weights_path()), image_size=size
    ).eval()
    x = (pixels.astype(np.float32) / 255.0 - cnn.MEAN) / cnn.STD
    with torch.no_grad():
        maps = reference.extract_features(torch.from_numpy(x.transpose(0, 3, 1, 2)))
    expected = maps.mean(dim=(2, 3)).numpy()
    assert ours.shape == expected.shape == (4, cnn.FEATURE_DIM)
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-4)
    assert np.abs(expected).max() > 1.0  # real activations, not all zeros


def test_features_of_arrays_pad_white_and_take_grey(rng):
    wide = np.zeros((20, 40, 3), dtype=np.float32)  # black, twice as wide as high
    padded = cnn.prepare(wide, 64)
    assert padded.shape == (1, 64, 64, 3)
    assert padded[0, 0].min() == 255 and padded[0, 32].max() == 0  # white bands above/below
    grey = rng.random((3, 28, 28)).astype(np.float32)  # (n, h, w): Fashion-MNIST-like
    assert np.array_equal(cnn.prepare(grey, 64), cnn.prepare(grey[..., None], 64))
    rgb_of_grey = np.repeat(grey[..., None], 3, axis=-1)
    np.testing.assert_allclose(
        cnn.features(grey[:1], 64), cnn.features(rgb_of_grey[:1], 64), atol=1e-4
    )
    with pytest.raises(RecsysError, match="colour must be"):
        cnn.network(64, "sepia")


# --- the feature cache -----------------------------------------------------------------------


def test_cache_second_call_computes_nothing_and_a_changed_image_is_recomputed(
    home, catalog, computed
):
    items = load_catalog(catalog, size=(16, 12))
    first = cnn.dataset_features(items)
    assert first.shape == (N_IMAGES, cnn.FEATURE_DIM) and computed == [N_IMAGES]
    assert len(list((home / "data" / "cache").glob("cnn-*.npz"))) == 1

    again = cnn.dataset_features(load_catalog(catalog, size=(16, 12)))
    assert computed == [N_IMAGES] and np.array_equal(again, first)
    assert np.array_equal(cnn.dataset_features(items.subset(slice(2, 4))), first[2:4])
    assert computed == [N_IMAGES]  # a subset is in the cache too

    changed = Path(items.meta["image_path"].iloc[1])
    with Image.open(changed) as img:
        img.transpose(Image.Transpose.FLIP_LEFT_RIGHT).rotate(90, expand=True).save(changed)
    after = cnn.dataset_features(load_catalog(catalog, size=(16, 12), cache=False))
    assert computed == [N_IMAGES, 1]  # only the changed image
    assert not np.allclose(after[1], first[1])
    assert np.array_equal(np.delete(after, 1, axis=0), np.delete(first, 1, axis=0))
    (cache,) = (home / "data" / "cache").glob("cnn-*.npz")
    with np.load(cache) as npz:  # the old and the new version of the changed image
        assert len(npz["keys"]) == len(set(npz["keys"].tolist())) == N_IMAGES + 1
    # another input size or colour mode is another cache
    cnn.dataset_features(items.subset(slice(0, 1)), colour="grey")
    assert computed == [N_IMAGES, 1, 1]


def test_cache_of_pixel_datasets(home, computed, rng):
    images = rng.random((4, 28, 28, 1)).astype(np.float32)
    meta = pd_frame(4)
    items = recsys_nb.Dataset("pixels", images, np.arange(4), meta, source="test pixels")
    first = cnn.dataset_features(items)
    assert computed == [4]
    images[2] = 1.0 - images[2]
    second = cnn.dataset_features(items)
    assert computed == [4, 1] and np.array_equal(second[[0, 1, 3]], first[[0, 1, 3]])
    np.testing.assert_allclose(first[0], cnn.features(images[:1])[0], rtol=1e-5, atol=1e-5)


def pd_frame(n: int):
    import pandas as pd

    return pd.DataFrame({"label": ["x"] * n}, index=pd.Index(np.arange(n), name="id"))


# --- evaluation rows, and the CNN where a model goes ----------------------------------------------


def test_evaluate_has_the_cnn_rows(home, tiny_product_model, small_catalog):
    report = evaluate(tiny_product_model, small_catalog, k=10)
    latent = tiny_product_model.latent_dim
    rows = report["results"]
    assert {"cnn", f"cnn_pca{latent}", "model", "pca32", "hog"} <= set(rows)
    for name in ("cnn", f"cnn_pca{latent}"):
        assert set(rows[name]) == set(rows["model"]) == {"precision", "same_colour", "mrr"}
        assert set(rows[name]["precision"]) == set(PRODUCT_LABELS)
        assert 0.0 <= rows[name]["same_colour"] <= 1.0 and 0.0 <= rows[name]["mrr"] <= 1.0
    # pretrained features know the article types far better than chance
    assert rows["cnn"]["precision"]["articleType"] > rows["chance"]["precision"]["articleType"]
    assert set(evaluate(tiny_product_model, small_catalog, cnn=False)["results"]) == set(rows) - {
        "cnn",
        f"cnn_pca{latent}",
    }


def test_evaluate_fashion_mnist_has_the_cnn_rows(home, tmp_path):
    meta = {"dataset": "fashion-mnist", "model_id": "untrained", "split": {"seed": 0}}
    model = recsys_nb.save_model(
        recsys_nb.build_autoencoder((28, 28, 1), latent_dim=8, filters=(4, 8)), tmp_path / "m", meta
    )
    report = evaluate(model, k=5, limit=40)
    rows = report["results"]
    assert report["n_items"] == 40 and {"cnn", "cnn_pca8"} <= set(rows)
    assert set(rows["cnn"]) == set(rows["model"]) == {"precision", "mrr"}
    assert set(rows["cnn_pca8"]["precision"]) == {"label"}


def test_load_model_cnn_embeds_and_recommends(home, catalog):
    model = recsys_nb.load_model("cnn")
    assert isinstance(model, cnn.PretrainedCNN) and isinstance(model, recsys_nb.TrainedModel)
    assert model.input_shape == (cnn.INPUT_SIZE, cnn.INPUT_SIZE, 3)
    assert model.latent_dim == cnn.FEATURE_DIM and model.path == home / "models" / "cnn"
    store = recsys_nb.MemoryStore.from_model(model, catalog)
    assert store.vectors.shape == (N_IMAGES, cnn.FEATURE_DIM)
    assert (model.path / "embeddings.npz").is_file()
    # a new photo through prepare_image + embed: the same vector as its catalogue item's
    first = int(store.ids[0])
    photo = catalog / "images" / f"{first}.jpg"
    vector = recsys_nb.embed(model, recsys_nb.prepare_image(model, photo)[None])[0]
    np.testing.assert_allclose(vector, store.vectors[0], atol=1e-5)
    # the feature run still works after Keras' predict (which donates the weights' buffers)
    assert np.array_equal(cnn.features(np.ones((1, 8, 8, 3))), cnn.features(np.ones((8, 8, 3))))
    table = store.recommend(image=photo, k=3)
    assert int(table["id"].iloc[0]) == first and table["score"].iloc[0] == pytest.approx(1.0)
    with pytest.raises(RecsysError, match="no decoder"):
        model.decode(np.zeros((1, cnn.FEATURE_DIM)), None)


def test_the_cnn_in_mongodb_recommends_from_the_database_alone(home, catalog, tmp_path):
    """Indexed like a trained model; a store bound by name to "cnn" embeds a new image
    with the local weights (no model files in GridFS) and agrees with the memory store."""
    from recsys_nb.mongod import LocalMongo

    memory = recsys_nb.MemoryStore.from_model("cnn", catalog)
    server = LocalMongo(tmp_path / "mongo").start()
    try:
        with recsys_nb.MongoStore(server.uri, database="cnn_test") as store:
            result = store.index("cnn", catalog)
            assert result["stored"] == N_IMAGES
            listed = {m["name"]: m for m in store.list_models()}
            assert listed["cnn"]["files"] == ["meta.json"]
            assert listed["cnn"]["latent_dim"] == cnn.FEATURE_DIM
        shutil.rmtree(home / "models")  # nothing local but the package and its weights
        with recsys_nb.MongoStore(server.uri, database="cnn_test", model="cnn") as remote:
            first = int(memory.ids[0])
            by_id = remote.recommend(first, k=3)
            expected = memory.recommend(first, k=3)
            assert by_id["id"].tolist() == expected["id"].tolist()
            np.testing.assert_allclose(by_id["score"], expected["score"], atol=1e-5)
            by_image = remote.recommend(image=catalog / "images" / f"{first}.jpg", k=1)
            assert int(by_image["id"].iloc[0]) == first
    finally:
        server.stop()
