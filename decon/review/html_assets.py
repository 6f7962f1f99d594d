"""The CSS and script inlined in the HTML report (kept apart from the Python that fills the page)."""

from __future__ import annotations

PAGE_CSS = """
:root { --q: #b91c1c; --a: #a21caf; --p: #0e7490; --muted: #6b7280; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #111827;
  background: #f9fafb; }
header { background: #1f2937; color: #f9fafb; padding: 12px 24px; }
header h1 { margin: 0 0 4px; font-size: 20px; }
header p { margin: 0 0 6px; color: #d1d5db; }
header nav a { color: #93c5fd; margin-right: 14px; text-decoration: none; }
main { padding: 8px 24px 40px; max-width: 1280px; }
section { margin-top: 18px; }
h2 { font-size: 17px; border-bottom: 1px solid #d1d5db; padding-bottom: 4px; }
table { border-collapse: collapse; background: #fff; margin: 6px 0 12px; }
th, td { border: 1px solid #e5e7eb; padding: 3px 10px; text-align: left; vertical-align: top; }
td:not(:first-child) { font-variant-numeric: tabular-nums; }
th { background: #f3f4f6; }
.charts { display: flex; flex-wrap: wrap; gap: 12px 28px; }
figure.chart { margin: 0; background: #fff; border: 1px solid #e5e7eb; padding: 8px 10px; }
figure.chart figcaption { font-weight: 600; margin-bottom: 4px; }
figure.chart svg text { font: 12px system-ui, sans-serif; fill: #111827; }
figure.chart svg text.tick { fill: #4b5563; }
.note { color: #fde68a; }
#controls { display: flex; flex-wrap: wrap; gap: 10px 18px; align-items: center; margin-bottom: 8px; }
#controls label { color: #374151; }
#controls input[type=number] { width: 6em; }
#status { color: var(--muted); }
article.match { background: #fff; border: 1px solid #e5e7eb; border-radius: 6px; padding: 10px 14px;
  margin-bottom: 10px; }
article.match h3 { margin: 0 0 6px; font-size: 15px; }
article.match h3 .score { float: right; font-variant-numeric: tabular-nums; }
article.match dl { display: grid; grid-template-columns: max-content 1fr; gap: 1px 12px; margin: 0 0 8px; }
article.match dt { color: var(--muted); }
article.match dd { margin: 0; word-break: break-all; }
.text { white-space: pre-wrap; word-break: break-word; background: #f9fafb; border-left: 3px solid #d1d5db;
  padding: 6px 10px; margin: 4px 0 8px; }
mark { background: none; font-weight: 600; }
mark.q { color: var(--q); background: #fee2e2; }
mark.a { color: var(--a); background: #fae8ff; }
mark.p { color: var(--p); background: #cffafe; }
.tag { display: inline-block; font-size: 12px; font-weight: 600; padding: 0 6px; border-radius: 3px;
  margin-right: 6px; color: #fff; }
.tag.q { background: var(--q); } .tag.a { background: var(--a); } .tag.p { background: var(--p); }
.verdict { color: var(--muted); }
#pager { display: flex; gap: 8px; align-items: center; }
.legend mark { padding: 0 4px; }
"""

