// Runs a rating page's own script under node with a minimal fake DOM, plays an annotator
// (ticks the controls the page built, through their change listeners), presses "Download CSV"
// and prints the downloaded file. Used by tests/test_rating_page_dom.py.
//   node rating_page_harness.js PAGE_SCRIPT.js SHEET_DATA.json CHOICES.json
// CHOICES: {"<row index>": {"<field>": value}} (scale mode: the radio value to pick; labels
// mode: {"status": "labelled"|"skip"|"", "<label>": true|false}).
"use strict";
const fs = require("fs");
const [scriptPath, dataPath, choicesPath] = process.argv.slice(2);

class El {
  constructor(tag) {
    this.tagName = tag; this.children = []; this.listeners = {}; this.className = "";
    this.textContent = ""; this.value = ""; this.checked = false; this.parent = null;
    const self = this;
    this.classList = {toggle(c, on) { self.classes = self.classes || new Set(); on ? self.classes.add(c) : self.classes.delete(c); }};
  }
  appendChild(c) { c.parent = this; this.children.push(c); return c; }
  addEventListener(type, f) { (this.listeners[type] = this.listeners[type] || []).push(f); }
  fire(type) { (this.listeners[type] || []).forEach((f) => f()); }
  remove() {}
  click() {
    this.fire("click");
    if (this.tagName === "a" && this.download) downloads.push({name: this.download, blob: blobs[this.href]});
  }
  *walk() { yield this; for (const c of this.children) yield* c.walk(); }
}

const downloads = [];
const blobs = {};
const byId = {
  "sheet-data": {textContent: fs.readFileSync(dataPath, "utf8")},
  items: new El("div"), progress: new El("span"), download: new El("button"),
};
global.document = {
  body: new El("body"),
  getElementById: (id) => byId[id],
  createElement: (tag) => new El(tag),
  createTextNode: (text) => { const e = new El("#text"); e.textContent = text; return e; },
  addEventListener: (type, f) => { if (type === "DOMContentLoaded") f(); },
};
global.localStorage = {getItem: () => null, setItem: () => {}};
global.Blob = class { constructor(parts, opts) { this.parts = parts; this.type = opts.type; } };
global.URL = {createObjectURL: (b) => { const u = "blob:" + Object.keys(blobs).length; blobs[u] = b; return u; },
              revokeObjectURL: () => {}};

require(scriptPath);  // builds the page (init on DOMContentLoaded)

const data = JSON.parse(byId["sheet-data"].textContent);
const choices = JSON.parse(fs.readFileSync(choicesPath, "utf8"));
const candidates = byId.items.children.flatMap((box) => box.children.filter((c) => c.className === "cand"));
if (candidates.length !== data.rows.length) throw new Error(`page shows ${candidates.length} candidates for ${data.rows.length} rows`);
candidates.forEach((cand, i) => {
  const want = choices[i] || {};
  const inputs = [...cand.walk()];
  if (data.mode === "scale") {
    for (const [field, value] of Object.entries(want)) {
      const radio = inputs.find((e) => e.tagName === "input" && e.name === `r${i}_${field}` && e.value === String(value));
      if (!radio) throw new Error(`row ${i}: no radio ${field}=${value}`);
      radio.checked = true; radio.fire("change");
    }
  } else {
    const boxes = inputs.filter((e) => e.tagName === "input" && e.type === "checkbox");
    data.labels.forEach((label, k) => { if (want[label]) { boxes[k].checked = true; boxes[k].fire("change"); } });
    const select = inputs.find((e) => e.tagName === "select");
    if ("status" in want) { select.value = want.status; select.fire("change"); }
  }
});
const shown = [...byId.items.walk()].filter((e) => e.className === "resp").map((e) => e.children[1].textContent);
byId.download.click();
if (downloads.length !== 1) throw new Error("no download");
process.stdout.write(JSON.stringify({name: downloads[0].name, type: downloads[0].blob.type,
  csv: downloads[0].blob.parts.join(""), progress: byId.progress.textContent, shown}));
