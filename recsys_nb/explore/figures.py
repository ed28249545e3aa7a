"""Plotly figures of the latent space (the map, a model's loss curves, recommendation
rows as pictures) and a static PNG of the map drawn with PIL."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from ..data import Dataset
from ..errors import RecsysError
from ..model import load_model
from .colours import OUTLINE_COLOUR, base_colour, colour_marker, needs_outline
from .images import _font, data_uri, thumbnails

COLOR_COLUMNS = ("articleType", "baseColour", "masterCategory", "subCategory", "gender")
MAX_LEGEND = 12  # categories shown by name in a map; the rest become "other"
PRODUCT_COLOUR_COLUMN = "baseColour"  # drawn in the products' own colours
OTHER_COLOUR = "lightgrey"
# points left out of a selection (lasso, box, selectedpoints) turn light grey, not hidden
SELECTED_STYLE = {"marker": {"opacity": 1.0}}
UNSELECTED_STYLE = {"marker": {"color": "#cfcfcf", "opacity": 0.35}}


def _categories(values: pd.Series, max_legend: int | None = MAX_LEGEND) -> pd.Series:
    """The values as text (empty: ``(none)``); beyond the ``max_legend`` most common
    (``None``: no limit), ``other``."""
    values = values.astype(str).replace("", "(none)")
    if max_legend is None:
        return values
    top = values.value_counts().index[:max_legend]
    return values.where(values.isin(top), "other")


def _legend_order(groups: pd.Series) -> list[str]:
    return [*groups.value_counts().index.drop("other", errors="ignore"), "other"]


def _hover_text(frame: pd.DataFrame) -> list[str]:
    name = next((c for c in ("productDisplayName", "name", "label") if c in frame.columns), None)
    parts = [frame.index.astype(str)]
    if name:
        parts.append(frame[name].astype(str))
    extra = [c for c in ("articleType", "baseColour") if c in frame.columns]
    for c in extra:
        parts.append(frame[c].astype(str))
    return [" · ".join(p) for p in zip(*parts, strict=True)]


def map_figure(
    frame: pd.DataFrame,
    color: str = "articleType",
    *,
    widget: bool = False,
    title: str = "",
    thumbnails_uri: Sequence[str] | None = None,
    max_legend: int | None = None,
):
    """A scatter plot of a :func:`projection_frame`, one trace per category of ``color``.

    ``color="baseColour"`` draws each category in the product colour itself (Navy Blue
    navy, Mustard mustard, light ones such as White with a dark outline, Multi as
    diamonds, an unknown name grey) and lists every colour; other columns show the
    ``max_legend`` (default 12) most common categories and the rest, grey, as "other".
    Points left out of a lasso or box selection (or of ``selectedpoints``) turn light grey.
    Points carry their id in ``customdata`` (and a thumbnail data URI as second field when
    ``thumbnails_uri`` is given, for the HTML export). ``widget=True`` returns a
    :class:`~recsys_nb.explore.static.LiveFigure` (a ``go.FigureWidget`` for callbacks in
    a notebook, whose saved output also holds a PNG), else a ``go.Figure``.
    """
    import plotly.graph_objects as go

    if color not in frame.columns:
        raise RecsysError(f"cannot colour by {color!r}: the table has {', '.join(frame.columns)}")
    product_colours = color == PRODUCT_COLOUR_COLUMN
    if max_legend is None and not product_colours:
        max_legend = MAX_LEGEND
    groups = _categories(frame[color], max_legend)
    text = np.asarray(_hover_text(frame), dtype=object)
    ids = frame.index.to_numpy()
    traces = []
    for value in _legend_order(groups):
        mask = (groups == value).to_numpy()
        if not mask.any():
            continue
        custom = ids[mask][:, None]
        if thumbnails_uri is not None:
            custom = np.column_stack([ids[mask], np.asarray(thumbnails_uri, dtype=object)[mask]])
        if value == "other":
            marker = {"size": 5, "opacity": 0.8, "color": OTHER_COLOUR}
        elif product_colours:
            marker = colour_marker(value)
        else:
            marker = {"size": 5, "opacity": 0.8}
        traces.append(
            go.Scattergl(
                x=frame["x"].to_numpy()[mask],
                y=frame["y"].to_numpy()[mask],
                mode="markers",
                name=f"{value} ({int(mask.sum())})",
                text=text[mask],
                customdata=custom,
                hovertemplate="%{text}<extra></extra>",
                marker=marker,
                selected=SELECTED_STYLE,
                unselected=UNSELECTED_STYLE,
            )
        )
    layout = {
        "title": title or f"coloured by {color}",
        "template": "plotly_white",
        "height": 560,
        "dragmode": "lasso",
        "legend": {"itemsizing": "constant"},
        "xaxis": {"showticklabels": False, "title": ""},
        "yaxis": {"showticklabels": False, "title": ""},
        "margin": {"l": 10, "r": 10, "t": 40, "b": 10},
    }
    if widget:  # live in JupyterLab, a picture everywhere else
        from .static import LiveFigure

        return LiveFigure(data=traces, layout=layout)
    return go.Figure(data=traces, layout=layout)


def history_figure(model):
    """Training and validation loss per epoch of a trained model (a ``FigureWidget`` whose
    notebook output also holds a PNG, :class:`~recsys_nb.explore.static.LiveFigure`)."""
    from .static import LiveFigure

    history = load_model(model).meta.get("history", {})
    fig = LiveFigure(
        layout={
            "title": f"{load_model(model).name}: loss per epoch",
            "template": "plotly_white",
            "height": 320,
            "xaxis": {"title": "epoch"},
            "yaxis": {"title": "loss"},
            "margin": {"t": 30},
        }
    )
    for key in ("loss", "val_loss"):
        values = history.get(key, [])
        fig.add_scatter(x=list(range(1, len(values) + 1)), y=values, name=key, mode="lines+markers")
    return fig


def recommendation_figure(store, query_ids, k: int = 6, data: Dataset | None = None):
    """Queries and their recommendations as a plotly figure of pictures (hover: name, score)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    meta = store.meta
    xs, ys, texts = [], [], []
    for r, qid in enumerate(query_ids):
        table = store.recommend(qid, k=k)
        ids = [qid, *table["id"].tolist()]
        scores = [None, *table["score"].tolist()]
        pics = thumbnails(ids, meta, data, store=store)
        for c, (item, pic) in enumerate(zip(ids, pics, strict=True)):
            fig.add_layout_image(
                source=data_uri(pic),
                x=c,
                y=-r,
                xref="x",
                yref="y",
                sizex=0.9,
                sizey=0.9,
                xanchor="center",
                yanchor="middle",
                sizing="contain",
                layer="above",
            )
            known = item in meta.index
            label = _hover_text(meta.loc[[item]])[0] if known else str(item)
            xs.append(c)
            ys.append(-r)
            texts.append(("query: " if c == 0 else f"#{c}, score {scores[c]:.3f}: ") + label)
    fig.add_scatter(
        x=xs,
        y=ys,
        text=texts,
        mode="markers",
        hovertemplate="%{text}<extra></extra>",
        marker={"size": 40, "opacity": 0},
        showlegend=False,
    )
    n = len(query_ids)
    fig.update_layout(
        template="plotly_white",
        width=110 * (k + 1) + 40,
        height=140 * n + 60,
        title="products like these (first column: the query)",
        xaxis={"range": [-0.5, k + 0.5], "visible": False},
        yaxis={"range": [-n + 0.5, 0.5], "visible": False, "scaleanchor": "x", "scaleratio": 1.33},
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return fig


def save_map_png(frame: pd.DataFrame, path, color: str = "masterCategory", size=(900, 640)) -> Path:
    """A static picture of the map (PIL, no plotly export engine needed): one dot per item;
    by ``baseColour`` each dot in its product colour (light ones outlined)."""
    palette = [
        "#1f77b4",
        "#ff7f0e",
        "#2ca02c",
        "#d62728",
        "#9467bd",
        "#8c564b",
        "#e377c2",
        "#7f7f7f",
        "#bcbd22",
        "#17becf",
        "#393b79",
        "#637939",
    ]
    product_colours = color == PRODUCT_COLOUR_COLUMN
    groups = _categories(frame[color], None if product_colours else len(palette) - 1)
    width, height = size
    legend_w = 190
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    x, y = frame["x"].to_numpy(), frame["y"].to_numpy()
    m = 20
    px = m + (x - x.min()) / max(np.ptp(x), 1e-9) * (width - legend_w - 2 * m)
    py = m + (1 - (y - y.min()) / max(np.ptp(y), 1e-9)) * (height - 2 * m)
    font = _font(13)
    for n, value in enumerate(_legend_order(groups)):
        if value == "other":
            colour = "#c8c8c8"
        else:
            colour = base_colour(value) if product_colours else palette[n % len(palette)]
        outline = OUTLINE_COLOUR if product_colours and needs_outline(colour) else None
        mask = (groups == value).to_numpy()
        if not mask.any():
            continue
        for a, b in zip(px[mask], py[mask], strict=True):
            draw.ellipse((a - 2, b - 2, a + 2, b + 2), fill=colour, outline=outline)
        ly = m + 20 * n
        if ly + 14 > height:
            continue  # more categories than the legend has room for
        box = (width - legend_w + 4, ly + 3, width - legend_w + 14, ly + 13)
        draw.ellipse(box, fill=colour, outline=outline)
        draw.text(
            (width - legend_w + 20, ly), f"{value} ({int(mask.sum())})", fill="black", font=font
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path
