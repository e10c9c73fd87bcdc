/* Traces: the slowest and the failed recent ones; a click opens one as a waterfall. */
"use strict";

(function (C) {
  const el = C.el;
  const COLORS = {gateway: "#4e79a7", auth: "#76b7b2", product: "#59a14f", cart: "#f28e2b",
                  order: "#b07aa1", loadtest: "#9c755f", experiment: "#edc948"};

  function item(trace) {
    return el("li", {dataset: {trace: trace.id, error: trace.error ? "yes" : "no",
                               duration: String(trace.duration_ms)}},
      el("button", {type: "button", class: "trace-link", onclick: () => open(trace.id)},
        el("span", {class: "duration"}, C.ms(trace.duration_ms)), " ",
        el("span", {class: "name"}, trace.name), " ",
        el("span", {class: "services"}, trace.services.join(" → ")), " ",
        el("time", {}, C.clock(trace.start)),
        trace.status_code ? el("span", {class: "code"}, ` ${trace.status_code}`) : null));
  }

  function bar(span, total) {
    const node = el("div", {class: "bar", dataset: {status: span.status}});
    node.style.left = (100 * span.offset_ms / total) + "%";
    node.style.width = Math.max(0.3, 100 * span.duration_ms / total) + "%";
    node.style.background = COLORS[span.service] || "#8c8c8c";
    for (const event of span.events) {
      const mark = el("i", {class: "event", title: `${event.name} ${JSON.stringify(event.attributes)}`});
      mark.style.left = (100 * (event.offset_ms - span.offset_ms) / Math.max(span.duration_ms, 0.001)) + "%";
      node.append(mark);
    }
    return node;
  }

  function waterfall(trace) {
    const total = Math.max(trace.duration_ms, 0.001);
    const rows = trace.spans.map((span) => {
      const label = el("div", {class: "label", title: Object.entries(span.attributes).map(([k, v]) => `${k}=${v}`).join("\n")},
        el("span", {class: "service"}, span.instance), " ", span.name,
        span.status === "error" ? el("span", {class: "failed"}, " ✕ " + (span.status_message || "error")) : null);
      label.style.paddingLeft = (span.depth * 14 + 4) + "px";
      return el("div", {class: "span-row", dataset: {status: span.status}},
        label, el("div", {class: "track"}, bar(span, total)),
        el("div", {class: "took"}, C.ms(span.duration_ms)));
    });
    return [
      el("header", {},
        el("strong", {}, `trace ${trace.id}`), ` ${C.ms(trace.duration_ms)}, ${trace.spans.length} spans, `,
        trace.services.join(" → "),
        trace.missing_parent ? el("span", {class: "failed"}, " (some parent spans are missing: still in a batch, or not sampled)") : null,
        el("button", {type: "button", class: "close", onclick: () => { document.getElementById("waterfall").hidden = true; }}, "close")),
      el("div", {class: "spans"}, rows),
    ];
  }

  async function open(id) {
    const box = document.getElementById("waterfall");
    try {
      const response = await fetch(`/api/traces/${encodeURIComponent(id)}`);
      const body = await response.json();
      if (!response.ok) throw new Error(body.error ? body.error.message : response.statusText);
      C.replace(box, waterfall(body));
      box.hidden = false;
      box.scrollIntoView({block: "nearest"});
    } catch (error) {
      C.toast(error.message, true);
    }
  }

  C.traces = {
    bind() {},
    open: open,
    render(view, status) {
      if (!view) {
        if (status && !status.ok) document.getElementById("traces-source").textContent = status.error || "";
        return;
      }
      document.getElementById("traces-source").textContent = `${view.count} recent, from ${view.source}`;
      for (const [id, list] of [["traces-slowest", view.slowest], ["traces-failed", view.failed]]) {
        C.replace(document.getElementById(id), list.length ? list.map(item)
          : el("li", {class: "empty"}, "none in the last minutes"));
      }
    },
  };
})(window.Console);
