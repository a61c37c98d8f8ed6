"""A static HTML page for one annotation sheet: the video, frames strip, context, candidates.

The page is one file (inline CSS and JS, frames as ``data:`` URIs, no network). It plays each
item's video from a relative link, ``clips/<video_id>.mp4`` beside the page
(:mod:`tiktalk.report.kit.clips`), so a folder of files opened from disk works with no server. An
annotator rates, and presses "Download CSV", which saves the same sheet
(:mod:`tiktalk.report.kit.annotation`: same columns, rows and order) with the ratings filled in,
through a Blob link.

Nothing is lost: every change is saved at once in the browser's localStorage under a key of
this sheet's own (annotator and a digest of the sheet), so a reload, a closed tab or a crash
keeps the ratings, and a new draw never inherits old ones. When the browser keeps nothing
(storage off or full) the page says so. The header shows the progress (done / total) and a
"Next unrated" button; "Download CSV" asks before saving a sheet with unrated rows (the scorer
would report them as missing).

Two kinds of controls, one focusable *cell* each:

``scale``
    a cell per (candidate, field): the field's radio buttons, values ``low..high``. Keys:
    a digit rates the focused cell and moves on; Delete clears it.
``labels``
    a cell per candidate: one checkbox per label plus a status (not yet / labelled / skip).
    A labelled row writes 0/1 for every label and ``skip`` 0; a skipped row writes ``skip``
    1 and leaves the labels empty; a row not done leaves every field empty (so the scorer
    reports it as missing). Keys: digit k toggles label k, 0 or Enter marks the row labelled
    and moves on, S skips it and moves on.

In both: arrow keys (or Tab / Shift+Tab) move between cells, Space plays or pauses the item's
video, N jumps to the next unrated row. Keys start working after a click on a cell (or on the
page background, which starts at the next unrated row).

The sheet data sit in a ``<script type="application/json">`` block, with ``<``, ``>`` and
``&`` escaped, so no response text can close the script or inject markup; the JS builds the
page with ``textContent`` only.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
from pathlib import Path
from typing import Mapping, Sequence

from tiktalk.io import write_text_atomic
from tiktalk.report.kit.annotation import items_of_key, sheet_columns, sheet_csv, sheet_rows

_CSS = """
body{font-family:system-ui,-apple-system,"Noto Sans CJK SC","Microsoft YaHei",sans-serif;
 margin:0;background:#f6f6f4;color:#222}
header{position:sticky;top:0;background:#fff;border-bottom:1px solid #ccc;padding:8px 16px;
 display:flex;gap:12px;align-items:center;z-index:2}
header h1{font-size:16px;margin:0;flex:1}
#progress{font-weight:600}
main{max-width:1100px;margin:0 auto;padding:8px 16px 64px}
.guide{background:#fff;border:1px solid #ddd;padding:8px 12px;margin:12px 0;font-size:14px}
.keys{color:#555;font-size:13px}
.note{background:#fff3cd;border:1px solid #e0c060;padding:8px 12px;margin:12px 0}
.item{background:#fff;border:1px solid #ccc;border-radius:6px;margin:16px 0;padding:10px 14px;
 scroll-margin-top:56px}
.item h2{font-size:15px;margin:0 0 6px}
.media{display:flex;gap:12px;align-items:flex-start}
.media video{height:320px;max-width:45%;background:#000;border-radius:4px;flex:none}
.media .text{flex:1;min-width:0}
.frames{display:flex;gap:4px;overflow-x:auto;margin:6px 0}
.frames img{height:72px;border-radius:3px}
.noframes{color:#777;font-style:italic;font-size:13px}
ol.context{margin:6px 0;padding:4px 4px 4px 28px;background:#f0f4f8;border-radius:4px}
ol.context li{white-space:pre-line}
.cand{border-top:1px dashed #ccc;padding:8px 0}
.cand .resp{font-size:16px;margin:2px 0 6px}
.cand .slot{font-weight:bold;margin-right:8px}
.ctl{display:flex;flex-wrap:wrap;gap:4px;font-size:13px}
.cell{border:2px solid transparent;border-radius:5px;padding:2px 4px;white-space:nowrap;scroll-margin:64px 0 24px}
.cell:focus,.cell:focus-within{outline:none;border-color:#1769c2;background:#eaf2fc}
.cell .name{font-weight:600;margin-right:6px}
.cell label{margin-right:3px;cursor:pointer}
.cell.rated{background:#eefaf0}
.done{background:#f4fbf5}
button{font-size:14px;padding:6px 12px}
"""

_JS = r"""
"use strict";
function csvCell(v) {
  v = v == null ? "" : String(v);
  return '"' + v.replace(/"/g, '""') + '"';
}
function rowValues(data, i, state) {
  var s = state[i] || {};
  var out = {};
  if (data.mode === "scale") {
    data.fields.forEach(function (f) { out[f] = s[f] ? String(s[f]) : ""; });
  } else {
    var status = s.status || "";
    data.labels.forEach(function (f) {
      out[f] = status === "labelled" ? (s[f] ? "1" : "0") : "";
    });
    out[data.skip] = status === "labelled" ? "0" : (status === "skip" ? "1" : "");
  }
  return out;
}
function isDone(data, i, state) {
  var v = rowValues(data, i, state);
  if (data.mode === "scale") return data.fields.every(function (f) { return v[f] !== ""; });
  return v[data.skip] !== "";
}
function buildCsv(data, state) {
  var lines = [data.columns.map(csvCell).join(",")];
  data.rows.forEach(function (row, i) {
    var vals = rowValues(data, i, state);
    lines.push(data.columns.map(function (c) {
      return csvCell(c in vals ? vals[c] : row[c]);
    }).join(","));
  });
  return "\ufeff" + lines.join("\r\n") + "\r\n";
}
function cleanState(data, raw) {
  // keep only values this sheet can hold (a stored state from an older page is ignored)
  var state = {};
  var points = data.scale.map(String);
  data.rows.forEach(function (r, i) {
    var s = raw && typeof raw[i] === "object" && raw[i] ? raw[i] : {};
    var t = state[i] = {};
    if (data.mode === "scale") {
      data.fields.forEach(function (f) { if (points.indexOf(String(s[f])) >= 0) t[f] = String(s[f]); });
    } else {
      data.labels.forEach(function (f) { t[f] = s[f] === true; });
      t.status = ["labelled", "skip"].indexOf(s.status) >= 0 ? s.status : "";
    }
  });
  return state;
}
function contextTurns(text) {
  // "1. a\n2. b" -> ["a", "b"]; a turn may hold line breaks of its own
  var turns = [];
  var rest = text;
  for (var k = 2; ; k++) {
    var at = rest.indexOf("\n" + k + ". ");
    turns.push(rest.slice(0, at < 0 ? rest.length : at).replace(/^\d+\.\s?/, ""));
    if (at < 0) return turns;
    rest = rest.slice(at + 1);
  }
}
function el(tag, cls, text) {
  var e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
}
function init() {
  var data = JSON.parse(document.getElementById("sheet-data").textContent);
  var store = null;
  try { store = window.localStorage; } catch (e) { store = null; }
  var raw = {};
  try { raw = JSON.parse((store && store.getItem(data.storageKey)) || "{}"); } catch (e) { raw = {}; }
  var state = cleanState(data, raw);
  var main = document.getElementById("items");
  var progress = document.getElementById("progress");
  var note = document.getElementById("storage-note");
  var cells = [];          // {el, row, field, box, video, sync}
  var rowCells = {};       // row index -> its cells
  var current = -1;
  var total = data.rows.length;

  function doneCount() {
    var n = 0;
    for (var i = 0; i < total; i++) if (isDone(data, i, state)) n += 1;
    return n;
  }
  function show(i) {
    rowCells[i].forEach(function (c) { c.sync(); });
    rowCells[i][0].cand.classList.toggle("done", isDone(data, i, state));
  }
  function showProgress() { progress.textContent = doneCount() + " / " + total + " done"; }
  function store_() {
    var kept = false;
    try { if (store) { store.setItem(data.storageKey, JSON.stringify(state)); kept = true; } } catch (e) { kept = false; }
    note.hidden = kept;
  }
  function save(i) { store_(); show(i); showProgress(); }
  function focusCell(k) {
    if (k < 0 || k >= cells.length) return;
    var c = cells[k];
    var enteringItem = current < 0 || cells[current].box !== c.box;
    current = k;
    c.el.focus({preventScroll: true});
    if (enteringItem) c.box.scrollIntoView({block: "start"});
    c.el.scrollIntoView({block: "nearest"});
  }
  function cellUnrated(c) {
    if (data.mode === "scale") return !state[c.row][c.field];
    return !isDone(data, c.row, state);
  }
  function nextUnrated() {
    for (var step = 1; step <= cells.length; step++) {
      var k = ((current < 0 ? -1 : current) + step) % cells.length;
      if (cellUnrated(cells[k])) { focusCell(k); return true; }
    }
    progress.textContent = doneCount() + " / " + total + " done: all rated";
    return false;
  }

  var byItem = [];
  var index = {};
  data.rows.forEach(function (row, i) {
    if (!(row.item in index)) { index[row.item] = byItem.length; byItem.push([]); }
    byItem[index[row.item]].push(i);
  });
  byItem.forEach(function (rows) {
    var first = data.rows[rows[0]];
    var box = el("section", "item");
    box.id = "item-" + first.item;
    box.appendChild(el("h2", null, "Item " + first.item + " \u00b7 video " + first.video +
                                   " \u00b7 response level " + first.level));
    var media = el("div", "media");
    var frames = data.frames[first.video] || [];
    var video = null;
    if (data.videos[first.video]) {
      video = el("video");
      video.controls = true; video.preload = "metadata"; video.playsInline = true;
      if (frames.length) video.poster = frames[0];
      video.src = data.videos[first.video];
      media.appendChild(video);
    }
    var text = el("div", "text");
    var strip = el("div", "frames");
    if (frames.length) {
      frames.forEach(function (uri) { var img = el("img"); img.src = uri; img.alt = "frame"; strip.appendChild(img); });
    } else if (!video) {
      strip.appendChild(el("span", "noframes", "No video or frames included: watch video " + first.video + "."));
    }
    text.appendChild(strip);
    var ctx = el("ol", "context");
    contextTurns(first.context).forEach(function (turn) { ctx.appendChild(el("li", null, turn)); });
    text.appendChild(ctx);
    media.appendChild(text);
    box.appendChild(media);
    rows.forEach(function (i) {
      var row = data.rows[i];
      var s = state[i];
      var cand = el("div", "cand");
      var resp = el("div", "resp");
      resp.appendChild(el("span", "slot", row.slot));
      resp.appendChild(document.createTextNode(row.response));
      cand.appendChild(resp);
      var ctl = el("div", "ctl");
      rowCells[i] = [];
      function addCell(cell, field, sync) {
        cell.tabIndex = 0;
        cell.dataset.cell = String(cells.length);
        var c = {el: cell, row: i, field: field, box: box, video: video, cand: cand, sync: sync};
        cell.addEventListener("focus", function () { current = +cell.dataset.cell; });
        cell.addEventListener("mousedown", function () { current = +cell.dataset.cell; });
        cells.push(c); rowCells[i].push(c);
        ctl.appendChild(cell);
      }
      if (data.mode === "scale") {
        data.fields.forEach(function (f, fi) {
          var cell = el("div", "cell");
          cell.setAttribute("role", "radiogroup");
          cell.setAttribute("aria-label", row.slot + " " + f);
          cell.appendChild(el("span", "name", f));
          var radios = data.scale.map(function (v) {
            var lab = el("label");
            var inp = el("input");
            inp.type = "radio"; inp.name = "r" + i + "_" + fi; inp.value = String(v); inp.tabIndex = -1;
            inp.addEventListener("change", function () { if (inp.checked) { s[f] = String(v); save(i); } });
            lab.appendChild(inp); lab.appendChild(document.createTextNode(String(v)));
            cell.appendChild(lab);
            return inp;
          });
          addCell(cell, f, function () {
            radios.forEach(function (r) { r.checked = r.value === s[f]; });
            cell.classList.toggle("rated", !!s[f]);
          });
        });
      } else {
        var cell = el("div", "cell");
        cell.setAttribute("aria-label", row.slot);
        cell.appendChild(el("span", "name", "cannot understand it without:"));
        var boxes = data.labels.map(function (f, k) {
          var lab = el("label");
          var inp = el("input");
          inp.type = "checkbox"; inp.tabIndex = -1;
          inp.addEventListener("change", function () { s[f] = inp.checked; s.status = "labelled"; save(i); });
          lab.appendChild(inp); lab.appendChild(document.createTextNode(" " + (k + 1) + " " + f));
          cell.appendChild(lab);
          return inp;
        });
        var status = el("select");
        status.tabIndex = -1;
        [["", "not yet"], ["labelled", "labelled"], ["skip", "skip (hard to judge)"]].forEach(function (o) {
          var opt = el("option", null, o[1]); opt.value = o[0]; status.appendChild(opt);
        });
        status.addEventListener("change", function () { s.status = status.value; save(i); });
        cell.appendChild(status);
        addCell(cell, null, function () {
          data.labels.forEach(function (f, k) { boxes[k].checked = !!s[f]; });
          status.value = s.status || "";
          cell.classList.toggle("rated", isDone(data, i, state));
        });
      }
      cand.appendChild(ctl);
      box.appendChild(cand);
    });
    main.appendChild(box);
  });

  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    var key = ev.key;
    var target = ev.target;
    var cellEl = target && target.closest ? target.closest(".cell") : null;
    var moveKeys = ["ArrowRight", "ArrowDown", "ArrowLeft", "ArrowUp"];
    if (!cellEl) {
      var idle = target === document.body || target === document.documentElement || target == null;
      if (idle && (/^[0-9nN]$/.test(key) || moveKeys.indexOf(key) >= 0)) {
        ev.preventDefault();
        nextUnrated();
      }
      return;
    }
    var k = +cellEl.dataset.cell;
    var c = cells[k];
    var s = state[c.row];
    var handled = true;
    if (key === "ArrowRight" || key === "ArrowDown") focusCell(k + 1);
    else if (key === "ArrowLeft" || key === "ArrowUp") focusCell(k - 1);
    else if (key === "n" || key === "N") { current = k; nextUnrated(); }
    else if (key === " ") { if (c.video) { if (c.video.paused) c.video.play(); else c.video.pause(); } }
    else if (data.mode === "scale" && /^[0-9]$/.test(key) && data.scale.indexOf(+key) >= 0) {
      s[c.field] = key; save(c.row); focusCell(k + 1);
    }
    else if (data.mode === "scale" && (key === "Delete" || key === "Backspace")) { delete s[c.field]; save(c.row); }
    else if (data.mode === "scale" && key === "Enter") focusCell(k + 1);
    else if (data.mode === "labels" && /^[1-9]$/.test(key) && +key <= data.labels.length) {
      var f = data.labels[+key - 1];
      s[f] = !s[f]; s.status = "labelled"; save(c.row);
    }
    else if (data.mode === "labels" && (key === "0" || key === "Enter")) {
      s.status = "labelled"; save(c.row); focusCell(k + 1);
    }
    else if (data.mode === "labels" && (key === "s" || key === "S")) {
      s.status = "skip"; save(c.row); focusCell(k + 1);
    }
    else handled = false;
    if (handled) ev.preventDefault();
  }, true);

  document.getElementById("next-unrated").addEventListener("click", function () { nextUnrated(); });
  document.getElementById("download").addEventListener("click", function () {
    var left = total - doneCount();
    if (left > 0 && !window.confirm(left + " of " + total + " responses are not rated yet: " +
        "the scorer reports them as missing. Download anyway?")) {
      current = -1;
      nextUnrated();
      return;
    }
    var blob = new Blob([buildCsv(data, state)], {type: "text/csv;charset=utf-8"});
    var a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = data.download;
    document.body.appendChild(a);
    a.click();
    setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  });
  data.rows.forEach(function (r, i) { show(i); });
  showProgress();
  store_();
}
document.addEventListener("DOMContentLoaded", init);
"""

_KEYS = {
    "scale": "Keys: click a rating (or the page) to start; {digits} rate the focused criterion "
             "and move on, arrow keys or Tab move, Delete clears, Space plays/pauses the video, "
             "N jumps to the next unrated response.",
    "labels": "Keys: click a response (or the page) to start; {digits} tick the sources, 0 or "
              "Enter marks it labelled and moves on, S skips it, arrow keys or Tab move, Space "
              "plays/pauses the video, N jumps to the next unrated response.",
}


def _json_for_script(obj) -> str:
    """JSON that is safe inside a <script> element (no ``</script>``, no ``<!--``)."""
    text = json.dumps(obj, ensure_ascii=False)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _relative_link(href: str) -> bool:
    return not ("://" in href or href.startswith("//") or href.startswith("/")
                or href.lower().startswith(("javascript:", "data:")))


def render_page(*, title: str, guide_html: str, columns: Sequence[str],
                rows: Sequence[Mapping[str, str]], mode: str, fields: Sequence[str],
                scale: Sequence[int] = (), labels: Sequence[str] = (), skip: str = "skip",
                frames: Mapping[str, Sequence[str]] | None = None,
                videos: Mapping[str, str] | None = None,
                download_name: str, storage_key: str) -> str:
    """The page for one sheet (see the module doc).

    ``rows`` are the sheet's rows (columns ``columns``); ``fields`` the rating columns (for
    ``labels`` mode: ``labels`` then ``skip``). ``frames`` maps a video id to ``data:`` image
    URIs; ``videos`` maps a video id to the relative link of its playable file (a file beside
    the page, never a remote URL). ``guide_html`` is trusted markup written by the package
    (the rating guideline).
    """
    if mode not in ("scale", "labels"):
        raise ValueError(f"mode must be 'scale' or 'labels', got {mode!r}")
    if mode == "scale" and not scale:
        raise ValueError("scale mode needs the scale's points")
    if mode == "labels" and tuple(fields) != tuple(labels) + (skip,):
        raise ValueError(f"labels mode: fields {list(fields)} must be the labels then {skip!r}")
    bad = {v: h for v, h in (videos or {}).items() if not _relative_link(h)}
    if bad:
        raise ValueError(f"video links {bad} must be relative paths (the page works offline)")
    missing = [f for f in fields if f not in columns]
    if missing:
        raise ValueError(f"fields {missing} are not sheet columns {list(columns)}")
    data = {
        "columns": list(columns), "fields": list(fields), "mode": mode,
        "scale": [int(v) for v in scale], "labels": list(labels), "skip": skip,
        "rows": [{c: str(r.get(c, "")) for c in columns} for r in rows],
        "frames": {k: list(v) for k, v in (frames or {}).items()},
        "videos": dict(videos or {}), "download": download_name, "storageKey": storage_key,
    }
    keys = scale if mode == "scale" else range(1, len(labels) + 1)
    digits = [str(v) for v in keys if 0 <= int(v) <= 9]
    digits_text = f"{digits[0]}-{digits[-1]}" if digits else "digits"
    keys_html = html.escape(_KEYS[mode].format(digits=digits_text))
    return (
        "<!DOCTYPE html>\n<html lang=\"zh\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<header><h1>{html.escape(title)}</h1><span id=\"progress\"></span>"
        "<button id=\"next-unrated\" type=\"button\">Next unrated (N)</button>"
        "<button id=\"download\" type=\"button\">Download CSV</button></header>\n"
        f"<main>\n<div class=\"guide\">{guide_html}<p class=\"keys\">{keys_html}</p></div>\n"
        "<div id=\"storage-note\" class=\"note\" hidden>This browser does not keep the ratings "
        "of this page (its local storage is off or full): press <b>Download CSV</b> before "
        "closing the page.</div>\n<div id=\"items\"></div>\n</main>\n"
        f"<script type=\"application/json\" id=\"sheet-data\">{_json_for_script(data)}</script>\n"
        f"<script>{_JS}</script>\n</body>\n</html>\n"
    )


def write_pages(key: Mapping, pages_dir: str | os.PathLike, *, title: str, guide_html: str,
                mode: str, scale: Sequence[int] = (), labels: Sequence[str] = (), skip: str = "skip",
                frames: Mapping[str, Sequence[str]] | None = None,
                videos: Mapping[str, str] | None = None) -> list[Path]:
    """``{pages_dir}/{annotator}.html`` for every annotator of an annotation key, each with the
    rows of that annotator's sheet. ``title`` may use ``{annotator}`` and ``{n}`` (rows)."""
    items = items_of_key(key)
    columns = sheet_columns(key["fields"])
    out = []
    for annotator in key["annotators"]:
        rows = sheet_rows(items, annotator, key["slots"][annotator], key["fields"])
        # the browser keeps ratings per sheet content: a new draw never inherits old ratings
        digest = hashlib.sha256(sheet_csv(rows, columns).encode("utf-8")).hexdigest()[:16]
        page = render_page(
            title=title.format(annotator=annotator, n=len(rows)), guide_html=guide_html,
            columns=columns, rows=rows, mode=mode, fields=key["fields"], scale=scale,
            labels=labels, skip=skip, frames=frames, videos=videos,
            download_name=f"{annotator}.csv",
            storage_key=f"tiktalk-{key['task']}-{annotator}-{digest}")
        path = Path(pages_dir) / f"{annotator}.html"
        write_text_atomic(path, page)
        out.append(path)
    return out
