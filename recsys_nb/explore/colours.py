"""The catalogue's ``baseColour`` names as colours to draw with.

Every value of the shared catalogue's ``baseColour`` column has a hex colour here (the
catalogue's 46 names); an unknown or empty name is drawn grey. Light colours (White,
Off White, Cream, ...) get a dark outline so that their markers show on a white page.
"""

from __future__ import annotations

BASE_COLOURS: dict[str, str] = {
    "Beige": "#e3d5b8",
    "Black": "#111111",
    "Blue": "#2563d0",
    "Bronze": "#cd7f32",
    "Brown": "#8b5a2b",
    "Burgundy": "#800020",
    "Charcoal": "#36454f",
    "Coffee Brown": "#6f4e37",
    "Copper": "#b87333",
    "Cream": "#fff5d6",
    "Fluorescent Green": "#39ff14",
    "Gold": "#d4af37",
    "Green": "#2e8b3a",
    "Grey": "#808080",
    "Grey Melange": "#a9a9b0",
    "Khaki": "#c3b091",
    "Lavender": "#c3a6e0",
    "Lime Green": "#32cd32",
    "Magenta": "#d0208f",
    "Maroon": "#800000",
    "Mauve": "#b784a7",
    "Metallic": "#aaa9ad",
    "Multi": "#c71585",  # many colours: drawn as diamonds, see MULTI_SYMBOL
    "Mushroom Brown": "#a39382",
    "Mustard": "#e1ad01",
    "Navy Blue": "#1b2a5e",
    "Nude": "#e3bc9a",
    "Off White": "#f5f3e8",
    "Olive": "#808000",
    "Orange": "#ff8c00",
    "Peach": "#ffcba4",
    "Pink": "#ff8fb1",
    "Purple": "#7b3fa0",
    "Red": "#d62728",
    "Rose": "#e8768a",
    "Rust": "#b7410e",
    "Sea Green": "#2e8b57",
    "Silver": "#c0c0c0",
    "Skin": "#e8b896",
    "Steel": "#71797e",
    "Tan": "#d2b48c",
    "Taupe": "#483c32",
    "Teal": "#008080",
    "Turquoise Blue": "#30d5c8",
    "White": "#ffffff",
    "Yellow": "#ffd600",
}
UNKNOWN_COLOUR = "#9e9e9e"  # grey: a name not above, or none
OUTLINE_COLOUR = "#333333"
MULTI_SYMBOL = "diamond"
LIGHT = 0.5  # relative luminance above which a marker gets the dark outline


def base_colour(name) -> str:
    """The hex colour of a ``baseColour`` name (any case, spaces trimmed); grey if unknown."""
    text = str(name).strip()
    found = BASE_COLOURS.get(text)
    if found is None:
        lower = {k.lower(): v for k, v in BASE_COLOURS.items()}
        found = lower.get(text.lower(), UNKNOWN_COLOUR)
    return found


def luminance(hex_colour: str) -> float:
    """Relative luminance (WCAG) of ``#rrggbb``: 0 for black, 1 for white."""
    channels = [int(hex_colour.lstrip("#")[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def needs_outline(hex_colour: str) -> bool:
    """True for colours too light to see on white without a dark outline."""
    return luminance(hex_colour) > LIGHT


def colour_marker(name, size: float = 5) -> dict:
    """A plotly marker drawn in the product colour ``name``: outlined when light,
    a diamond for ``Multi``."""
    colour = base_colour(name)
    outline = needs_outline(colour)
    marker = {
        "size": size,
        "color": colour,
        "opacity": 0.9,
        "line": {"color": OUTLINE_COLOUR, "width": 1 if outline else 0},
    }
    if str(name).strip().lower() == "multi":
        marker.update(
            symbol=MULTI_SYMBOL, size=size + 2, line={"color": OUTLINE_COLOUR, "width": 1}
        )
    return marker
