"""The widget as a picture: what a reader without a kernel (GitHub, nbviewer) sees.

A notebook saved without widget state shows only the outputs' static forms, so
:class:`~recsys_nb.widget.RecommenderWidget` adds a PNG to its output: the query and its
recommendations (rank, score and name under each) when there is a query (with
``compare=``, one line per embedding, marks and shares included), else the first grid
page. Drawn with Pillow from the widget's own thumbnails; a palette PNG of a few tens of
KB.
"""

from __future__ import annotations

import io

from PIL import Image, ImageDraw, ImageFont

CELL = (120, 160)  # a thumbnail's box, as in the widget
CAPTION = 30  # pixels of text under each thumbnail
GAP = 8
COLUMNS = 6
TITLE = 24


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without scalable default font
        return ImageFont.load_default()


def _thumbnail(data: tuple[bytes, str] | None) -> Image.Image:
    box = Image.new("RGB", CELL, "white")
    if data is None:
        return box
    try:
        img = Image.open(io.BytesIO(data[0])).convert("RGB")
    except OSError:
        return box
    scale = min(CELL[0] / img.width, CELL[1] / img.height)  # up or down, to fill the box
    img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))))
    box.paste(img, ((CELL[0] - img.width) // 2, (CELL[1] - img.height) // 2))
    return box


def _fit(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def _sheet(width: int, height: int, title: str):
    """A white sheet with ``title`` at the top: ``(sheet, draw, caption font, bold font)``."""
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    small, bold = _font(11), _font(14)
    draw.text((GAP, 5), _fit(draw, title, bold, width - 2 * GAP), fill=(30, 30, 30), font=bold)
    return sheet, draw, small, bold


def _card(sheet: Image.Image, draw: ImageDraw.ImageDraw, font, x: int, y: int, card) -> None:
    """One ``(caption line 1, caption line 2, thumbnail)`` card, its box's corner at x, y."""
    line1, line2, thumb = card
    sheet.paste(_thumbnail(thumb), (x, y))
    draw.rectangle((x - 1, y - 1, x + CELL[0], y + CELL[1]), outline=(225, 225, 225))
    for dy, line, colour in ((2, line1, (0, 0, 0)), (15, line2, (90, 90, 90))):
        text = _fit(draw, line, font, CELL[0])
        draw.text((x, y + CELL[1] + dy), text, fill=colour, font=font)


def _save(sheet: Image.Image) -> bytes:
    out = io.BytesIO()
    palette = sheet.quantize(colors=128, method=Image.Quantize.MEDIANCUT)
    palette.save(out, format="PNG", optimize=True)
    return out.getvalue()


def picture(title: str, cards: list[tuple[str, str, tuple[bytes, str] | None]]) -> bytes:
    """A PNG: ``title`` over a grid of ``(caption line 1, caption line 2, thumbnail)``."""
    rows = max(1, -(-len(cards) // COLUMNS))
    cols = max(1, min(COLUMNS, len(cards)))
    width = GAP + cols * (CELL[0] + GAP)
    height = TITLE + GAP + rows * (CELL[1] + CAPTION + GAP)
    sheet, draw, small, _ = _sheet(width, height, title)
    for n, card in enumerate(cards):
        x = GAP + (n % COLUMNS) * (CELL[0] + GAP)
        y = TITLE + GAP + (n // COLUMNS) * (CELL[1] + CAPTION + GAP)
        _card(sheet, draw, small, x, y, card)
    return _save(sheet)


def rows_picture(title: str, rows: list[tuple[str, list]]) -> bytes:
    """A PNG: ``title`` over one line of cards per ``(heading, cards)`` (cards as in
    :func:`picture`), each line under its heading."""
    cols = max([1, *(len(cards) for _, cards in rows)])
    width = GAP + cols * (CELL[0] + GAP)
    line = TITLE + CELL[1] + CAPTION + GAP
    sheet, draw, small, bold = _sheet(width, TITLE + GAP + len(rows) * line, title)
    for r, (heading, cards) in enumerate(rows):
        top = TITLE + GAP + r * line
        draw.text((GAP, top + 4), _fit(draw, heading, bold, width), fill=(25, 90, 170), font=bold)
        for n, card in enumerate(cards):
            _card(sheet, draw, small, GAP + n * (CELL[0] + GAP), top + TITLE, card)
    return _save(sheet)


def compare_picture(widget) -> bytes:
    """The comparison view: the query, then each embedding's recommendations, marked."""
    from .compare import SAME_WORDS

    rows, names, query = widget.compared, widget._names, widget.selected
    ids = [i["id"] for row in rows for i in row["items"]]
    thumbs = widget._thumbnail.many(([] if query is None else [query]) + ids)
    query_name = "an image" if query is None else str(names.get(query, f"#{query}"))
    lines = [("query", [("query", query_name, thumbs.get(query))])] if query is not None else []
    for row in rows:
        shares = ", ".join(
            f"same {SAME_WORDS.get(c, c)} {round(v * len(row['items']))}/{len(row['items'])}"
            for c, v in row["share"].items()
        )
        cards = [
            (
                " ".join([f"#{i['rank']}", *(f"+{SAME_WORDS.get(c, c)}" for c in i["same"])]),
                str(names.get(i["id"], f"#{i['id']}")),
                thumbs.get(i["id"]),
            )
            for i in row["items"]
        ]
        lines.append((f"{row['name']}: {row['error'] or shares}", cards))
    return rows_picture(f"Recommendations for {query_name}, compared", lines)


def widget_picture(widget) -> bytes:
    """The widget's current view as a PNG (see the module docstring)."""
    if widget.compared:
        return compare_picture(widget)
    recs = list(widget.recommendations)
    if widget.selected is not None and recs:
        ids = [widget.selected] + [r["id"] for r in recs]
        thumbs = widget._thumbnail.many(ids)
        names = widget._names
        query = widget.selected
        cards = [("query", str(names.get(query, f"#{query}")), thumbs.get(query))]
        for r in recs:
            score = "" if r.get("score") is None else f" · {r['score']:.3f}"
            name = str(names.get(r["id"], f"#{r['id']}"))
            cards.append((f"#{r['rank']}{score}", name, thumbs.get(r["id"])))
        title = f"Recommendations for {names.get(query, query)} (k={len(recs)})"
        return picture(title, cards)
    shown = min(widget.page_size, 2 * COLUMNS)
    ids = [int(i) for i in widget.page_ids(widget.search, widget.filters)[:shown]]
    thumbs = widget._thumbnail.many(ids)
    cards = [(f"#{i}", str(widget._names.get(i, "")), thumbs.get(i)) for i in ids]
    total = len(widget.meta)
    return picture(f"RecommenderWidget: {total} products; click one for its recommendations", cards)
