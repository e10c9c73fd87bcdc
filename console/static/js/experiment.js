/* The running experiment: its phase, a timeline of its windows and faults with where the load
   is now, and each verdict as it is decided. */
"use strict";

(function (C) {
  const el = C.el;

  function segment(kind, label, start, end, total) {
    const node = el("div", {class: "segment", dataset: {kind: kind}, title: `${label}: ${start}–${end} s`}, label);
    node.style.left = (100 * start / total) + "%";
    node.style.width = Math.max(0.5, 100 * (end - start) / total) + "%";
    return node;
  }

  function timeline(run) {
    const total = (run.load && run.load.duration) || 0;
    if (!total) return null;
    const lanes = [];
    const windows = Object.entries(run.windows || {}).map(([name, [start, end]]) =>
      segment("window", name, start, end, total));
    lanes.push(el("div", {class: "lane"}, windows));
    const faults = (run.faults || []).map((f) => {
      const start = f.start !== null && f.start !== undefined ? f.start : f.planned_start;
      let end = f.end !== null && f.end !== undefined ? f.end : f.planned_end;
      if (end === null || end === undefined) end = total;
      return segment(f.start !== null && f.start !== undefined ? "fault" : "planned", f.label, start, end, total);
    });
    lanes.push(el("div", {class: "lane"}, faults));
    const box = el("div", {class: "timeline"}, lanes);
    if (run.elapsed !== undefined) {
      const now = el("div", {class: "now", title: `${run.elapsed} s`});
      now.style.left = Math.min(100, 100 * run.elapsed / total) + "%";
      box.append(now);
    }
    return box;
  }

  function verdicts(run) {
    if (!(run.verdicts || []).length) {
      return el("p", {class: "empty"}, run.status === "running" ? "verdicts come after the load" : "no verdicts");
    }
    return el("table", {class: "grid verdicts"},
      el("tbody", {}, run.verdicts.map((v) => el("tr", {dataset: {status: v.status}},
        el("td", {}, el("span", {class: "verdict", dataset: {status: v.status}}, v.status)),
        el("td", {}, v.name), el("td", {}, v.detail || "")))));
  }

  C.experiment = {
    render(run) {
      const box = document.getElementById("experiment");
      if (!run) return;
      const status = run.interrupted ? "interrupted" : run.status;
      const outcome = run.holds === true ? "hypothesis HOLDS" : run.holds === false ? "hypothesis FAILS" : "";
      C.replace(box,
        el("div", {class: "run-head", dataset: {status: status}},
          el("strong", {}, run.experiment),
          el("span", {class: "pill", dataset: {status: status}}, status),
          el("span", {}, `phase: ${run.phase}`),
          run.elapsed !== undefined && run.load ? el("span", {}, `${C.number(run.elapsed, 0)} / ${run.load.duration} s`) : null,
          el("span", {}, `resilience ${run.resilience === false ? "off" : "on"}`),
          outcome ? el("span", {class: "outcome", dataset: {holds: String(run.holds)}}, outcome) : null,
          run.run_dir ? el("code", {}, run.run_dir) : null),
        timeline(run),
        verdicts(run));
    },
  };
})(window.Console);
