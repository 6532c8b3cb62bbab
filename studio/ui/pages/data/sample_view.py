"""HTML for one example as the model sees it: text pieces (or tokens) that carry loss stand out.

Pure functions from core's RenderedRow to HTML, so they are tested without a window. Tokens that
carry loss are tinted mint, masked ones grey; in the per-token view neighbouring tokens alternate
shade so every token boundary is visible.
"""

from __future__ import annotations

import html

from studio.ui.theme import COLORS

LOSS = ("#123a2c", "#0f3024", "#8af0c8")  # background, alternate background, text
MASKED = ("#1a1f2b", "#212736", "#8e97a8")
STYLE = ("font-family: 'DejaVu Sans Mono', 'Menlo', monospace; font-size: 12px; line-height: 150%;"
         f" color: {COLORS['text']};")


def _escape(text: str, show_spaces: bool = False) -> str:
    out = html.escape(text)
    if show_spaces:
        out = out.replace(" ", "&middot;")
    else:
        out = out.replace("  ", "&nbsp; ")
    return out.replace("\n", "<span style='color:#5f6878'>&#8629;</span><br>")


def pieces_html(pieces: list[tuple[str, bool]]) -> str:
    """Whole pieces of text; loss-carrying ones highlighted."""
    parts = []
    for text, loss in pieces:
        bg, _, fg = LOSS if loss else MASKED
        parts.append(f"<span style='background-color:{bg}; color:{fg};'>{_escape(text)}</span>")
    return f"<div style=\"{STYLE}\">{''.join(parts)}</div>"


def tokens_html(tokens: list[tuple[str, bool]], max_len: int) -> str:
    """One span per token, alternating shade; a marker where max length cuts the example."""
    parts = []
    for i, (text, loss) in enumerate(tokens):
        if i == max_len:
            parts.append(f"<span style='background-color:{COLORS['red']}; color:#fff;'>&nbsp;cut: max length "
                         f"{max_len}&nbsp;</span> ")
        if i >= max_len:  # never seen in training: drawn faint, with no loss colour
            bg, fg = ("#161a23", "#4c5465") if i % 2 == 0 else ("#1b1f29", "#4c5465")
        else:
            bg_a, bg_b, fg = LOSS if loss else MASKED
            bg = bg_a if i % 2 == 0 else bg_b
        parts.append(f"<span style='background-color:{bg}; color:{fg};'>{_escape(text, True) or '&#8203;'}</span>")
    return f"<div style=\"{STYLE}\">{''.join(parts)}</div>"


def legend_html() -> str:
    return (f"<span style='background-color:{LOSS[0]}; color:{LOSS[2]};'>&nbsp;learned from (carries loss)&nbsp;</span>"
            f"&nbsp;&nbsp;<span style='background-color:{MASKED[0]}; color:{MASKED[2]};'>&nbsp;context only (masked)"
            "&nbsp;</span>")
