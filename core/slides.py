"""Slide decks: a run's or a sweep's results as one self-contained HTML file, one <section> per slide.

The mechanics are plain CSS scroll-snap plus a few lines of script rather than a slide library: every
slide is a full-screen section the page snaps to, so scrolling, the keys and printing all see the same
slides. Keys: right, down, Page Down and space go forward; left, up, Page Up and shift+space go back;
Home and End; F toggles full screen. The address ends in #N for slide N. Printing uses a 16:9 page
(13.333 x 7.5 in) and one slide per page. plotly.js is inline once and images are data URIs (as in
core.report), and no font is fetched: nothing needs the network.
"""

from __future__ import annotations

import html
import time

from core.compare import COLUMNS, best, comparison_rows
from core.evaluation import accuracy_text
from core.fileio import atomic_write_text
from core.report import FigureHtml, image_html, latest_analysis, table_html
from core.run_summary import RunSummary
from core.runs import load_run
from core.sweeps import load_sweep
from core.views import RunViews, learning_curve_points
from core.viz import figures

FIGURE_HEIGHT = "72vh"  # before the script fits each figure to the room its slide leaves
FIGURE_FONT = 18

CSS = """
html{scroll-snap-type:y mandatory;overflow-y:scroll} body{margin:0;font-family:system-ui,-apple-system,Segoe UI,
Roboto,sans-serif;color:#1f2937;background:#fff}
section.slide{box-sizing:border-box;height:100vh;width:100%;scroll-snap-align:start;padding:3vh 4vw;
overflow:hidden;display:flex;flex-direction:column;font-size:clamp(16px,1.6vw,34px);border-bottom:1px solid #eee}
section.slide h2{margin:0 0 1.5vh;font-size:2em} section.slide.title h1{font-size:3em;margin:12vh 0 2vh}
section.slide .lead{font-size:1.2em;color:#374151} .cards{display:flex;gap:2vw;flex-wrap:wrap;margin-top:5vh}
.card{border:1px solid #e5e7eb;border-radius:12px;padding:1.5vh 1.5vw;min-width:14vw}
.card b{display:block;font-size:1.9em} .muted{color:#6b7280;font-size:.8em}
.gallery{display:flex;flex-wrap:wrap;gap:1.5vw} .gallery figure{margin:0;text-align:center}
.gallery img{height:30vh;image-rendering:pixelated} table{border-collapse:collapse;font-size:.75em}
td,th{border:1px solid #e5e7eb;padding:.3em .6em} th{background:#f3f4f6;text-align:left} td.num{text-align:right}
td.best{background:#dcfce7;font-weight:600} ul{margin:.5em 0}
#counter{position:fixed;right:1.2vw;bottom:1vh;color:#9ca3af;font-size:14px}
@page{size:13.333in 7.5in;margin:0}
@media print{html{scroll-snap-type:none;overflow:visible} #counter{display:none}
section.slide{height:7.5in;width:13.333in;padding:24px 48px;border:0;font-size:18px;break-after:page;
page-break-after:always} .gallery img{height:170px}
section.slide:last-of-type{break-after:auto;page-break-after:auto}}
"""

SCRIPT = """
(function(){
const slides=[...document.querySelectorAll('section.slide')], counter=document.getElementById('counter');
function current(){let best=0,dist=Infinity;slides.forEach((s,i)=>{const d=Math.abs(s.getBoundingClientRect().top);
  if(d<dist){dist=d;best=i;}});return best;}
function show(i){counter.textContent=(i+1)+' / '+slides.length;history.replaceState(null,'','#'+(i+1));}
function go(i){i=Math.max(0,Math.min(slides.length-1,i));slides[i].scrollIntoView({block:'start'});show(i);}
document.addEventListener('keydown',e=>{
  if(e.altKey||e.ctrlKey||e.metaKey)return;
  const k=e.key,i=current();
  if(k==='ArrowRight'||k==='ArrowDown'||k==='PageDown'||(k===' '&&!e.shiftKey))go(i+1);
  else if(k==='ArrowLeft'||k==='ArrowUp'||k==='PageUp'||k===' ')go(i-1);
  else if(k==='Home')go(0);
  else if(k==='End')go(slides.length-1);
  else if(k==='f'||k==='F'){if(document.fullscreenElement)document.exitFullscreen();
    else document.documentElement.requestFullscreen();}
  else return;
  e.preventDefault();
});
let timer;addEventListener('scroll',()=>{clearTimeout(timer);timer=setTimeout(()=>show(current()),80);},{passive:true});
addEventListener('load',()=>{const n=parseInt(location.hash.slice(1),10);if(n>1)go(n-1);else show(0);});
function fit(){if(!window.Plotly)return;document.querySelectorAll('.js-plotly-plot').forEach(p=>{
  const s=p.closest('section').getBoundingClientRect(),top=p.getBoundingClientRect().top-s.top;
  const pad=parseFloat(getComputedStyle(p.closest('section')).paddingBottom)||0;
  Plotly.relayout(p,{width:Math.floor(p.parentElement.clientWidth),height:Math.max(200,Math.floor(s.height-top-pad))});});}
addEventListener('load',fit);addEventListener('resize',fit);addEventListener('beforeprint',fit);
addEventListener('afterprint',fit);matchMedia('print').addEventListener('change',fit);
})();
"""


def _slide(title: str, body: str, anchor: str) -> str:
    return f"<section class='slide' id='{anchor}'><h2>{html.escape(title)}</h2>{body}</section>"


