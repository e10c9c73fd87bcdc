/* Faults: every fault-proxy listener with its toxics and time left, and the controls to add,
   time-box and clear faults. Every action asks for confirmation first. */
"use strict";

(function (C) {
  const el = C.el;
  let known = "";

  function left(seconds) {
    return seconds === null || seconds === undefined ? null
      : el("span", {class: "left"}, `${C.number(seconds, 0)} s left`);
  }

  function describe(toxic) {
    const attributes = Object.entries(toxic.attributes || {}).map(([k, v]) => `${k}=${v}`).join(" ");
    const toxicity = toxic.toxicity !== 1 ? ` toxicity=${toxic.toxicity}` : "";
    return `${toxic.type} ${attributes}${toxicity} (${toxic.stream})`;
  }

  function targets(proxies) {
    const names = new Set();
    for (const proxy of proxies) {
      names.add(proxy.name);
      const match = proxy.name.match(/^(.+)-\d+$/);
      if (match) names.add(match[1]);
    }
    return Array.from(names).sort();
  }

  function fillTargets(proxies) {
    const names = targets(proxies);
    if (names.join() === known) return;
    known = names.join();
    const select = document.querySelector("#fault-form select[name=target]");
    const chosen = select.value;
    C.replace(select, names.map((n) => el("option", {value: n}, n)));
    if (names.includes(chosen)) select.value = chosen;
    else if (names.includes("cart")) select.value = "cart";
  }

  async function act(question, path, body, success) {
    if (!(await C.confirm(question))) return;
    try {
      const answer = await C.post(path, body);
      C.toast(success(answer));
    } catch (error) {
      C.toast(error.message, true);
    }
  }

  function row(proxy) {
    const faults = proxy.toxics.map((t) => el("li", {dataset: {toxic: t.name}},
      el("span", {class: "toxic"}, describe(t)), " ", left(t.left)));
    return el("tr", {dataset: {proxy: proxy.name, enabled: proxy.enabled ? "yes" : "no"}},
      el("td", {}, proxy.name),
      el("td", {}, el("span", {class: "proxy-state", dataset: {up: proxy.enabled ? "yes" : "no"}},
        proxy.enabled ? "up" : "DOWN"), " ", proxy.enabled ? null : left(proxy.down_left)),
      el("td", {}, faults.length ? el("ul", {class: "toxics"}, faults) : "–"),
      el("td", {class: "address"}, `${proxy.listen} → ${proxy.upstream}`),
      el("td", {}, proxy.enabled && !proxy.toxics.length ? null : el("button", {
        type: "button", class: "clear", dataset: {target: proxy.name},
        onclick: () => act(`Clear every fault of ${proxy.name} and bring it up?`,
          "/api/faults/clear", {target: proxy.name},
          (a) => `cleared: ${a.proxies.join(", ")}`),
      }, "clear…")));
  }

  function formBody(form) {
    const kind = form.kind.value;
    const body = {target: form.target.value, kind: kind};
    for (const label of form.querySelectorAll("label[data-for]")) {
      if (!label.dataset.for.split(" ").includes(kind)) continue;
      const input = label.querySelector("input, select");
      if (input.value !== "") body[input.name] = input.type === "number" ? Number(input.value) : input.value;
    }
    if (form.seconds.value !== "" && Number(form.seconds.value) > 0) body.seconds = Number(form.seconds.value);
    return body;
  }

  function question(body) {
    const details = Object.entries(body).filter(([k]) => !["target", "kind", "seconds"].includes(k))
      .map(([k, v]) => `${k}=${v}`).join(", ");
    return `Add ${body.kind}${details ? " (" + details + ")" : ""} on ${body.target}` +
      (body.seconds ? ` for ${body.seconds} s` : " until cleared") + "?";
  }

  function showFields(form) {
    for (const label of form.querySelectorAll("label[data-for]")) {
      label.hidden = !label.dataset.for.split(" ").includes(form.kind.value);
    }
  }

  C.faults = {
    bind() {
      const form = document.getElementById("fault-form");
      showFields(form);
      form.kind.addEventListener("change", () => showFields(form));
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        const body = formBody(form);
        act(question(body), "/api/faults", body, (a) => `${a.fault} on ${a.proxies.join(", ")}` +
          (a.until ? ` until ${C.clock(a.until)}` : ""));
      });
      document.getElementById("reset-faults").addEventListener("click", () =>
        act("Remove every fault and bring every listener up?", "/api/faults/reset", {},
          () => "every fault cleared"));
    },
    render(view, status) {
      const body = document.querySelector("#faults tbody");
      if (!view) {
        C.replace(body, el("tr", {}, el("td", {colspan: 5, class: "empty"},
          "the fault proxy is not answering" + (status && status.error ? ": " + status.error : ""))));
        return;
      }
      fillTargets(view.proxies);
      C.replace(body, view.proxies.map(row));
      const log = document.querySelector("#fault-log ol");
      C.replace(log, (view.recent || []).map((e) =>
        el("li", {}, el("time", {}, C.clock(e.time)), ` ${e.proxy}: ${e.text}`)));
    },
  };
})(window.Console);
