/* Traffic: requests, 5xx and p95 per route group as live uPlot charts, and a table of the
   latest figures. Points arrive once a second from the stream; the last 5 minutes are kept. */
"use strict";

(function (C) {
  const KEEP = 300;
  const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948",
                   "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac", "#1f77b4", "#2ca02c"];
  const CHARTS = [["chart-rate", "rate"], ["chart-errors", "errors"], ["chart-p95", "p95"]];
  let points = [];
  let groups = [];
  let charts = [];

  function activeGroups() {
    const seen = new Set();
    for (const point of points) {
      for (const [group, row] of Object.entries(point.groups || {})) {
        if (row.rate > 0) seen.add(group);
      }
    }
    return Array.from(seen).sort();
  }

  function data(field) {
    const xs = points.map((p) => p.t);
    const series = groups.map((g) => points.map((p) => {
      const row = (p.groups || {})[g];
      return row && row[field] !== null && row[field] !== undefined ? row[field] : null;
    }));
    return [xs, ...series];
  }

  function build() {
    for (const chart of charts) chart.destroy();
    charts = CHARTS.map(([id, field]) => {
      const box = document.getElementById(id);
      C.replace(box);
      const options = {
        width: Math.max(240, box.clientWidth), height: 170,
        legend: {show: true, live: false},
        cursor: {drag: {x: false, y: false}},
        scales: {x: {time: true}, y: {range: (u, min, max) => [0, Math.max(max || 0, field === "p95" ? 10 : 1)]}},
        axes: [{stroke: "#9aa4b2", grid: {stroke: "#2a313c"}},
               {stroke: "#9aa4b2", grid: {stroke: "#2a313c"}, size: 50}],
        series: [{}, ...groups.map((g, i) => ({label: g, stroke: PALETTE[i % PALETTE.length],
                                                width: 1.5, spanGaps: false}))],
      };
      return new uPlot(options, data(field), box);
    });
  }

  function redraw() {
    const wanted = activeGroups();
    if (wanted.join() !== groups.join() || charts.length === 0) {
      groups = wanted;
      build();
      return;
    }
    CHARTS.forEach(([, field], index) => charts[index].setData(data(field)));
  }

  function table(point) {
    const body = document.querySelector("#traffic tbody");
    const rows = Object.entries((point && point.groups) || {})
      .filter(([, row]) => row.rate > 0 || row.errors > 0)
      .map(([group, row]) => C.el("tr", {dataset: {group: group, failing: row.errors > 0 ? "yes" : "no"}},
        C.el("td", {}, group), C.el("td", {}, C.number(row.rate)),
        C.el("td", {}, C.number(row.errors)), C.el("td", {}, C.percent(row.error_ratio)),
        C.el("td", {}, C.ms(row.p50)), C.el("td", {}, C.ms(row.p95)), C.el("td", {}, C.ms(row.p99))));
    C.replace(body, rows.length ? rows
      : [C.el("tr", {}, C.el("td", {colspan: 7, class: "empty"}, "no traffic through the gateway right now"))]);
  }

  C.traffic = {
    init() {
      redraw();
      table(null);
      window.addEventListener("resize", () => {
        for (const chart of charts) {
          chart.setSize({width: Math.max(240, chart.root.parentNode.clientWidth), height: 170});
        }
      });
    },
    load(history) {
      points = (history || []).slice(-KEEP);
      redraw();
      table(points[points.length - 1]);
    },
    add(point) {
      if (!point) return;
      if (points.length && point.t <= points[points.length - 1].t) return;
      points.push(point);
      if (points.length > KEEP) points = points.slice(-KEEP);
      redraw();
      table(point);
    },
  };
})(window.Console);