def _deck(title: str, slides: list[str]) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><meta name='viewport' content='width=device-width'>"
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>{''.join(slides)}"
            f"<div id='counter'></div><script>{SCRIPT}</script></body></html>")


def _cards(pairs: list[tuple[str, str]]) -> str:
    return "<div class='cards'>" + "".join(f"<div class='card'>{html.escape(label)}<b>{html.escape(value)}</b></div>"
                                           for label, value in pairs) + "</div>"


def run_slides(run_id: str, fig: FigureHtml) -> list[str]:
    """Title and key numbers, curves, confusion matrix, misclassified images with Grad-CAM, calibration."""
    from core import trust

    run = load_run(run_id)
    views, m, d, summary = RunViews(run), run.metrics(), run.dataset(), RunSummary.of(run)
    title = (f"<section class='slide title' id='title'><h1>{html.escape(summary.backbone)} on "
             f"{html.escape(summary.dataset)}</h1><p class='lead'>{html.escape(d.get('sample', ''))}; "
             f"{html.escape(summary.frozen_phrase)}{', augmented' if summary.augmented else ''}; "
             f"{html.escape(summary.head)} head.</p>" + _cards([
                 ("Validation accuracy", accuracy_text(summary.val_accuracy, summary.val_interval)),
                 ("Test accuracy", accuracy_text(summary.test_accuracy, summary.test_interval)),
                 ("Training time", f"{m['seconds']:.0f} s"), ("Classes", str(len(d.get("classes", []))))])
             + f"<p class='muted'>Run {html.escape(run.id)}; intervals are 95% Wilson intervals for the size of "
               f"each split. Made by Transfer Learning Studio on {time.strftime('%Y-%m-%d')}.</p></section>")
    wrong = views.misclassified(k=8, saliency=True)
    gallery = "<div class='gallery'>" + "".join(
        f"<figure>{image_html(r['saliency'], r['name'])}<figcaption>{html.escape(r['true'])} &rarr; "
        f"{html.escape(r['predicted'])} ({r['probability']:.0%})</figcaption></figure>" for r in wrong) + "</div>"
    slides = [title, _slide("Training curves", fig(views.curves()), "curves"),
              _slide("Confusion matrix (validation)", fig(views.confusion()), "confusion"),
              _slide("Misclassified, with Grad-CAM (where the model looked)",
                     gallery if wrong else "<p class='lead'>Every validation image was classified correctly.</p>",
                     "misclassified")]
    if m.get("ece") is not None:
        lines = "".join(f"<li>{html.escape(label)}: {html.escape(value)}</li>" for label, value in
                        trust.accuracy_lines(run))
        slides.append(_slide("How far the numbers can be trusted", f"<ul>{lines}</ul>"
                             + fig(figures.reliability_diagram(*trust.reliability_rows(run))), "trust"))
    return slides + analysis_slides(run.config.dataset, run.config.backbone, run.config.frozen_blocks, fig)


def analysis_slides(dataset: str, backbone: str, frozen_blocks: int, fig: FigureHtml) -> list[str]:
    from core.viz.analysis import depth_figure, size_figure

    found = latest_analysis(dataset, backbone, frozen_blocks)
    if found is None:
        return []
    analysis, cut, forecast = found
    return [_slide("Transfer analysis: which block's features carry the classes", fig(depth_figure(analysis, cut)),
                   "analysis-depth"),
            _slide("Transfer analysis: how much data", fig(size_figure(analysis))
                   + f"<p class='muted'>Forecast (95% bootstrap interval): {html.escape(forecast)}.</p>",
                   "analysis-size")]


def sweep_slides(sweep_id: str, fig: FigureHtml) -> list[str]:
    """Title, the comparison table, the learning curve, the analysis."""
    sweep = load_sweep(sweep_id)
    runs = [r for r in sweep.runs() if r is not None]
    rows = comparison_rows(runs)
    best_val = best(rows, "val acc")
    lead = (f"Best validation accuracy: {rows[best_val]['val acc']:.1%} ({rows[best_val]['val 95% CI']}), run "
            f"{rows[best_val]['run']}." if best_val is not None else "No run has finished yet.")
    slides = [f"<section class='slide title' id='title'><h1>Sweep {html.escape(sweep.name)}</h1><p class='lead'>"
              f"{len(rows)} of {len(sweep.run_ids)} runs completed. {html.escape(lead)}</p><p class='muted'>Made by "
              f"Transfer Learning Studio on {time.strftime('%Y-%m-%d')}.</p></section>",
              _slide("Comparison", table_html(rows, COLUMNS, {c: best(rows, c) for c in ("val acc", "test acc")}),
                     "comparison")]
    points = learning_curve_points(runs)
    if points:
        slides.append(_slide("Learning curve", fig(figures.learning_curve(points)), "learning-curve"))
    if runs:
        config = runs[0].config
        slides += analysis_slides(config.dataset, config.backbone, config.frozen_blocks, fig)
    return slides


def deck(target: str) -> str:
    """The slide deck of a run or a sweep id."""
    fig = FigureHtml(height=FIGURE_HEIGHT, font_size=FIGURE_FONT)
    if target.startswith("sweep-"):
        return _deck(f"Sweep {load_sweep(target).name}", sweep_slides(target, fig))
    return _deck(f"Run {target}", run_slides(target, fig))


def write_deck(target: str, out: str) -> str:
    atomic_write_text(out, deck(target))
    return str(out)
