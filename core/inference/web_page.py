"""The web-page export: one HTML file that classifies images in the browser with the run's ONNX model, no server,
no network. The model and ONNX Runtime Web's WebAssembly are inlined gzipped and base64-encoded, and unpacked
with the browser's DecompressionStream.

The page prepares an image as the studio does (core.data.decode): the whole image squashed to a square, with
Pillow's bicubic resampling written out in JavaScript (the same filter, the same 22-bit fixed-point coefficients
and rounding, horizontal pass then vertical), then divided by 255. Pillow first reduces an image 6 times the
input size or more by block averaging (reducing_gap=3), and the studio decodes a large JPEG at a reduced DCT
scale; the page does neither, so on such photos its probabilities can differ slightly from the studio's.
"""

from __future__ import annotations

import base64
import gzip
import html
import json
import re

TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 960px; padding: 0 1rem; color: #1f2937; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } .muted { color: #6b7280; font-size: .9rem; }
#drop { border: 2px dashed #9ca3af; border-radius: 12px; padding: 1.5rem; text-align: center; margin: 1rem 0; }
#drop.over { background: #eff6ff; border-color: #2563eb; }
.card { display: flex; gap: 1rem; align-items: center; border-bottom: 1px solid #e5e7eb; padding: .6rem 0; }
.card > div { flex: 1; }
.card img, .card canvas { width: 96px; height: 96px; object-fit: contain; background: #f3f4f6; border-radius: 6px; }
.bar { background: #2563eb; height: 8px; border-radius: 4px; min-width: 1px; } .row { display: grid;
  grid-template-columns: 10rem 1fr 4rem; gap: .5rem; align-items: center; font-size: .95rem; }
.unknown { color: #b45309; font-weight: 600; } button { font-size: 1rem; padding: .4rem .9rem; }
</style></head><body>
<h1>Transfer Learning Studio: __TITLE__</h1>
<p class="muted">__SUMMARY__</p>
<div id="drop">Drop images here, or <input id="pick" type="file" accept="image/*" multiple>
 <button id="camera" type="button">Use the camera</button></div>
<video id="video" autoplay playsinline muted hidden width="320"></video>
<button id="snap" type="button" hidden>Classify this frame</button>
<p id="status" class="muted">Loading the model...</p>
<div id="results"></div>
<script id="meta" type="application/json">__META__</script>
<script id="ort" type="application/octet-stream">__ORT__</script>
<script id="wasm" type="application/octet-stream">__WASM__</script>
<script id="model" type="application/octet-stream">__MODEL__</script>
<script type="module">
const META = JSON.parse(document.getElementById('meta').textContent);
const SIZE = META.input_size, PB = 22;
const raw = id => Uint8Array.from(atob(document.getElementById(id).textContent), c => c.charCodeAt(0));
const gunzip = async id => new Uint8Array(await new Response(
  new Blob([raw(id)]).stream().pipeThrough(new DecompressionStream('gzip'))).arrayBuffer());

function bicubic(x) {  // Pillow's bicubic filter, a = -0.5
  const a = -0.5; x = Math.abs(x);
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}
function coefficients(inSize, outSize) {  // Pillow's precompute_coeffs and normalize_coeffs_8bpc
  const scale = inSize / outSize, filterscale = Math.max(scale, 1), support = 2 * filterscale, out = [];
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const count = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    const k = []; let ww = 0;
    for (let x = 0; x < count; x++) {
      const w = bicubic((x + xmin - center + 0.5) / filterscale); k.push(w); ww += w;
    }
    out.push([xmin, k.map(w => { const v = (ww !== 0 ? w / ww : w) * (1 << PB);
                                 return v < 0 ? Math.trunc(-0.5 + v) : Math.trunc(0.5 + v); })]);
  }
  return out;
}
const clip8 = v => Math.min(255, Math.max(0, Math.floor(v / (1 << PB))));
function pass(src, w, h, outW, outH, horizontal) {  // one direction of Pillow's ImagingResample, 3 channels
  const coeffs = coefficients(horizontal ? w : h, horizontal ? outW : outH);
  const dst = new Uint8ClampedArray(outW * outH * 3);
  for (let y = 0; y < outH; y++) for (let x = 0; x < outW; x++) {
    const [start, k] = coeffs[horizontal ? x : y];
    for (let c = 0; c < 3; c++) {
      let ss = 1 << (PB - 1);
      for (let i = 0; i < k.length; i++) {
        const sx = horizontal ? start + i : x, sy = horizontal ? y : start + i;
        ss += src[(sy * w + sx) * 3 + c] * k[i];
      }
      dst[(y * outW + x) * 3 + c] = clip8(ss);
    }
  }
  return dst;
}
function prepare(rgba, w, h) {  // RGB, squashed to SIZE x SIZE, then in [0, 1]
  let rgb = new Uint8ClampedArray(w * h * 3);
  for (let i = 0; i < w * h; i++) for (let c = 0; c < 3; c++) rgb[i * 3 + c] = rgba[i * 4 + c];
  if (w !== SIZE) { rgb = pass(rgb, w, h, SIZE, h, true); w = SIZE; }
  if (h !== SIZE) { rgb = pass(rgb, w, h, SIZE, SIZE, false); }
  return Float32Array.from(rgb, v => v / 255);
}
async function pixels(source) {
  const bitmap = await createImageBitmap(source, {colorSpaceConversion: 'none', premultiplyAlpha: 'none'});
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height), ctx = canvas.getContext('2d');
  ctx.drawImage(bitmap, 0, 0);
  return [ctx.getImageData(0, 0, bitmap.width, bitmap.height).data, bitmap.width, bitmap.height];
}
function verdict(probs, features) {
  const order = Array.from(probs.keys()).sort((a, b) => probs[b] - probs[a]);
  const top = order.slice(0, 3).map(i => ({label: META.classes[i], probability: probs[i]}));
  let unknown = null;
  if (META.rule) {
    const norm = Math.hypot(...features) || 1;
    const cosine = m => m.reduce((s, v, i) => s + v * features[i] / norm, 0);
    const best = Math.max(...META.rule.class_means.map(cosine));
    unknown = 1 - best > META.rule.threshold;
  }
  return {top, unknown};
}
let session, ort;
async function classify(name, source) {
  const [rgba, w, h] = await pixels(source);
  const input = new ort.Tensor('float32', prepare(rgba, w, h), [1, SIZE, SIZE, 3]);
  const out = await session.run({image: input});
  const result = {name, ...verdict(Array.from(out.probs.data), Array.from(out.features.data))};
  show(result, source);
  return result;
}
function element(tag, className, text) {  // class names are data: always text, never markup
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}
function show(result, source) {
  const card = element('div', 'card'); card.dataset.name = result.name;
  const img = element('img');
  img.src = URL.createObjectURL(source);
  const text = element('div');
  text.append(element('strong', '', result.name));
  if (result.unknown) text.append(element('div', 'unknown', `none of the classes (closest: ${result.top[0].label})`));
  for (const t of result.top) {
    const row = element('div', 'row'), bar = element('div', 'bar'), percent = `${(100 * t.probability).toFixed(1)}%`;
    bar.style.width = percent;
    row.append(element('span', '', t.label), bar, element('span', '', percent));
    text.append(row);
  }
  card.append(img, text); document.getElementById('results').prepend(card);
}
async function classifyFiles(files) {
  const done = window.classified = window.classified || [];  // not window.results: the element of that id
  for (const f of files) {
    try { done.push(await classify(f.name, f)); }
    catch (e) { done.push({name: f.name, error: String(e)}); }
  }
  document.getElementById('status').textContent = `${done.length} image(s) classified in this browser.`;
}
async function start() {
  const url = URL.createObjectURL(new Blob([raw('ort')], {type: 'text/javascript'}));
  ort = await import(url);
  ort.env.wasm.numThreads = 1;  // from file:// a page cannot share memory between threads
  ort.env.wasm.wasmBinary = await gunzip('wasm');
  session = await ort.InferenceSession.create(await gunzip('model'), {executionProviders: ['wasm']});
  document.getElementById('status').textContent = 'Ready: nothing leaves this computer.';
  window.studioReady = true;
}
const drop = document.getElementById('drop');
drop.addEventListener('dragover', e => { e.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', e => {
  e.preventDefault(); drop.classList.remove('over'); classifyFiles(e.dataTransfer.files);
});
document.getElementById('pick').addEventListener('change', e => classifyFiles(e.target.files));
document.getElementById('camera').addEventListener('click', async () => {
  const video = document.getElementById('video'), snap = document.getElementById('snap');
  try { video.srcObject = await navigator.mediaDevices.getUserMedia({video: true}); }
  catch (e) { document.getElementById('status').textContent = `The camera is not available here (${e.name}).`; return; }
  video.hidden = snap.hidden = false;
  snap.onclick = async () => {
    const canvas = new OffscreenCanvas(video.videoWidth, video.videoHeight);
    canvas.getContext('2d').drawImage(video, 0, 0);
    await classifyFiles([new File([await canvas.convertToBlob({type: 'image/png'})], 'camera frame.png')]);
  };
});
start().catch(e => {
  document.getElementById('status').textContent = `The model could not start: ${e}`; window.studioFailed = String(e);
});
</script></body></html>
"""


def _packed(data: bytes, *, compress: bool = True) -> str:
    return base64.b64encode(gzip.compress(data, 6, mtime=0) if compress else data).decode("ascii")


def embedded_json(value: object) -> str:
    """JSON safe inside a <script> element: <, > and & escaped, so no data can end or comment out the script."""
    text = json.dumps(value)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def page_html(*, title: str, summary: str, meta: dict, model: bytes, ort_module: bytes, wasm: bytes) -> str:
    """The whole page; meta: classes, input_size and the rule ({class_means, threshold}) or None."""
    parts = {"__TITLE__": html.escape(title), "__SUMMARY__": html.escape(summary), "__META__": embedded_json(meta),
             "__ORT__": _packed(ort_module, compress=False), "__WASM__": _packed(wasm), "__MODEL__": _packed(model)}
    # One pass over the template: a class or title that spells a placeholder stays text.
    return re.sub("|".join(parts), lambda match: parts[match.group(0)], TEMPLATE)
