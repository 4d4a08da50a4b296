"""Self-contained HTML reports: one file, figures and images inline, opens with no network.

The content is core.present.sections' (shared with the slides); plotly.js is embedded once (in the first
figure); images are base64 PNG data URIs.
"""

from __future__ import annotations

from core.fileio import atomic_write_text
from core.present.markup import FigureHtml, cards_html, esc, section_body
from core.present.sections import Story, story
from core.present.slides import render_deck
from core.runs.store import RunStore

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#1f2937}
h1{font-size:1.8rem} h2{border-bottom:1px solid #e5e7eb;padding-bottom:.3rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem} td,th{border:1px solid #e5e7eb;padding:.25rem .6rem}
th{background:#f3f4f6;text-align:left} td.num{text-align:right} td.best{background:#dcfce7;font-weight:600}
.cards{display:flex;gap:1rem;flex-wrap:wrap}.card{border:1px solid #e5e7eb;border-radius:8px;padding:.6rem 1rem}
.card b{display:block;font-size:1.5rem} .muted{color:#6b7280;font-size:.85rem}
.gallery figure{display:inline-block;margin:4px}
"""


def render_report(told: Story) -> str:
    """The story as one HTML page: every section, the report-only ones included."""
    fig = FigureHtml()
    cover = f"<h1>{esc(told.title)}</h1><p>{esc(told.lead)}</p>" + (cards_html(told.cards) if told.cards else "")
    body = cover + "".join(f"<h2 id='{s.anchor}'>{esc(s.title)}</h2>{section_body(s, fig)}" for s in told.sections)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(told.title)}</title>"
            f"<style>{CSS}</style></head><body>{body}<p class='muted'>{esc(told.note)}</p></body></html>")


def report(store: RunStore, target: str, *, slides: bool = False) -> str:
    """The report of a run or a sweep id: one HTML page, or with `slides` the deck (core.present.slides)."""
    told = story(store, target)
    return render_deck(told) if slides else render_report(told)


def write_report(store: RunStore, target: str, out: str, *, slides: bool = False) -> str:
    """Write the report (or the deck) of a run or a sweep id to `out`; return the path."""
    atomic_write_text(out, report(store, target, slides=slides))
    return str(out)
