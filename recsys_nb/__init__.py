"""recsys-nb: visual product recommendation with a Keras 3 (JAX) convolutional autoencoder.

The pipeline, one module per stage: ``data`` -> ``model`` -> ``train`` -> ``embed``
-> ``recommend`` -> ``evaluate``. Keras is set to the JAX backend before it is
first imported (see ``_backend``).
"""

from importlib.metadata import version as _version

__version__ = _version("recsys-nb")  # one number with the widget: widgets-react/package.json

from ._backend import ensure_backend

ensure_backend()

from .data import (  # noqa: E402
    Dataset,
    data_root,
    is_validation,
    load_catalog,
    load_dataset,
    load_fashion_mnist,
    load_image,
    load_image_folder,
)
from .embed import Embeddings, embed, embed_catalog, prepare_image  # noqa: E402
from .errors import RecsysError  # noqa: E402
from .evaluate import evaluate  # noqa: E402
from .model import TrainedModel, build_autoencoder, load_model, save_model  # noqa: E402
from .mongod import LocalMongo, local_mongo, redact_uri  # noqa: E402
from .recommend import MemoryStore, top_k  # noqa: E402
from .store import MongoStore  # noqa: E402
from .train import refit_latent_transform, train  # noqa: E402

__all__ = [
    "Dataset",
    "Embeddings",
    "LatentExplorer",
    "LocalMongo",
    "MemoryStore",
    "MongoStore",
    "RecommenderWidget",
    "RecsysError",
    "TrainedModel",
    "build_autoencoder",
    "data_root",
    "embed",
    "embed_catalog",
    "evaluate",
    "export_recommendations_html",
    "export_umap_html",
    "is_validation",
    "load_catalog",
    "load_cnn",
    "load_dataset",
    "load_fashion_mnist",
    "load_image",
    "load_image_folder",
    "load_model",
    "local_mongo",
    "prepare_image",
    "redact_uri",
    "refit_latent_transform",
    "save_model",
    "top_k",
    "train",
]


def __getattr__(name):
    # The pretrained CNN (EfficientNet-Lite0): loaded only when asked for.
    if name == "load_cnn":
        from .cnn import load_cnn

        return load_cnn
    # The notebook widget imports anywidget/ipywidgets: load it only when asked for.
    if name == "RecommenderWidget":
        from .widget import RecommenderWidget

        return RecommenderWidget
    # The explore stage (plotly, umap-learn, ipywidgets): also loaded only when asked for.
    if name in ("LatentExplorer", "export_umap_html", "export_recommendations_html"):
        from . import explore

        return getattr(explore, name)
    raise AttributeError(f"module 'recsys_nb' has no attribute {name!r}")
