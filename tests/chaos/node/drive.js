// Drives a Toxiproxy API with toxiproxy-node-client and measures the effect on the wire.
//
//   node drive.js <api url> <echo upstream host:port>
//
// Prints one JSON object of observations; tests/chaos/test_toxiproxy_node_client.py judges
// them. Every call goes through the client's own classes (Toxiproxy, Proxy, Toxic).
"use strict";

const net = require("node:net");
const { Toxiproxy, ToxiproxyError } = require("toxiproxy-node-client");

function splitAddress(address) {
  const at = address.lastIndexOf(":");
  const host = address.slice(0, at).replace(/^\[|\]$/g, "");
  return { host: host === "::" || host === "" ? "127.0.0.1" : host, port: Number(address.slice(at + 1)) };
}

// Milliseconds for "ping" to go through the proxy to the echo upstream and back.
function roundTrip(address) {
  const { host, port } = splitAddress(address);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    let got = "";
    let start = 0;
    socket.setTimeout(5000, () => { socket.destroy(); reject(new Error("timed out")); });
    socket.on("connect", () => { start = performance.now(); socket.write("ping"); });
    socket.on("data", (data) => {
      got += data.toString();
      if (got.length >= 4) { socket.destroy(); resolve(performance.now() - start); }
    });
    socket.on("error", reject);
  });
}

// "refused" when nothing listens, "open" otherwise.
function probe(address) {
  const { host, port } = splitAddress(address);
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.on("connect", () => { socket.destroy(); resolve("open"); });
    socket.on("error", (err) => resolve(err.code === "ECONNREFUSED" ? "refused" : err.code));
  });
}

async function main() {
  const [url, upstream] = process.argv.slice(2);
  const toxiproxy = new Toxiproxy(url);
  const seen = {};
  seen.version = JSON.parse(await toxiproxy.getVersion()).version;

  let proxy = await toxiproxy.createProxy({ name: "wire", listen: "127.0.0.1:0", upstream });
  seen.created = proxy.toJson();
  seen.baselineMs = await roundTrip(proxy.listen);

  const toxic = await proxy.addToxic({
    name: "slow", type: "latency", stream: "downstream", toxicity: 1,
    attributes: { latency: 200, jitter: 0 },
  });
  seen.added = toxic.toJson();
  seen.slowedMs = await roundTrip(proxy.listen);

  const updated = await toxic.update({ attributes: { latency: 400 } });
  seen.updated = updated.toJson();
  seen.fetched = (await proxy.getToxic("slow")).toJson();
  seen.slowerMs = await roundTrip(proxy.listen);

  await updated.remove();
  seen.curedMs = await roundTrip(proxy.listen);

  proxy = await proxy.update({ enabled: false });
  seen.disabled = { enabled: proxy.enabled, wire: await probe(proxy.listen) };
  proxy = await proxy.update({ enabled: true });
  seen.enabled = { enabled: proxy.enabled, rttMs: await roundTrip(proxy.listen) };

  const populated = await toxiproxy.populate([
    { name: "wire", listen: proxy.listen, upstream },
    { name: "other", listen: "127.0.0.1:0", upstream },
  ]);
  seen.populated = Object.keys(populated).sort();
  seen.all = Object.keys(await toxiproxy.getAll()).sort();
  await populated.other.addToxic({ type: "timeout", stream: "upstream", attributes: { timeout: 0 } });
  await populated.other.update({ enabled: false });
  const toxicsOf = async (name) =>
    (await toxiproxy.getApi().get(`${url}/proxies/${name}/toxics`)).data.length;
  seen.toxicsBeforeReset = await toxicsOf("other");
  await toxiproxy.reset();
  seen.afterReset = { ...(await toxiproxy.get("other")).toJson(), toxics: await toxicsOf("other") };

  try {
    await toxiproxy.get("missing");
    seen.missing = "found";
  } catch (err) {
    seen.missing = err instanceof ToxiproxyError ? err.message : String(err);
  }

  await populated.other.remove();
  await proxy.remove();
  seen.afterRemove = Object.keys(await toxiproxy.getAll());
  process.stdout.write(JSON.stringify(seen));
}

main().catch((err) => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(1);
});
