"""Self-contained HTML listening pages: one folder (``report.html`` + ``listen/`` with WAVs, PNGs and JPEGs) that
opens from ``file://`` with nothing fetched (no server, no CDN; CSS and the table-sorting script are inline).

``ccs-bench`` (:mod:`benchmarks.html_report`) and ``ccs-infer --report`` build their pages from these parts:
:func:`html_table` (sortable: click a header), :func:`render_clip` (a frame strip, audio players for the mono
input, the ground truth, every prediction and its error, log-magnitude spectrograms of L - R and the ILD over
time) and :func:`page`.
"""

from __future__ import annotations

import html
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

from ccstereo.clip_figures import plot_difference_spectrograms, plot_ild
from pipelines.contract import SAMPLE_RATE
from pipelines.io import atomic_write_bytes, atomic_write_text

ASSETS = "listen"  # the page's media folder, beside report.html
STRIP_FRAMES = 5  # frames shown per clip, evenly spaced
AUDIO_PEAK = 0.99  # a clip's tracks share one gain, so their loudness compares; the loudest peaks here

CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;max-width:1400px;color:#222}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right;white-space:nowrap}
th{background:#eee;cursor:pointer;user-select:none}th.sorted-asc::after{content:" \\25B2"}
th.sorted-desc::after{content:" \\25BC"}td:first-child,th:first-child{text-align:left}
tr.paper td{color:#777;background:#fafafa}td.note{white-space:normal;text-align:left;max-width:28em}
.clip{border-top:2px solid #888;margin-top:1.5em;padding-top:.5em}.strip{max-width:100%;display:block}
.players{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:.4em 1em}
.players figure{margin:0}.players figcaption{font-size:13px}audio{width:320px}
img.figure{max-width:100%;display:block;margin:.4em 0}.legend{font-size:13px;color:#444;max-width:70em}
"""

# Click a header to sort its table by that column (numbers numerically, from data-v; empty cells last); a second
# click reverses the order.
JS = """
document.querySelectorAll('table.sortable').forEach(function(table){
  table.querySelectorAll('th').forEach(function(th, col){
    th.addEventListener('click', function(){
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      var asc = !th.classList.contains('sorted-asc');
      table.querySelectorAll('th').forEach(function(h){h.classList.remove('sorted-asc','sorted-desc');});
      th.classList.add(asc ? 'sorted-asc' : 'sorted-desc');
      function key(row){var c=row.cells[col]; var v=c.getAttribute('data-v'); return v===null?c.textContent:v;}
      rows.sort(function(a, b){
        var x = key(a), y = key(b), nx = parseFloat(x), ny = parseFloat(y);
        if (x === '' || y === '') return (x === '') - (y === '');
        var d = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : String(x).localeCompare(String(y));
        return asc ? d : -d;
      });
      rows.forEach(function(r){body.appendChild(r);});
    });
  });
});
"""

Cell = str | tuple[str, float | None]  # display text, or (display text, sort value: None = empty)


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def number_cell(value: float | None, digits: int = 3, spread: float | None = None) -> Cell:
    """``value`` (and ``± spread``) for display, the value itself to sort by; '-' for a missing number."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ("-", None)
    text = f"{value:.{digits}f}" + ("" if spread is None else f" ± {spread:.{digits}f}")
    return (text, float(value))


def html_table(headers: Sequence[str], rows: Sequence[Sequence[Cell]], *, row_classes: Sequence[str] = (),
               caption: str = "", note_column: int | None = None, ident: str = "") -> str:
    """A sortable table; ``rows`` of :data:`Cell`; ``row_classes[i]`` styles row i (``paper`` rows are grey);
    ``ident``: the table's id."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        cls = row_classes[i] if i < len(row_classes) and row_classes[i] else ""
        cells = []
        for j, cell in enumerate(row):
            text, value = (cell, None) if isinstance(cell, str) else cell
            attr = "" if isinstance(cell, str) else f' data-v="{"" if value is None else repr(value)}"'
            klass = ' class="note"' if j == note_column else ""
            cells.append(f"<td{attr}{klass}>{esc(text)}</td>")
        body.append(f'<tr class="{cls}">' + "".join(cells) + "</tr>" if cls else "<tr>" + "".join(cells) + "</tr>")
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    id_attr = f' id="{esc(ident)}"' if ident else ""
    return (f'<table class="sortable"{id_attr}>{cap}<thead><tr>{head}</tr></thead><tbody>' + "".join(body)
            + "</tbody></table>")


def page(title: str, body: str) -> str:
    """The whole document: inline CSS and script, nothing loaded from elsewhere."""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f"<style>{CSS}</style></head><body><h1>{esc(title)}</h1>\n{body}\n<script>{JS}</script></body></html>\n")


def write_page(path: Path, title: str, body: str) -> Path:
    atomic_write_text(path, page(title, body))
    return path


# --------------------------------------------------------------------------------------------------- clips


@dataclass
class ClipView:
    """One clip of a listening page: what is played and plotted for it."""

    slug: str  # file-name-safe, unique within the page
    title: str
    frames: Sequence[np.ndarray]  # uint8 [H, W, 3] frames of the clip (a strip of STRIP_FRAMES is shown)
    mono: np.ndarray  # [T] the input, L + R
    truth: np.ndarray | None  # [2, T] when known
    predictions: Mapping[str, np.ndarray]  # label -> [2, T]
    notes: Mapping[str, str] = field(default_factory=dict)  # label -> why a prediction is missing, etc.
    metrics_html: str = ""  # e.g. a table of this clip's metrics


def write_wav(path: Path, audio: np.ndarray, gain: float) -> Path:
    """16-bit 16 kHz WAV of ``audio`` (``[T]`` or ``[2, T]``) times ``gain``, written atomically."""
    data = np.clip(np.asarray(audio, dtype=np.float64) * gain, -1.0, 1.0)
    buf = io.BytesIO()
    sf.write(buf, data.T if data.ndim == 2 else data, SAMPLE_RATE, subtype="PCM_16", format="WAV")
    atomic_write_bytes(path, buf.getvalue())
    return path


def write_strip(path: Path, frames: Sequence[np.ndarray]) -> Path:
    """``STRIP_FRAMES`` evenly spaced frames side by side, as one JPEG."""
    picks = sorted({round(i * (len(frames) - 1) / max(1, STRIP_FRAMES - 1)) for i in range(STRIP_FRAMES)})
    images = [np.asarray(frames[i], dtype=np.uint8) for i in picks]
    height = min(im.shape[0] for im in images)
    strip = np.concatenate([im[:height] for im in images], axis=1)
    buf = io.BytesIO()
    Image.fromarray(strip).save(buf, format="JPEG", quality=85)
    atomic_write_bytes(path, buf.getvalue())
    return path


def _player(rel: str, label: str, seconds: float) -> str:
    return (f'<figure><figcaption>{esc(label)}</figcaption><audio controls preload="metadata" src="{esc(rel)}" '
            f'data-duration="{seconds:.6f}"></audio></figure>')


def render_clip(view: ClipView, page_dir: Path) -> str:
    """Write the clip's media under ``page_dir/listen/`` and return its HTML section."""
    assets = page_dir / ASSETS
    tracks: list[tuple[str, str, np.ndarray]] = [("mono", "mono input (L + R) / 2", view.mono / 2.0)]
    if view.truth is not None:
        tracks.append(("truth", "ground truth", view.truth))
    for i, (label, pred) in enumerate(view.predictions.items()):
        tracks.append((f"pred{i}", f"{label}: prediction", pred))
        if view.truth is not None:
            tracks.append((f"error{i}", f"{label}: prediction error (prediction - truth)", pred - view.truth))
    peak = max(float(np.abs(a).max()) for _, _, a in tracks)
    gain = min(1.0, AUDIO_PEAK / peak) if peak > 0 else 1.0
    seconds = len(view.mono) / SAMPLE_RATE
    players = []
    for name, label, audio in tracks:
        rel = f"{ASSETS}/{view.slug}-{name}.wav"
        write_wav(page_dir / rel, audio, gain)
        players.append(_player(rel, label, seconds))
    parts = [f'<section class="clip" id="{esc(view.slug)}"><h3>{esc(view.title)}</h3>']
    if len(view.frames):
        write_strip(assets / f"{view.slug}-frames.jpg", view.frames)
        parts.append(f'<img class="strip" src="{ASSETS}/{esc(view.slug)}-frames.jpg" alt="frames of {esc(view.title)}">')
    parts.append(view.metrics_html)
    parts.append(f'<p class="legend">All tracks of this clip share one gain ({gain:.3g}), so their loudness '
                 "compares.</p>")
    parts.append('<div class="players">' + "".join(players) + "</div>")
    parts += [f'<p class="legend">{esc(label)}: {esc(note)}</p>' for label, note in view.notes.items()]
    plot_ild(view.truth, view.predictions, view.title, assets / f"{view.slug}-ild.png")
    parts.append(f'<img class="figure" src="{ASSETS}/{esc(view.slug)}-ild.png" alt="ILD over time">')
    for i, (label, pred) in enumerate(view.predictions.items()):
        rel = f"{ASSETS}/{view.slug}-spec{i}.png"
        plot_difference_spectrograms(pred, view.truth, f"{view.title}, {label}", page_dir / rel)
        parts.append(f'<img class="figure" src="{esc(rel)}" alt="spectrograms of {esc(label)}">')
    parts.append("</section>")
    return "\n".join(parts)
