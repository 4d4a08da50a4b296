"""HTML pieces the report and the slides share: figures (plotly.js inline once), images as data URIs, tables,
and the way each renders a section's gallery, bullet lines and key numbers."""

from __future__ import annotations

import html

from PIL import Image

from core.images import png_data_uri
from core.present.tables import cell_text


class FigureHtml:
    """Turns plotly figures into HTML, embedding plotly.js only in the first one. With `height` (a CSS
    length), every figure drops its own height and fills that much of its container, resizing with it;
    `font_size` sets every figure's base font."""

    def __init__(self, height: str | None = None, font_size: int | None = None):
        self.first, self.height, self.font_size = True, height, font_size

    def __call__(self, fig) -> str:
        options = {}
        if self.font_size:
            fig.update_layout(font_size=self.font_size)
        if self.height:
            fig.update_layout(height=None, width=None, autosize=True)
            options = {"default_height": self.height, "default_width": "100%"}
        out = fig.to_html(full_html=False, include_plotlyjs=self.first,
                          config={"displaylogo": False, "responsive": True}, **options)
        self.first = False
        return out


def image_html(image: Image.Image, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="{png_data_uri(image)}">'


def table_html(rows: list[dict], columns: list[str], highlight: dict[str, int | None] | None = None) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for i, row in enumerate(rows):
        cells = []
        for c in columns:
            value = row.get(c)
            cls = "num" if isinstance(value, (int, float)) else ""
            if highlight and highlight.get(c) == i:
                cls += " best"
            text = "" if value is None else cell_text(c, value)
            cells.append(f'<td class="{cls.strip()}">{html.escape(text)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def esc(text: str) -> str:
    return html.escape(str(text))


def cards_html(cards) -> str:
    return "<div class='cards'>" + "".join(f"<div class='card'>{esc(label)}<b>{esc(value)}</b></div>"
                                           for label, value in cards) + "</div>"


def gallery_html(rows) -> str:
    """Misclassified images with their Grad-CAM: the true and the predicted class under each."""
    return "".join(f"<figure>{image_html(r['saliency'], r['name'])}<figcaption class='muted'>{esc(r['true'])}"
                   f" &rarr; {esc(r['predicted'])} ({r['probability']:.1%})</figcaption></figure>" for r in rows)


def lines_html(lines) -> str:
    return "<ul>" + "".join(f"<li>{esc(line)}</li>" for line in lines) + "</ul>" if lines else ""


def section_body(section, fig: FigureHtml, *, lead: bool = False, gallery: int | None = None) -> str:
    """A section's contents in order (core.present.sections.Section): its paragraph, bullet lines, table,
    figures, gallery (the first `gallery` images) or what an empty one means, and its small print. `lead`:
    paragraphs in the larger type of a slide."""
    paragraph = "<p class='lead'>" if lead else "<p>"
    parts = [f"{paragraph}{esc(section.text)}</p>"] if section.text else []
    parts.append(lines_html(section.lines))
    if section.table:
        parts.append(table_html(section.table.rows, section.table.columns, section.table.highlight))
    parts += [fig(f) for f in section.figures]
    if section.gallery:
        parts.append(f"<div class='gallery'>{gallery_html(section.gallery[:gallery])}</div>")
    elif section.empty:
        parts.append(f"{paragraph}{esc(section.empty)}</p>")
    if section.note:
        parts.append(f"<p class='muted'>{esc(section.note)}</p>")
    return "".join(parts)
