/* The live stream: one EventSource per page; each update is handed to every panel. */
"use strict";

(function (C) {
  const connection = document.getElementById("connection");

  function setConnection(state, text) {
    connection.dataset.state = state;
    connection.textContent = text;
  }

  function showSources(sources) {
    for (const pill of document.querySelectorAll("#sources [data-source]")) {
      const key = {"gateway": "gateway", "fault proxy": "faults", "traces": "traces",
                   "experiment": "experiment"}[pill.dataset.source];
      const status = sources[key] || (key === "gateway" ? sources.metrics : null);
      if (!status) continue;
      pill.dataset.ok = status.ok ? "yes" : "no";
      pill.title = status.ok ? pill.title.split(" — ")[0]
        : pill.title.split(" — ")[0] + " — " + (status.error || "not answering");
    }
  }

  function showLocust(url) {
    const link = document.getElementById("locust-link");
    link.hidden = !url;
    if (url) link.href = url;
  }

  function update(data) {
    setConnection("live", "live · " + C.clock(data.t));
    showSources(data.sources || {});
    showLocust(data.locust_url);
    const panels = [
      () => C.breakers.render(data.breakers, data.sources.gateway),
      () => C.traffic.add(data.traffic),
      () => C.faults.render(data.faults, data.sources.faults),
      () => C.experiment.render(data.experiment),
      () => C.traces.render(data.traces, data.sources.traces),
    ];
    for (const panel of panels) {
      try { panel(); } catch (error) { console.warn("panel failed", error); }
    }
  }

  function connect() {
    const source = new EventSource("/stream");
    source.addEventListener("history", (event) => C.traffic.load(JSON.parse(event.data).traffic));
    source.addEventListener("update", (event) => update(JSON.parse(event.data)));
    source.addEventListener("open", () => setConnection("live", "live"));
    source.addEventListener("error", () => setConnection("lost", "reconnecting…"));
  }

  document.addEventListener("DOMContentLoaded", () => {
    C.faults.bind();
    C.traces.bind();
    C.traffic.init();
    connect();
  });
})(window.Console);
