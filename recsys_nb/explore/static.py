"""Plotly figures that stay readable without a kernel.

A ``go.FigureWidget`` is saved in a notebook as a widget view whose state is not kept,
so GitHub, nbviewer and ``jupyter nbconvert`` show nothing for it. :class:`LiveFigure`
is a ``FigureWidget`` whose output also carries a PNG of the same figure: JupyterLab
shows the live widget, everything else the picture. The picture is drawn with
matplotlib from the figure's scatter and line traces (no browser, no export engine).
"""

from __future__ import annotations

import base64
import io

import numpy as np
import plotly.graph_objects as go

# plotly's default colour sequence, for traces that set no colour
PLOTLY_COLOURS = (
    "#636efa", "#EF553B", "#00cc96", "#ab63fa", "#FFA15A",
    "#19d3f3", "#FF6692", "#B6E880", "#FF97FF", "#FECB52",
)  # fmt: skip
DASHES = {"dash": "--", "dot": ":", "dashdot": "-."}
DEFAULT_SIZE = (800, 450)  # pixels, when the layout gives none


def _text(value) -> str:
    if value is None:
        return ""
    return str(getattr(value, "text", value) or "")


def _colour(value, fallback: str):
    """A colour matplotlib understands, or ``fallback`` (numeric colour arrays go grey)."""
    if value is None:
        return fallback
    if isinstance(value, str):
        return value.replace(" ", "")
    values = list(value)
    if values and all(isinstance(v, str) for v in values):
        return [v.replace(" ", "") for v in values]
    return fallback


def _trace(ax, trace, fallback: str) -> bool:
    """Draw one scatter / line trace; False for other kinds (they are left out)."""
    if trace.type not in ("scatter", "scattergl") or trace.visible in (False, "legendonly"):
        return False
    x = np.asarray(trace.x if trace.x is not None else [], dtype=float)
    y = np.asarray(trace.y if trace.y is not None else [], dtype=float)
    if x.size == 0 and y.size:
        x = np.arange(1, y.size + 1, dtype=float)
    mode = trace.mode or ("lines" if x.size < 20 else "markers")
    marker, line = trace.marker, trace.line
    label = trace.name if trace.showlegend is not False and trace.name else None
    line_colour = _colour(line.color, fallback) if line is not None else fallback
    if "lines" in mode:
        ax.plot(
            x, y, color=line_colour if isinstance(line_colour, str) else fallback,
            linestyle=DASHES.get(getattr(line, "dash", None), "-"),
            linewidth=(getattr(line, "width", None) or 2) * 0.75,
            label=label, zorder=2,
        )  # fmt: skip
        label = None
    if "markers" in mode:
        size = marker.size if marker is not None and marker.size is not None else 6
        size = np.asarray(size, dtype=float)
        edge = marker.line.color if marker is not None and marker.line is not None else None
        edge_width = (marker.line.width or 0) if marker is not None and edge is not None else 0
        ax.scatter(
            x, y, s=(0.75 * size) ** 2,
            c=_colour(marker.color if marker is not None else None, line_colour),
            alpha=marker.opacity if marker is not None and marker.opacity is not None else 1.0,
            edgecolors=_colour(edge, "none") if edge_width else "none",
            linewidths=0.75 * edge_width, label=label, zorder=3,
        )  # fmt: skip
    return True


def figure_png(fig, size: tuple[int, int] | None = None, dpi: int = 100) -> bytes:
    """A PNG of a plotly figure's scatter and line traces, drawn with matplotlib."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    layout = fig.layout
    width, height = size or (layout.width or DEFAULT_SIZE[0], layout.height or DEFAULT_SIZE[1])
    canvas = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    ax = canvas.add_subplot()
    template = layout.template.layout if layout.template is not None else None
    colourway = layout.colorway or (template.colorway if template else None) or PLOTLY_COLOURS
    drawn = sum(
        _trace(ax, trace, colourway[n % len(colourway)]) for n, trace in enumerate(fig.data)
    )
    title = _text(layout.title)
    if drawn < len(fig.data):
        title += f" ({len(fig.data) - drawn} traces not drawn in this picture)"
    ax.set_title(title, fontsize=11, loc="left")
    for axis, set_label, ticks in (
        (layout.xaxis, ax.set_xlabel, ax.set_xticks),
        (layout.yaxis, ax.set_ylabel, ax.set_yticks),
    ):
        set_label(_text(axis.title))
        if axis.showticklabels is False:
            ticks([])
        if axis.range is not None:
            (ax.set_xlim if axis is layout.xaxis else ax.set_ylim)(*axis.range)
    ax.spines[["top", "right"]].set_visible(False)
    handles, labels = ax.get_legend_handles_labels()
    if handles and layout.showlegend is not False:
        rows = max(1, int(height / 22))  # legend entries that fit in a column
        one = len(handles) <= rows
        ax.legend(handles[: 2 * rows], labels[: 2 * rows], loc="upper left",
                  bbox_to_anchor=(1.01, 1), frameon=False, fontsize=8 if one else 7,
                  ncols=1 if one else 2, markerscale=1.5)  # fmt: skip
    canvas.tight_layout()
    raw = io.BytesIO()
    canvas.savefig(raw, format="png")
    # a palette of 128 colours: a tenth of the bytes, so that notebooks stay small
    from PIL import Image

    img = Image.open(raw).convert("RGB")
    img = img.quantize(colors=128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return out.getvalue()


class LiveFigure(go.FigureWidget):
    """A ``FigureWidget`` whose notebook output also holds a PNG of it.

    JupyterLab renders the live widget; GitHub, nbviewer and nbconvert, which cannot
    (a notebook keeps no widget state), render the picture.
    """

    def _repr_mimebundle_(self, include=None, exclude=None, **kwargs):
        bundle = super()._repr_mimebundle_(include=include, exclude=exclude, **kwargs)
        bundle["image/png"] = base64.b64encode(figure_png(self)).decode("ascii")
        bundle["text/plain"] = f"<figure: {_text(self.layout.title) or 'plotly'}>"
        return bundle


def live(fig) -> LiveFigure:
    """``fig`` (a ``go.Figure`` or ``FigureWidget``) as a :class:`LiveFigure`."""
    return fig if isinstance(fig, LiveFigure) else LiveFigure(fig)
