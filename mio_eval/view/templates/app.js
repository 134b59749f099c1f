// mio-eval results viewer: index, per-run sample browser, two-model comparison.
// Runs from file:// with no server and no network: data files are scripts calling MIO_VIEW.put.
"use strict";

var MIO_VIEW = (function () {
  var cache = {}, waiting = {};
  function put(key, value) {
    cache[key] = value;
    (waiting[key] || []).forEach(function (w) { w[0](value); });
    delete waiting[key];
  }
  function load(key) {
    if (Object.prototype.hasOwnProperty.call(cache, key)) return Promise.resolve(cache[key]);
    return new Promise(function (resolve, reject) {
      var first = !waiting[key];
      (waiting[key] = waiting[key] || []).push([resolve, reject]);
      if (!first) return;
      var script = document.createElement("script");
      script.src = "data/" + key + ".js";
      script.onerror = function () {
        (waiting[key] || []).forEach(function (w) { w[1](new Error("cannot load data/" + key + ".js")); });
        delete waiting[key];
      };
      document.head.appendChild(script);
    });
  }
  return { put: put, load: load };
})();

function el(tag, attrs) {
  var node = document.createElement(tag);
  Object.keys(attrs || {}).forEach(function (k) {
    var v = attrs[k];
    if (v === null || v === undefined || v === false) return;
    if (k === "text") node.textContent = v;
    else if (k === "className") node.className = v;
    else if (k.slice(0, 2) === "on") node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  });
  for (var i = 2; i < arguments.length; i++) {
    var child = arguments[i];
    if (child === null || child === undefined) continue;
    (Array.isArray(child) ? child : [child]).forEach(function (c) {
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
  }
  return node;
}

function fmt(value, digits) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  return Number(value).toFixed(digits === undefined ? 2 : digits);
}

function badge(status) { return el("span", { className: "badge " + status, text: status }); }

// ---------------------------------------------------------------------------------------- index
function sortableTable(columns, rows) {
  var table = el("table", { className: "runs", id: "runs" });
  var thead = el("thead"), tbody = el("tbody"), state = { col: -1, dir: 1 };
  var headRow = el("tr");
  columns.forEach(function (col, index) {
    headRow.appendChild(el("th", { text: col.title, title: "sort by " + col.title, onclick: function () {
      state.dir = state.col === index ? -state.dir : 1;
      state.col = index;
      Array.prototype.forEach.call(headRow.children, function (th, j) {
        th.className = j === index ? (state.dir > 0 ? "sorted-asc" : "sorted-desc") : "";
      });
      render();
    } }));
  });
  thead.appendChild(headRow);
  function render() {
    var sorted = rows.slice();
    if (state.col >= 0) {
      var key = columns[state.col].sort;
      sorted.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (x === y) return 0;
        if (x === null || x === undefined) return 1;
        if (y === null || y === undefined) return -1;
        return (x < y ? -1 : 1) * state.dir;
      });
    }
    tbody.textContent = "";
    sorted.forEach(function (row) {
      var tr = el("tr", { "data-run": row.id });
      columns.forEach(function (col) { tr.appendChild(col.cell(row)); });
      tbody.appendChild(tr);
    });
  }
  render();
  table.appendChild(thead);
  table.appendChild(tbody);
  return table;
}

function renderIndex(page, app) {
  app.appendChild(el("h1", { text: "Runs" }));
  var compare = page.compare || {};
  var columns = [
    { title: "model", sort: function (r) { return r.model; }, cell: function (r) { return el("td", { text: r.model }); } },
    { title: "task", sort: function (r) { return r.task; }, cell: function (r) { return el("td", { text: r.task }); } },
    { title: "metric", sort: function (r) { return r.primary; }, cell: function (r) {
      return el("td", { text: r.primary ? r.primary + (r.higher_is_better ? " ↑" : " ↓") : "–" }); } },
    { title: "value", sort: function (r) { return r.value; }, cell: function (r) {
      return el("td", { className: "num", text: fmt(r.value) }); } },
    { title: "other metrics", sort: function (r) { return r.metrics.length; }, cell: function (r) {
      return el("td", { text: r.metrics.slice(1).map(function (m) { return m[0] + " " + m[1]; }).join(", ") }); } },
    { title: "n", sort: function (r) { return r.n; }, cell: function (r) {
      return el("td", { className: "num", text: String(r.n) + (r.split_size ? " / " + r.split_size : "") }); } },
    { title: "errors", sort: function (r) { return r.errors; }, cell: function (r) {
      return el("td", { className: "num", text: String(r.errors) }); } },
    { title: "run", sort: function (r) { return r.status; }, cell: function (r) {
      return el("td", null, badge(r.status), r.limit !== null ? " limit " + r.limit : ""); } },
    { title: "judge", sort: function (r) { return r.judge; }, cell: function (r) { return el("td", { text: r.judge }); } },
    { title: "variant", sort: function (r) { return r.variant; }, cell: function (r) { return el("td", { text: r.variant }); } },
    { title: "samples", sort: function (r) { return r.n_samples; }, cell: function (r) {
      return el("td", null, el("a", { href: "run_" + r.id + ".html", text: r.n_samples + " samples" }),
        compare[r.task] ? [" · ", el("a", { href: compare[r.task], text: "compare" })] : null); } },
  ];
  app.appendChild(sortableTable(columns, page.runs));
  if (page.plots && page.plots.length) {
    app.appendChild(el("h2", { text: "Plots" }));
    app.appendChild(el("div", { className: "plots" }, page.plots.map(function (src) {
      return el("img", { src: src, alt: src, title: src });
    })));
  }
}

