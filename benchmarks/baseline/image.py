"""One PNG per creation, drawn with Pillow at the cost of the suite's offline image: a 3x3
colour grid scaled up into a gradient, a blurred layer of 5-9 translucent shapes and a sharp
layer of 3-6, composited, then encoded as PNG (Pillow's default compression)."""

from __future__ import annotations

import colorsys
import hashlib
import io
import math
import random

from PIL import Image, ImageDraw, ImageFilter

RGB = tuple[int, int, int]


def draw_png(key: str, side: int) -> bytes:
    """The PNG bytes of a `side` x `side` picture decided by `key` (same key, same picture)."""
    dice = random.Random(hashlib.sha256(key.encode()).digest())  # noqa: S311 - pixels, not secrets
    palette = _palette(dice)
    size = (side, side)
    grid = Image.new("RGB", (3, 3))
    grid.putdata([dice.choice(palette) for _ in range(9)])
    picture = grid.resize(size, Image.Resampling.BICUBIC).convert("RGBA")
    for shapes, blur in ((5 + dice.randrange(5), side / 40), (3 + dice.randrange(4), 0.0)):
        layer = Image.new("RGBA", size, (0, 0, 0, 0))
        pen = ImageDraw.Draw(layer)
        for _ in range(shapes):
            _shape(pen, dice, palette, side)
        if blur:
            layer = layer.filter(ImageFilter.GaussianBlur(blur))
        picture.alpha_composite(layer)
    out = io.BytesIO()
    picture.convert("RGB").save(out, format="PNG")
    return out.getvalue()


def _palette(dice: random.Random) -> list[RGB]:
    base = dice.random()
    colours: list[RGB] = []
    for offset in dice.choice(((0.0, 0.08, 0.16), (0.0, 0.5, 0.06), (0.0, 1 / 3, 2 / 3))):
        for _shade in range(2):
            red, green, blue = colorsys.hsv_to_rgb(
                (base + offset) % 1.0, dice.uniform(0.35, 0.9), dice.uniform(0.45, 1.0)
            )
            colours.append((round(red * 255), round(green * 255), round(blue * 255)))
    return colours


def _shape(pen: ImageDraw.ImageDraw, dice: random.Random, palette: list[RGB], side: int) -> None:
    x, y = dice.uniform(0, side), dice.uniform(0, side)
    radius = side * dice.uniform(0.04, 0.3)
    fill = (*dice.choice(palette), 90 + dice.randrange(120))
    box = (x - radius, y - radius, x + radius, y + radius)
    kind = dice.choice(("disc", "ring", "box", "triangle"))
    if kind == "disc":
        pen.ellipse(box, fill=fill)
    elif kind == "ring":
        pen.ellipse(box, outline=fill, width=max(1, round(radius * dice.uniform(0.08, 0.3))))
    elif kind == "box":
        pen.rounded_rectangle(box, radius=radius * dice.uniform(0.0, 0.5), fill=fill)
    else:
        turn = dice.uniform(0, 2 * math.pi)
        corners = [
            (
                x + radius * math.cos(turn + k * 2 * math.pi / 3),
                y + radius * math.sin(turn + k * 2 * math.pi / 3),
            )
            for k in range(3)
        ]
        pen.polygon(corners, fill=fill)
