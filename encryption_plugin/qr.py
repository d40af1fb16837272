"""QR codes of the key export, through segno (terminal text, SVG, PNG).

The QR code carries ``K_root``: render it only when the user asks, never log or upload it.
"""

from __future__ import annotations

import io
from typing import Literal

import segno

__all__ = ["QRKind", "render"]

QRKind = Literal["text", "svg", "png"]


def render(payload: str, kind: QRKind, *, scale: int, border: int) -> str | bytes:
    """Encode ``payload`` (error correction M) as ``kind``.

    ``text`` uses Unicode half blocks (two module rows per text line) and draws the *light*
    modules, so the code reads correctly on the usual dark terminal; ``scale`` does not apply.
    """
    code = segno.make(payload, error="m", micro=False)
    if kind == "text":
        return _half_blocks(code, border)
    if kind == "svg":
        out = io.BytesIO()
        code.save(out, kind="svg", scale=scale, border=border, xmldecl=False)
        return out.getvalue().decode("utf-8")
    if kind == "png":
        out = io.BytesIO()
        code.save(out, kind="png", scale=scale, border=border)
        return out.getvalue()
    raise ValueError(f"unknown QR kind {kind!r}; use text, svg or png")


def _half_blocks(code: segno.QRCode, border: int) -> str:
    # Rows of modules, True = dark. Light modules are drawn, dark ones left blank.
    rows = [[bool(m) for m in row] for row in code.matrix_iter(scale=1, border=border)]
    if len(rows) % 2:
        rows.append([False] * len(rows[0]))
    chars = {
        (False, False): "\u2588",
        (True, False): "\u2584",
        (False, True): "\u2580",
        (True, True): " ",
    }
    lines = []
    for top, bottom in zip(rows[::2], rows[1::2], strict=True):
        lines.append("".join(chars[(t, b)] for t, b in zip(top, bottom, strict=True)))
    return "\n".join(lines) + "\n"