// ------------------------------------------------------------------------------ sample display
function mediaNode(item) {
  var label = item[0], kind = item[1], src = item[2], node;
  if (kind === "audio") node = el("audio", { controls: true, preload: "metadata", src: src });
  else if (kind === "video") node = el("video", { controls: true, preload: "metadata", src: src });
  else node = el("img", { src: src, alt: label, loading: "lazy" });
  return el("figure", { "data-kind": kind }, el("figcaption", { text: label }), node);
}

function alignmentNode(align) {
  var box = el("div", { className: "align", title: "word alignment (jiwer): substitution, deletion, insertion" });
  box.appendChild(el("small", { text: "alignment: " }));
  align.forEach(function (chunk) {
    var op = chunk[0];
    if (op === "e") box.appendChild(el("span", { className: "e", text: chunk[1] }));
    else if (op === "s") box.appendChild(el("span", { className: "s", title: "substitution: " + chunk[1] + " → " + chunk[2],
      text: chunk[1] + " → " + chunk[2] }));
    else if (op === "d") box.appendChild(el("span", { className: "d", title: "deletion", text: chunk[1] }));
    else box.appendChild(el("span", { className: "i", title: "insertion", text: "+" + chunk[2] }));
  });
  return box;
}

function sampleCard(record, run) {
  var card = el("article", { className: "sample" + (record.error ? " has-error" : ""), "data-id": record.id });
  card.appendChild(el("h3", null, el("span", { text: record.id }),
    el("span", { className: "value", text: run.primary ? run.primary + " " + fmt(scaled(record.value, run)) : "" }),
    record.error ? el("span", { className: "badge error", text: "error: " + record.error }) : null));
  if (record.media.length) card.appendChild(el("div", { className: "media" }, record.media.map(mediaNode)));
  if (record.texts.length) {
    var dl = el("dl", { className: "texts" });
    record.texts.forEach(function (t) { dl.appendChild(el("dt", { text: t[0] })); dl.appendChild(el("dd", { text: t[1] })); });
    card.appendChild(dl);
  }
  if (record.align) card.appendChild(alignmentNode(record.align));
  var names = Object.keys(record.scores);
  if (names.length) card.appendChild(el("div", { className: "scores", text: names.map(function (k) {
    var v = record.scores[k];
    return k + " " + (Number.isInteger(v) ? v : fmt(v, 4));
  }).join(" · ") }));
  return card;
}

function scaled(value, run) { return value === null || value === undefined ? null : value * (run.scale || 1); }

function loadChunks(run, kind) {
  var keys = [];
  for (var k = 0; k < run.index_chunks; k++) keys.push(run.id + "/" + kind + "_" + k);
  return Promise.all(keys.map(MIO_VIEW.load)).then(function (parts) {
    var all = [];
    parts.forEach(function (p) { all = all.concat(p); });
    return all;  // position = dataset order
  });
}

// [id, value, has_error] per sample: loaded when the page opens.
function loadIndex(run) { return loadChunks(run, "index"); }

// Lower-cased search text per sample: loaded on the first text search only.
function loadTexts(run) { return loadChunks(run, "text"); }

function loadRecords(run, positions) {
  var chunks = {};
  positions.forEach(function (p) { chunks[Math.floor(p / run.sample_chunk)] = true; });
  var keys = Object.keys(chunks).map(Number);
  return Promise.all(keys.map(function (c) { return MIO_VIEW.load(run.id + "/samples_" + c); })).then(function (parts) {
    var byChunk = {};
    keys.forEach(function (c, i) { byChunk[c] = parts[i]; });
    return positions.map(function (p) { return byChunk[Math.floor(p / run.sample_chunk)][p % run.sample_chunk]; });
  });
}