PAGE_SCRIPT = r"""
"use strict";
(function () {
  const PAGE = 50;
  const $ = (id) => document.getElementById(id);
  function el(tag, attrs, ...kids) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v; else node.setAttribute(k, v);
    }
    for (const kid of kids) if (kid !== null && kid !== undefined)
      node.append(typeof kid === "string" ? document.createTextNode(kid) : kid);
    return node;
  }
  async function load() {
    const bin = atob($("decon-data").textContent.trim());
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    if (typeof DecompressionStream === "undefined")
      throw new Error("this browser lacks DecompressionStream; open the file in a current browser");
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return JSON.parse(await new Response(stream).text());
  }
  const OPEN = {"\u3010": "q", "\u27e6": "a", "\u27e8": "p"};
  const CLOSE = {"\u3011": "q", "\u27e7": "a", "\u27e9": "p"};
  function expand(text, texts) {
    // a span stored as REF start.length is that slice of the eval passage, question or answer
    const slot = {"\u27e8": 0, "\u3010": 1, "\u27e6": 2};
    return text.replace(/([\u3010\u27e6\u27e8])(\s*)\ue000(\d+)\.(\d+)/g,
      (all, open, ws, at, n) => open + ws +
        Array.from(texts[slot[open]] || "").slice(Number(at), Number(at) + Number(n)).join(""));
  }
  function highlight(text) {
    const root = el("div", {class: "text training"});
    const stack = [root];
    let buf = "";
    const flush = () => { if (buf) { stack[stack.length - 1].append(document.createTextNode(buf)); buf = ""; } };
    for (const ch of text) {
      if (OPEN[ch]) { flush(); const m = el("mark", {class: OPEN[ch]}); stack[stack.length - 1].append(m); stack.push(m); }
      else if (CLOSE[ch]) { flush(); if (stack.length > 1) stack.pop(); }
      else buf += ch;
    }
    flush();
    return root;
  }
  function verdict(score) {
    if (score === null) return "";
    if (score >= 1.0) return "exact match: contamination is certain";
    if (score > 0.9) return "very high similarity: contamination is likely";
    if (score > 0.8) return "high similarity: contamination is likely";
    if (score > 0.7) return "moderate similarity: needs a manual look";
    return "low similarity: borderline detection";
  }
  function card(d, row, number) {
    const [suite, score, file, line, ref, evalLine, evalIdx, text, method, split, detail] = row;
    const head = el("h3", {}, `#${number} ${d.suites[suite]}`,
      el("span", {class: "score"}, score === null ? "no score" : score.toFixed(3)));
    const facts = el("dl", {},
      el("dt", {}, "Training file"), el("dd", {class: "training-file"}, `${d.files[file]} (line ${line})`),
      el("dt", {}, "Reference"), el("dd", {}, `${d.refs[ref]} (line ${evalLine})`),
      el("dt", {}, "Method"), el("dd", {}, (d.methods[method] || "-") + (split ? ` · split ${split}` : "")),
      el("dt", {}, "Assessment"), el("dd", {class: "verdict"}, verdict(score)));
    const [passage, question, answer] = d.evals[evalIdx];
    const evalPart = el("div", {class: "eval"}, el("strong", {}, "Eval record"));
    let any = false;
    for (const [label, cls, value] of [["Passage", "p", passage], ["Question", "q", question], ["Answer", "a", answer]]) {
      if (value === null) continue;
      any = true;
      evalPart.append(el("div", {class: "text"}, el("span", {class: "tag " + cls}, label), value));
    }
    if (!any) evalPart.append(el("div", {class: "text"}, "(no eval text in this report)"));
    const details = el("details", {}, el("summary", {}, "Scores and counts"));
    const table = el("table", {});
    d.details.forEach((name, i) => { if (detail[i] !== null) table.append(el("tr", {}, el("td", {}, name), el("td", {}, String(detail[i])))); });
    details.append(table);
    return el("article", {class: "match", "data-suite": d.suites[suite]}, head, facts,
      el("strong", {}, "Training text"), text === null ? el("div", {class: "text"}, "(no training text in this report)")
        : highlight(expand(text, d.evals[evalIdx])),
      evalPart, details);
  }
  function controls(d, state, apply) {
    const counts = new Array(d.suites.length).fill(0);
    for (const r of d.rows) counts[r[0]]++;
    const suite = el("select", {id: "f-suite"}, el("option", {value: ""}, `all suites (${d.rows.length})`));
    d.suites.map((s, i) => [s, i]).sort((x, y) => x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0)
      .forEach(([s, i]) => suite.append(el("option", {value: String(i)}, `${s} (${counts[i]})`)));
    const min = el("input", {id: "f-min", type: "number", step: "0.01", min: "0", max: "1", placeholder: "any"});
    const max = el("input", {id: "f-max", type: "number", step: "0.01", min: "0", max: "1", placeholder: "any"});
    const file = el("input", {id: "f-file", type: "search", placeholder: "training file contains"});
    const order = el("select", {id: "f-order"}, el("option", {value: "desc"}, "score, highest first"),
      el("option", {value: "asc"}, "score, lowest first"));
    const legend = el("span", {class: "legend"}, "Highlights: ", el("mark", {class: "q"}, "question"), " ",
      el("mark", {class: "a"}, "answer"), " ", el("mark", {class: "p"}, "passage"));
    for (const input of [suite, min, max, file, order]) input.addEventListener("input", () => {
      state.suite = suite.value === "" ? null : Number(suite.value);
      state.min = min.value === "" ? null : Number(min.value);
      state.max = max.value === "" ? null : Number(max.value);
      state.file = file.value.trim().toLowerCase();
      state.order = order.value;
      state.page = 0;
      apply();
    });
    $("controls").append(el("label", {}, "Eval suite ", suite), el("label", {}, "Score from ", min),
      el("label", {}, "to ", max), el("label", {}, "", file), el("label", {}, "Order ", order), legend,
      el("span", {id: "status"}));
  }
  function start(d) {
    const state = {suite: null, min: null, max: null, file: "", order: "desc", page: 0};
    let shown = [];
    const list = $("match-list"), pager = $("pager");
    function filter() {
      shown = [];
      d.rows.forEach((r, i) => {
        if (state.suite !== null && r[0] !== state.suite) return;
        if (state.min !== null && (r[1] === null || r[1] < state.min)) return;
        if (state.max !== null && (r[1] === null || r[1] > state.max)) return;
        if (state.file && !d.files[r[2]].toLowerCase().includes(state.file)) return;
        shown.push(i);
      });
      if (state.order === "asc") shown.reverse();
    }
    function render() {
      const pages = Math.max(1, Math.ceil(shown.length / PAGE));
      state.page = Math.min(state.page, pages - 1);
      const first = state.page * PAGE;
      const slice = shown.slice(first, first + PAGE);
      list.replaceChildren(...slice.map((i, k) => card(d, d.rows[i], first + k + 1)));
      if (!slice.length) list.append(el("p", {}, "No match passes the filters."));
      $("status").textContent = shown.length
        ? `showing ${first + 1}-${first + slice.length} of ${shown.length} matches` : "0 matches";
      const prev = el("button", {id: "prev"}, "\u2190 previous");
      const next = el("button", {id: "next"}, "next \u2192");
      prev.disabled = state.page === 0;
      next.disabled = state.page >= pages - 1;
      prev.onclick = () => { state.page--; render(); list.scrollIntoView(); };
      next.onclick = () => { state.page++; render(); list.scrollIntoView(); };
      pager.replaceChildren(prev, el("span", {}, `page ${state.page + 1} of ${pages}`), next);
    }
    const apply = () => { filter(); render(); };
    controls(d, state, apply);
    apply();
    document.body.setAttribute("data-ready", "1");
  }
  load().then(start, (err) => {
    $("match-list").replaceChildren(el("p", {}, "Cannot show the matches: " + err.message));
    document.body.setAttribute("data-ready", "error");
  });
})();
"""
