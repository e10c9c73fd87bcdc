/* Breakers: every upstream's instances with state, time to the next trial, failure and
   slow-call rates, bulkhead use and rejections. */
"use strict";

(function (C) {
  const el = C.el;

  function state(instance) {
    const badge = el("span", {class: "breaker", dataset: {state: instance.state}}, instance.state);
    if (instance.state !== "open") return badge;
    let trial = "";
    if (instance.next_trial_in !== null) {
      trial = instance.next_trial_in > 0
        ? "trial in " + (instance.estimated ? "≈" : "") + C.number(instance.next_trial_in) + " s"
        : "trial due";
    }
    return el("span", {}, badge, trial ? el("span", {class: "trial"}, " " + trial) : null);
  }

  function instanceRow(upstream, instance) {
    instance.estimated = instance.next_trial_estimated;
    return el("tr", {dataset: {upstream: upstream, instance: instance.name, breaker: instance.state}},
      el("td", {title: instance.url}, instance.name),
      el("td", {class: "state"}, state(instance)),
      el("td", {}, C.percent(instance.failure_rate)),
      el("td", {}, C.percent(instance.slow_call_rate)),
      el("td", {}, instance.failures_in_a_row === null || instance.failures_in_a_row === undefined
        ? "–" : String(instance.failures_in_a_row)),
      el("td", {}, String(instance.in_flight)),
      el("td", {}, String(instance.served)),
      el("td", {}, String(instance.failures)),
      el("td", {}, instance.ejected_for > 0 ? C.number(instance.ejected_for) + " s" : "–"),
      el("td", {class: "error-text", title: instance.last_error}, instance.last_error || ""));
  }

  function upstreamCard(row) {
    const bulkhead = row.bulkhead;
    const use = bulkhead.limit ? bulkhead.in_use / bulkhead.limit : 0;
    const meter = el("meter", {min: 0, max: bulkhead.limit || 1, value: bulkhead.in_use,
                               high: Math.max(1, bulkhead.limit * 0.8)});
    const rejected = bulkhead.rejected_per_s ? ` (${C.number(bulkhead.rejected_per_s)}/s)` : "";
    const worst = row.instances.some((i) => i.state === "open") ? "open"
      : row.instances.some((i) => i.state === "half-open") ? "half-open" : "closed";
    return el("article", {class: "upstream", dataset: {upstream: row.upstream, worst: worst}},
      el("header", {},
        el("h3", {}, row.upstream),
        el("span", {class: "bulkhead", title: "bulkhead: calls in flight / limit"},
          "bulkhead ", meter, ` ${bulkhead.in_use}/${bulkhead.limit}`),
        el("span", {class: "rejected", dataset: {some: bulkhead.rejected > 0 ? "yes" : "no"}},
          `rejected ${bulkhead.rejected}${rejected}`),
        use >= 1 ? el("span", {class: "full"}, "full") : null),
      el("table", {class: "grid"},
        el("thead", {}, el("tr", {},
          ["instance", "breaker", "failure rate", "slow calls", "failures in a row", "in flight",
           "served", "failed", "ejected", "last error"].map((h) => el("th", {}, h)))),
        el("tbody", {}, row.instances.map((i) => instanceRow(row.upstream, i)))));
  }

  C.breakers = {
    render(rows, status) {
      const box = document.getElementById("breakers");
      if (!rows) {
        if (!box.querySelector(".upstream")) {
          C.replace(box, el("p", {class: "empty"}, "the gateway's upstream view is not answering" +
            (status && status.error ? ": " + status.error : "")));
        }
        box.dataset.stale = "yes";
        return;
      }
      box.dataset.stale = "no";
      C.replace(box, rows.map(upstreamCard));
    },
  };
})(window.Console);
