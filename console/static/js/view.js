/* Helpers shared by the console's panels: building elements (text only, never HTML),
   formatting numbers, the confirmation dialog and calls to the console's own API. */
"use strict";

window.Console = window.Console || {};

(function (C) {
  /* el("td", {class: "x", dataset: {state: "open"}}, "text", child) */
  C.el = function (tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attributes || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "dataset") Object.assign(node.dataset, value);
      else if (key === "onclick") node.addEventListener("click", value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  };

  C.replace = function (parent, ...children) {
    parent.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
  };

  C.number = function (value, digits) {
    if (value === null || value === undefined || Number.isNaN(value)) return "–";
    return Number(value).toFixed(digits === undefined ? 1 : digits);
  };

  C.percent = function (ratio) {
    if (ratio === null || ratio === undefined) return "–";
    return (100 * ratio).toFixed(ratio < 0.1 ? 1 : 0) + " %";
  };

  C.ms = function (value) {
    if (value === null || value === undefined) return "–";
    return value >= 1000 ? (value / 1000).toFixed(2) + " s" : value.toFixed(value < 10 ? 1 : 0) + " ms";
  };

  C.clock = function (unixSeconds) {
    return new Date(unixSeconds * 1000).toLocaleTimeString([], {hour12: false});
  };

  C.token = document.querySelector('meta[name="console-token"]').content;

  C.post = async function (path, body) {
    const response = await fetch(path, {
      method: "POST",
      headers: {"Content-Type": "application/json", "X-Console-Token": C.token},
      body: JSON.stringify(body || {}),
      credentials: "same-origin",
    });
    let answer = null;
    try { answer = await response.json(); } catch (error) { answer = null; }
    if (!response.ok) {
      const message = answer && answer.error ? answer.error.message : response.statusText;
      throw new Error(message);
    }
    return answer;
  };

  C.toast = function (text, bad) {
    const toast = document.getElementById("toast");
    toast.textContent = text;
    toast.dataset.bad = bad ? "yes" : "no";
    toast.hidden = false;
    clearTimeout(C.toast.timer);
    C.toast.timer = setTimeout(() => { toast.hidden = true; }, 5000);
  };

  /* Resolves true when the user confirms `text`, false when cancelled. */
  C.confirm = function (text) {
    const dialog = document.getElementById("confirm");
    document.getElementById("confirm-text").textContent = text;
    return new Promise((resolve) => {
      const ok = document.getElementById("confirm-ok");
      const cancel = document.getElementById("confirm-cancel");
      const done = (answer) => {
        ok.removeEventListener("click", yes);
        cancel.removeEventListener("click", no);
        dialog.removeEventListener("cancel", no);
        if (dialog.open) dialog.close();
        resolve(answer);
      };
      const yes = () => done(true);
      const no = () => done(false);
      ok.addEventListener("click", yes);
      cancel.addEventListener("click", no);
      dialog.addEventListener("cancel", no);
      dialog.showModal();
    });
  };
})(window.Console);
