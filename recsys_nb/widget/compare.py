"""Side by side: the recommendations of two to four embeddings for the same query.

``RecommenderWidget(model="models/products", compare=["cnn", "hog"])``: the widget's own
store gives the first row; each entry of ``compare`` adds one: a model folder or name
(``"cnn"``: the pretrained CNN; ``"models/fashion"``...), ``"hog"`` or ``"colour_hist"``
(a :class:`~recsys_nb.recommend.FeatureStore` over the catalogue's images), or any store. A
dict names the rows. Every row answers the same query under the same filters.

Each recommendation is marked with the labels it shares with the query (its articleType,
its baseColour: :data:`MATCH_GROUPS`), and each row gives the share of its
recommendations that do: the product's claim (the autoencoder matches by shape, a CNN by
colour) seen on the user's own catalogue.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import RecsysError
from ..protocol import StoreBase
from .catalog import plain
from .contract import CONTRACT

MATCH_GROUPS = (("articleType", "label"), ("baseColour",))
"""The labels a recommendation is checked against the query on: the first column of each
group that the catalogue has (Fashion-MNIST has ``label`` and no colour)."""
SAME_WORDS: dict[str, str] = CONTRACT["same_words"]
"""How a shared label is called in the view (contract.json: the front end reads it too)."""
MAX_ROWS = 4
"""The widget's own row and at most three compared ones."""


def match_columns(meta: pd.DataFrame) -> list[str]:
    """The columns of :data:`MATCH_GROUPS` that ``meta`` has."""
    found = (next((c for c in group if c in meta.columns), None) for group in MATCH_GROUPS)
    return [c for c in found if c is not None]


def row_name(store, default: str = "model") -> str:
    """A row's title: its model's name (``products``, ``cnn``; a store's ``model_name``,
    which loads nothing), the store's own ``name`` (``hog``), or ``default``."""
    if isinstance(store, StoreBase):
        name = store.model_name
    else:  # any object with recommend(): its model, a name or an object with one
        model = getattr(store, "model", None)
        name = model if isinstance(model, str) else getattr(model, "name", None)
    return str(name or getattr(store, "name", None) or default)


def catalog_folder(store, catalog):
    """The catalogue folder the compared embeddings read: ``catalog``, else the one the
    widget's store was embedded from (``None``: each model's own)."""
    if catalog is not None:
        return catalog
    source = getattr(getattr(store, "embeddings", None), "source", None)
    source = source or getattr(store, "source", None)
    return source if source and Path(source, "styles.csv").is_file() else None


def open_compared(compare, store, catalog=None) -> dict[str, object]:
    """``compare`` (see the module doc) as ``{row name: store}``, in order."""
    if compare is None:
        return {}
    if isinstance(compare, str | Path) or callable(getattr(compare, "recommend", None)):
        compare = [compare]
    pairs = compare.items() if isinstance(compare, dict) else [(None, c) for c in compare]
    folder = catalog_folder(store, catalog)
    taken = {row_name(store)}
    out: dict[str, object] = {}
    for name, spec in pairs:
        opened = _open_one(spec, folder)
        name = str(name or row_name(opened, str(spec)))
        while name in taken:
            name += "'"
        taken.add(name)
        out[name] = opened
    if len(out) + 1 > MAX_ROWS:
        raise RecsysError(
            f"compare: at most {MAX_ROWS - 1} embeddings beside the widget's own, got {len(out)}"
        )
    return out


def _open_one(spec, folder):
    if callable(getattr(spec, "recommend", None)):
        return spec
    if not isinstance(spec, str | Path):
        raise RecsysError(
            f"compare: {spec!r} is not a model folder or name ('cnn'), 'hog', "
            "'colour_hist' or a store"
        )
    from ..recommend import FeatureStore, MemoryStore

    if str(spec) in FeatureStore.KINDS:
        return FeatureStore(str(spec), folder)
    return MemoryStore.from_model(spec, folder)


def compared_row(name: str, table, query_labels: dict, meta: pd.DataFrame) -> dict:
    """One row of the ``compared`` trait from a ``recommend`` table: its items (id, score,
    rank and ``same``, the labels shared with the query) and ``share`` per label."""
    ids = [int(i) for i in table["id"]]
    known = meta.reindex(ids)
    items = []
    hits = {c: 0 for c in query_labels}
    for row, (item_id, score, rank) in enumerate(
        zip(ids, table["score"].tolist(), table["rank"].tolist(), strict=True)
    ):
        same = [c for c, value in query_labels.items() if plain(known[c].iloc[row]) == value]
        for c in same:
            hits[c] += 1
        items.append({"id": item_id, "score": float(score), "rank": int(rank), "same": same})
    share = {c: round(n / len(ids), 4) for c, n in hits.items()} if ids else {}
    return {"name": name, "items": items, "share": share, "error": ""}


def compared_rows(widget, table, query: dict, filters) -> list[dict]:
    """The ``compared`` trait for a query (``recommend``'s ``item_id=`` or ``image=``)
    answered by the widget's store with ``table``: that row first, then each compared
    store's answer to the same query (a store that cannot answer it gives a row with an
    ``error``)."""
    meta, item_id = widget.meta, query.get("item_id")
    labels = {}
    if item_id is not None:  # an image query has no labels to match
        labels = {c: plain(meta.loc[item_id, c]) for c in match_columns(meta)}
    rows = [compared_row(widget.row_names[0], table, labels, meta)]
    for name, store in widget.compared_stores.items():
        try:
            answer = store.recommend(**query, k=widget.k, filters=filters)
        except RecsysError as exc:
            rows.append({"name": name, "items": [], "share": {}, "error": str(exc)})
        else:
            rows.append(compared_row(name, answer, labels, meta))
    return rows


def comparison_table(rows: list[dict], meta: pd.DataFrame) -> pd.DataFrame:
    """The ``compared`` rows as one long table: embedding, rank, id, score, ``same_<label>``
    (True when the recommendation shares it with the query), then the catalogue's name."""
    columns = match_columns(meta)
    records = [
        {
            "embedding": row["name"],
            "rank": item["rank"],
            "id": item["id"],
            "score": item["score"],
            **{f"same_{c}": c in item["same"] for c in columns},
        }
        for row in rows
        for item in row["items"]
    ]
    table = pd.DataFrame.from_records(
        records, columns=["embedding", "rank", "id", "score", *(f"same_{c}" for c in columns)]
    )
    names = [c for c in ("productDisplayName", *columns) if c in meta.columns]
    extra = meta[names].reindex(np.asarray(table["id"], dtype=np.int64)).reset_index(drop=True)
    return pd.concat([table, extra], axis=1)


def comparison_shares(rows: list[dict]) -> pd.DataFrame:
    """Per embedding, the share of its recommendations that share each label with the query."""
    return pd.DataFrame(
        [{"embedding": r["name"], **r["share"]} for r in rows if not r["error"]]
    ).set_index("embedding")