function controls(spec, onchange) {
  var box = el("div", { className: "controls" }), inputs = {};
  spec.forEach(function (s) {
    var input;
    if (s.options) {
      input = el("select", { id: s.id, onchange: onchange }, s.options.map(function (o) {
        return el("option", { value: o[0], text: o[1] });
      }));
    } else {
      input = el("input", { id: s.id, type: s.type, placeholder: s.placeholder || "", step: "any", oninput: onchange });
    }
    inputs[s.id] = input;
    box.appendChild(el("label", null, s.label + " ", input));
  });
  return { box: box, inputs: inputs };
}

function pager(state, total, rerender) {
  var pages = Math.max(1, Math.ceil(total / state.size));
  state.page = Math.min(state.page, pages - 1);
  return el("span", null,
    el("button", { id: "prev", disabled: state.page === 0, onclick: function () { state.page--; rerender(); }, text: "◀" }),
    " page " + (state.page + 1) + " / " + pages + " ",
    el("button", { id: "next", disabled: state.page >= pages - 1, onclick: function () { state.page++; rerender(); }, text: "▶" }));
}

// -------------------------------------------------------------------------------- run browser
// Samples per page: 25, or ?size=N in the address.
var PAGE_SIZE = Math.max(1, parseInt(new URLSearchParams(location.search).get("size"), 10) || 25);

function sampleFilters(prefix) {
  return [
    { id: "error", label: "errors", options: [["all", "all"], ["only", "errors only"], ["none", "no errors"]] },
    { id: "min", label: prefix + " ≥", type: "number" },
    { id: "max", label: "≤", type: "number" },
    { id: "search", label: "search", type: "search", placeholder: "id or text" },
  ];
}

function needle(inputs) { return inputs.search.value.trim().toLowerCase(); }

function passes(entry, value, text, inputs) {
  var mode = inputs.error.value, lo = parseFloat(inputs.min.value), hi = parseFloat(inputs.max.value);
  var wanted = needle(inputs);
  if (mode === "only" && !entry[2]) return false;
  if (mode === "none" && entry[2]) return false;
  if (!Number.isNaN(lo) && !(value !== null && value >= lo)) return false;
  if (!Number.isNaN(hi) && !(value !== null && value <= hi)) return false;
  if (wanted && (text === null || text.indexOf(wanted) < 0)) return false;
  return true;
}

function byValue(values, direction) {
  return function (a, b) {
    var x = values(a), y = values(b);
    if (x === null && y === null) return a - b;
    if (x === null) return 1;
    if (y === null) return -1;
    return x === y ? a - b : (x < y ? -1 : 1) * direction;
  };
}

function renderRun(page, app) {
  var run = page.run;
  app.appendChild(el("h1", null, run.model + " · " + run.task + " ", badge(run.status)));
  app.appendChild(el("p", null, run.metrics.map(function (m) { return m[0] + (m[2] ? " ↑ " : " ↓ ") + m[1]; }).join(" · "),
    el("br"), "n " + run.n + (run.split_size ? " of " + run.split_size : "") + " · errors " + run.errors +
    " · judge " + run.judge + " · " + run.variant,
    Object.keys(run.times).length ? [el("br"), "times: " + Object.keys(run.times).map(function (k) {
      return k + " " + fmt(run.times[k], 1); }).join(", ")] : null));
  var sortSpec = { id: "sort", label: "sort", options: [["dataset", "dataset order"], ["best", "best first"], ["worst", "worst first"]] };
  var ui = controls(sampleFilters(run.primary || "value").concat([sortSpec]), function () { state.page = 0; update(); });
  var status = el("span", { className: "status", id: "status", text: "loading…" });
  var nav = el("span");
  ui.box.appendChild(nav);
  ui.box.appendChild(status);
  app.appendChild(ui.box);
  var list = el("section", { id: "samples" });
  app.appendChild(list);
  var state = { page: 0, size: PAGE_SIZE, index: [], texts: null, token: 0 };
  function value(p) { return scaled(state.index[p][1], run); }
  function update() {
    var inputs = ui.inputs, positions = [];
    if (needle(inputs) && state.texts === null) {
      status.textContent = "loading search text…";
      loadTexts(run).then(function (texts) { state.texts = texts; update(); });
      return;
    }
    for (var p = 0; p < state.index.length; p++) {
      if (passes(state.index[p], value(p), state.texts ? state.texts[p] : null, inputs)) positions.push(p);
    }
    var sort = inputs.sort.value;
    if (sort !== "dataset") positions.sort(byValue(value, (sort === "best") === run.higher_is_better ? -1 : 1));
    nav.textContent = "";
    nav.appendChild(pager(state, positions.length, update));
    var shown = positions.slice(state.page * state.size, (state.page + 1) * state.size);
    status.textContent = positions.length + " of " + state.index.length + " samples match";
    var token = ++state.token;
    loadRecords(run, shown).then(function (records) {
      if (token !== state.token) return;
      list.textContent = "";
      records.forEach(function (r) { list.appendChild(sampleCard(r, run)); });
      document.body.setAttribute("data-ready", String(token));
    });
  }
  loadIndex(run).then(function (index) { state.index = index; update(); });
}

