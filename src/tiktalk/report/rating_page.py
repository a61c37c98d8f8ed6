"""A static HTML page for one annotation sheet: frames strip, context, candidates, controls.

The page is one self-contained file (inline CSS and JS, frames as ``data:`` URIs, no network):
an annotator opens it in a browser, rates, and presses "Download CSV", which saves the same
sheet (:mod:`tiktalk.report.annotation`: same columns, rows and order) with the ratings filled
in, through a Blob link. Ratings are also kept in the browser's localStorage while working,
so a reload does not lose them.

Two kinds of controls:

``scale``
    one row of radio buttons per field (criterion), values ``low..high``.
``labels``
    one checkbox per label plus a status: not yet / labelled / skip. A labelled row writes
    0/1 for every label and ``skip`` 0; a skipped row writes ``skip`` 1 and leaves the labels
    empty; a row not done leaves every field empty (so the scorer reports it as missing).

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
from tiktalk.report.annotation import BASE_COLUMNS, items_of_key, sheet_csv, sheet_rows

_CSS = """
body{font-family:system-ui,-apple-system,"Noto Sans CJK SC","Microsoft YaHei",sans-serif;
 margin:0;background:#f6f6f4;color:#222}
header{position:sticky;top:0;background:#fff;border-bottom:1px solid #ccc;padding:8px 16px;
 display:flex;gap:16px;align-items:center;z-index:2}
header h1{font-size:16px;margin:0;flex:1}
main{max-width:1100px;margin:0 auto;padding:8px 16px 64px}
.guide{background:#fff;border:1px solid #ddd;padding:8px 12px;margin:12px 0;font-size:14px}
.item{background:#fff;border:1px solid #ccc;border-radius:6px;margin:16px 0;padding:10px 14px}
.item h2{font-size:15px;margin:0 0 6px}
.frames{display:flex;gap:4px;overflow-x:auto;margin:6px 0}
.frames img{height:96px;border-radius:3px}
.noframes{color:#777;font-style:italic;font-size:13px}
ol.context{margin:6px 0;padding-left:24px;background:#f0f4f8;border-radius:4px}
.cand{border-top:1px dashed #ccc;padding:8px 0}
.cand .resp{font-size:16px;margin:2px 0 6px}
.cand .slot{font-weight:bold;margin-right:8px}
.ctl{display:flex;flex-wrap:wrap;gap:4px 18px;font-size:13px}
.ctl fieldset{border:none;margin:0;padding:0}
.ctl legend{font-weight:600;padding:0}
.done{background:#eefaf0}
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
function el(tag, cls, text) {
  var e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
}
function init() {
  var data = JSON.parse(document.getElementById("sheet-data").textContent);
  var state = {};
  try { state = JSON.parse(localStorage.getItem(data.storageKey) || "{}"); } catch (e) { state = {}; }
  var main = document.getElementById("items");
  var progress = document.getElementById("progress");
  var boxes = {};
  function save() {
    try { localStorage.setItem(data.storageKey, JSON.stringify(state)); } catch (e) {}
    var n = 0;
    data.rows.forEach(function (r, i) {
      var d = isDone(data, i, state);
      if (d) n += 1;
      if (boxes[i]) boxes[i].classList.toggle("done", d);
    });
    progress.textContent = n + " / " + data.rows.length + " done";
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
    box.appendChild(el("h2", null, "Item " + first.item + " \u00b7 video " + first.video +
                                   " \u00b7 response level " + first.level));
    var frames = data.frames[first.video] || [];
    var strip = el("div", "frames");
    if (frames.length) {
      frames.forEach(function (uri) { var img = el("img"); img.src = uri; img.alt = "frame"; strip.appendChild(img); });
    } else {
      strip.appendChild(el("span", "noframes", "No frames included: watch video " + first.video + "."));
    }
    box.appendChild(strip);
    if (data.videoHref) {
      var video = el("video");
      video.controls = true; video.preload = "none"; video.height = 240;
      video.src = data.videoHref.split("{video_id}").join(first.video);
      box.appendChild(video);
    }
    var ctx = el("ol", "context");
    first.context.split("\n").forEach(function (line) {
      ctx.appendChild(el("li", null, line.replace(/^\d+\.\s?/, "")));
    });
    box.appendChild(ctx);
    rows.forEach(function (i) {
      var row = data.rows[i];
      var s = state[i] = state[i] || {};
      var cand = el("div", "cand");
      var resp = el("div", "resp");
      resp.appendChild(el("span", "slot", row.slot));
      resp.appendChild(document.createTextNode(row.response));
      cand.appendChild(resp);
      var ctl = el("div", "ctl");
      if (data.mode === "scale") {
        data.fields.forEach(function (f) {
          var fs = el("fieldset");
          fs.appendChild(el("legend", null, f));
          data.scale.forEach(function (v) {
            var lab = el("label");
            var inp = el("input");
            inp.type = "radio"; inp.name = "r" + i + "_" + f; inp.value = String(v);
            inp.checked = String(s[f]) === String(v);
            inp.addEventListener("change", function () { s[f] = String(v); save(); });
            lab.appendChild(inp); lab.appendChild(document.createTextNode(String(v)));
            fs.appendChild(lab);
          });
          ctl.appendChild(fs);
        });
      } else {
        var status = el("select");
        [["", "not yet"], ["labelled", "labelled"], ["skip", "skip (hard to judge)"]].forEach(function (o) {
          var opt = el("option", null, o[1]); opt.value = o[0]; status.appendChild(opt);
        });
        status.value = s.status || "";
        status.addEventListener("change", function () { s.status = status.value; save(); });
        data.labels.forEach(function (f) {
          var lab = el("label");
          var inp = el("input");
          inp.type = "checkbox"; inp.checked = !!s[f];
          inp.addEventListener("change", function () {
            s[f] = inp.checked; s.status = "labelled"; status.value = "labelled"; save();
          });
          lab.appendChild(inp); lab.appendChild(document.createTextNode(" needs " + f));
          ctl.appendChild(lab);
        });
        ctl.appendChild(status);
      }
      cand.appendChild(ctl);
      boxes[i] = cand;
      box.appendChild(cand);
    });
    main.appendChild(box);
  });
  document.getElementById("download").addEventListener("click", function () {
    var blob = new Blob([buildCsv(data, state)], {type: "text/csv;charset=utf-8"});
    var a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = data.download;
    document.body.appendChild(a);
    a.click();
    setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  });
  save();
}
if (typeof module !== "undefined" && module.exports) {
  module.exports = {buildCsv: buildCsv, rowValues: rowValues, isDone: isDone};
}
if (typeof document !== "undefined") {
  document.addEventListener("DOMContentLoaded", init);
}
"""


def _json_for_script(obj) -> str:
    """JSON that is safe inside a <script> element (no ``</script>``, no ``<!--``)."""
    text = json.dumps(obj, ensure_ascii=False)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def render_page(*, title: str, guide_html: str, columns: Sequence[str],
                rows: Sequence[Mapping[str, str]], mode: str, fields: Sequence[str],
                scale: Sequence[int] = (), labels: Sequence[str] = (), skip: str = "skip",
                frames: Mapping[str, Sequence[str]] | None = None, video_href: str | None = None,
                download_name: str, storage_key: str) -> str:
    """The page for one sheet (see the module doc).

    ``rows`` are the sheet's rows (columns ``columns``); ``fields`` the rating columns (for
    ``labels`` mode: ``labels`` then ``skip``). ``frames`` maps a video id to ``data:`` image
    URIs; ``video_href`` (optional) is a relative link template with ``{video_id}``, shown as a
    ``<video>`` element (a local file next to the page, never a remote URL). ``guide_html`` is
    trusted markup written by the package (the rating guideline).
    """
    if mode not in ("scale", "labels"):
        raise ValueError(f"mode must be 'scale' or 'labels', got {mode!r}")
    if mode == "scale" and not scale:
        raise ValueError("scale mode needs the scale's points")
    if mode == "labels" and tuple(fields) != tuple(labels) + (skip,):
        raise ValueError(f"labels mode: fields {list(fields)} must be the labels then {skip!r}")
    if video_href and ("://" in video_href or video_href.startswith("//")):
        raise ValueError(f"video_href {video_href!r} must be a relative path (the page works offline)")
    missing = [f for f in fields if f not in columns]
    if missing:
        raise ValueError(f"fields {missing} are not sheet columns {list(columns)}")
    data = {
        "columns": list(columns), "fields": list(fields), "mode": mode,
        "scale": [int(v) for v in scale], "labels": list(labels), "skip": skip,
        "rows": [{c: str(r.get(c, "")) for c in columns} for r in rows],
        "frames": {k: list(v) for k, v in (frames or {}).items()},
        "videoHref": video_href or "", "download": download_name, "storageKey": storage_key,
    }
    return (
        "<!DOCTYPE html>\n<html lang=\"zh\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<header><h1>{html.escape(title)}</h1><span id=\"progress\"></span>"
        "<button id=\"download\" type=\"button\">Download CSV</button></header>\n"
        f"<main>\n<div class=\"guide\">{guide_html}</div>\n<div id=\"items\"></div>\n</main>\n"
        f"<script type=\"application/json\" id=\"sheet-data\">{_json_for_script(data)}</script>\n"
        f"<script>{_JS}</script>\n</body>\n</html>\n"
    )


def write_pages(key: Mapping, pages_dir: str | os.PathLike, *, title: str, guide_html: str,
                mode: str, scale: Sequence[int] = (), labels: Sequence[str] = (), skip: str = "skip",
                frames: Mapping[str, Sequence[str]] | None = None,
                video_href: str | None = None) -> list[Path]:
    """``{pages_dir}/{annotator}.html`` for every annotator of an annotation key, each with the
    rows of that annotator's sheet. ``title`` may use ``{annotator}`` and ``{n}`` (rows)."""
    items = items_of_key(key)
    columns = BASE_COLUMNS + tuple(key["fields"])
    out = []
    for annotator in key["annotators"]:
        rows = sheet_rows(items, annotator, key["slots"][annotator], key["fields"])
        # the browser keeps ratings per sheet content: a new draw never inherits old ratings
        digest = hashlib.sha256(sheet_csv(rows, columns).encode("utf-8")).hexdigest()[:16]
        page = render_page(
            title=title.format(annotator=annotator, n=len(rows)), guide_html=guide_html,
            columns=columns, rows=rows, mode=mode, fields=key["fields"], scale=scale,
            labels=labels, skip=skip, frames=frames, video_href=video_href,
            download_name=f"{annotator}.csv",
            storage_key=f"tiktalk-{key['task']}-{annotator}-{digest}")
        path = Path(pages_dir) / f"{annotator}.html"
        write_text_atomic(path, page)
        out.append(path)
    return out
