"""Slide decks: a run's or a sweep's results as one self-contained HTML file, one <section> per slide.

The mechanics are plain CSS scroll-snap plus a few lines of script rather than a slide library: every
slide is a full-screen section the page snaps to, so scrolling, the keys and printing all see the same
slides. Keys: right, down, Page Down and space go forward; left, up, Page Up and shift+space go back;
Home and End; F toggles full screen. The address ends in #N for slide N. Printing uses a 16:9 page
(13.333 x 7.5 in) and one slide per page. plotly.js is inline once and images are data URIs (as in
core.present.report, whose content the slides share: core.present.sections), and no font is fetched.
"""

from __future__ import annotations

from dataclasses import replace

import plotly.graph_objects as go

from core.present.markup import FigureHtml, cards_html, esc, section_body
from core.present.sections import Section, Story

FIGURE_HEIGHT = "72vh"  # before the script fits each figure to the room its slide leaves
FIGURE_FONT = 18
GALLERY = 8  # misclassified images that fit one slide

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
.gallery img{height:8em;image-rendering:pixelated} table{border-collapse:collapse;font-size:.75em}
td,th{border:1px solid #e5e7eb;padding:.3em .6em} th{background:#f3f4f6;text-align:left} td.num{text-align:right}
td.best{background:#dcfce7;font-weight:600} ul{margin:.5em 0}
#counter{position:fixed;right:1.2vw;bottom:1vh;color:#9ca3af;font-size:14px}
@page{size:13.333in 7.5in;margin:0}
@media print{html{scroll-snap-type:none;overflow:visible} #counter{display:none}
section.slide{height:7.5in;width:13.333in;padding:24px 48px;border:0;font-size:18px;break-after:page;
page-break-after:always}
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
function outer(e){const c=getComputedStyle(e);
  return e.getBoundingClientRect().height+parseFloat(c.marginTop)+parseFloat(c.marginBottom);}
function fitSlide(s){  // the figures share the room the rest of the slide leaves; then, if text still overflows,
  s.style.fontSize='';  // the slide's type (and the gallery, sized in em) shrinks until everything is inside
  const plots=window.Plotly?[...s.querySelectorAll('.js-plotly-plot')]:[];
  const boxes=plots.map(p=>[...s.children].find(c=>c.contains(p)));
  const c=getComputedStyle(s),room=s.clientHeight-parseFloat(c.paddingTop)-parseFloat(c.paddingBottom);
  const used=[...s.children].filter(e=>!boxes.includes(e)).reduce((sum,e)=>sum+outer(e),0);
  const each=Math.max(120,Math.floor((room-used)/Math.max(1,plots.length))-6);
  return Promise.all(plots.map(p=>Plotly.relayout(p,{width:Math.floor(p.parentElement.clientWidth),height:each})))
    .then(()=>{let size=parseFloat(getComputedStyle(s).fontSize);
      while(s.scrollHeight>s.clientHeight+1&&size>9){size*=0.92;s.style.fontSize=size+'px';}});}
function fit(){return Promise.all(slides.map(fitSlide)).then(()=>{window.slidesFitted=true;});}
addEventListener('load',fit);addEventListener('resize',fit);addEventListener('beforeprint',fit);
addEventListener('afterprint',fit);matchMedia('print').addEventListener('change',fit);
})();
"""


def _slide(section: Section, fig: FigureHtml) -> str:
    """One section on one full-screen slide. A slide's only figure drops its own title: the slide's heading
    already says it (the report keeps both, where the figures stand in a longer page)."""
    if len(section.figures) == 1:
        only = go.Figure(section.figures[0]).update_layout(title=None, margin_t=30)
        section = replace(section, figures=(only,))
    return (f"<section class='slide' id='{section.anchor}'><h2>{esc(section.title)}</h2>"
            f"{section_body(section, fig, lead=True, gallery=GALLERY)}</section>")


def render_deck(told: Story) -> str:
    """The story as a deck: a title slide with the key numbers, then one slide per section that is not
    report-only."""
    fig = FigureHtml(height=FIGURE_HEIGHT, font_size=FIGURE_FONT)
    title = (f"<section class='slide title' id='title'><h1>{esc(told.heading)}</h1><p class='lead'>{esc(told.lead)}"
             f"</p>{cards_html(told.cards) if told.cards else ''}<p class='muted'>{esc(told.note)}</p></section>")
    slides = [title] + [_slide(s, fig) for s in told.sections if not s.report_only]
    return (f"<!doctype html><html><head><meta charset='utf-8'><meta name='viewport' content='width=device-width'>"
            f"<title>{esc(told.title)}</title><style>{CSS}</style></head><body>{''.join(slides)}"
            f"<div id='counter'></div><script>{SCRIPT}</script></body></html>")