// ---------------------------------------------------------------------------------- comparison
function renderCompare(page, app) {
  var runs = page.runs;
  app.appendChild(el("h1", { text: "Compare models on " + page.task }));
  var options = runs.map(function (r, i) { return [String(i), r.model + " (" + r.status + ")"]; });
  var ui = controls([{ id: "a", label: "A", options: options }, { id: "b", label: "B", options: options }]
    .concat(sampleFilters("B − A"))
    .concat([{ id: "sort", label: "sort", options: [["worse", "B worse first"], ["better", "B better first"],
      ["dataset", "dataset order"]] }]), function (event) {
      state.page = 0;
      if (event && event.target && (event.target.id === "a" || event.target.id === "b")) prepare(); else update();
    });
  ui.inputs.b.value = "1";
  var status = el("span", { className: "status", id: "status", text: "loading…" });
  var nav = el("span");
  ui.box.appendChild(nav);
  ui.box.appendChild(status);
  app.appendChild(ui.box);
  app.appendChild(el("p", { className: "legend" }, el("span", { className: "delta better", text: "better" }),
    el("span", { className: "delta worse", text: "worse" }), "B − A per sample on A's headline metric, in its direction."));
  var list = el("section", { id: "samples" });
  app.appendChild(list);
  var state = { page: 0, size: PAGE_SIZE, pairs: [], texts: null, token: 0 };
  function prepare() {
    var a = runs[Number(ui.inputs.a.value)], b = runs[Number(ui.inputs.b.value)];
    state.texts = null;
    Promise.all([loadIndex(a), loadIndex(b)]).then(function (both) {
      var where = {};
      both[1].forEach(function (entry, p) { where[entry[0]] = p; });
      state.a = a; state.b = b; state.pairs = [];
      both[0].forEach(function (entry, p) {
        if (!(entry[0] in where)) return;
        var q = where[entry[0]], other = both[1][q];
        var va = scaled(entry[1], a), vb = scaled(other[1], b);
        var delta = va === null || vb === null ? null : vb - va;
        state.pairs.push({ a: p, b: q, delta: delta, entry: [entry[0], delta, entry[2] || other[2]] });
      });
      update();
    });
  }
  function update() {
    var a = state.a, b = state.b, sign = a.higher_is_better ? 1 : -1, rows = [];
    if (needle(ui.inputs) && state.texts === null) {
      status.textContent = "loading search text…";
      Promise.all([loadTexts(a), loadTexts(b)]).then(function (both) {
        state.texts = state.pairs.map(function (pair) { return both[0][pair.a] + " " + both[1][pair.b]; });
        update();
      });
      return;
    }
    state.pairs.forEach(function (pair, i) {
      if (passes(pair.entry, pair.delta, state.texts ? state.texts[i] : null, ui.inputs)) rows.push(i);
    });
    var sort = ui.inputs.sort.value;
    if (sort !== "dataset") rows.sort(byValue(function (i) { return state.pairs[i].delta; }, (sort === "worse" ? 1 : -1) * sign));
    nav.textContent = "";
    nav.appendChild(pager(state, rows.length, update));
    var shown = rows.slice(state.page * state.size, (state.page + 1) * state.size).map(function (i) { return state.pairs[i]; });
    status.textContent = rows.length + " of " + state.pairs.length + " shared samples match";
    var token = ++state.token;
    Promise.all([loadRecords(a, shown.map(function (p) { return p.a; })),
                 loadRecords(b, shown.map(function (p) { return p.b; }))]).then(function (records) {
      if (token !== state.token) return;
      list.textContent = "";
      shown.forEach(function (pair, i) {
        var d = pair.delta, cls = d === null || d === 0 ? "" : (d * sign > 0 ? "better" : "worse");
        list.appendChild(el("div", { className: "compare-row", "data-id": pair.entry[0] },
          el("h3", null, pair.entry[0] + " ", el("span", { className: "delta " + cls, text: "B − A " + fmt(d) })),
          el("div", { className: "pair" }, sampleCard(records[0][i], a), sampleCard(records[1][i], b))));
      });
      document.body.setAttribute("data-ready", String(token));
    });
  }
  prepare();
}

(function main() {
  var page = window.MIO_VIEW_PAGE, app = document.getElementById("app");
  app.textContent = "";
  if (page.page === "index") { renderIndex(page, app); document.body.setAttribute("data-ready", "index"); }
  else if (page.page === "run") renderRun(page, app);
  else renderCompare(page, app);
})();
