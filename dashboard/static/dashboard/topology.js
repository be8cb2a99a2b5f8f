// Stratus dashboard: the network topology as SVG, re-read every few
// seconds so a network, router or server made elsewhere appears without a
// reload. Networks are vertical bars; each router and server is a box on
// its own row, linked to the bars of the networks it has a port on.
"use strict";

(() => {
  const SVG = "http://www.w3.org/2000/svg";
  const BAR = {gap: 120, width: 26, left: 24, top: 16};
  const BOX = {width: 200, height: 44, row: 64, left: 48};
  const COLORS = ["#1f6fb2", "#2e7d32", "#8e44ad", "#b26a00", "#00838f", "#c2185b", "#5d4037", "#455a64"];

  function element(name, attributes, parent) {
    const made = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes)) made.setAttribute(key, value);
    if (parent) parent.appendChild(made);
    return made;
  }

  function text(parent, content, attributes) {
    element("text", attributes, parent).textContent = content;
  }

  function link(parent, href, label) {
    const anchor = element("a", {href, "aria-label": label}, parent);
    element("title", {}, anchor).textContent = label;
    return anchor;
  }

  function url(container, kind, id) {
    return container.dataset[kind + "Url"].replace("ID", encodeURIComponent(id));
  }

  function draw(container, svg, data) {
    while (svg.lastChild && svg.lastChild.tagName !== "title") svg.lastChild.remove();
    const devices = [
      ...data.routers.map((router) => ({kind: "router", ...router,
        legs: [...(router.gateway ? [{network_id: router.gateway.network_id, addresses: router.gateway.addresses,
                                      gateway: true}] : []), ...router.ports]})),
      ...data.servers.map((server) => ({kind: "server", ...server, legs: server.ports})),
    ];
    const barX = new Map(data.networks.map((network, index) => [network.id, BAR.left + index * BAR.gap]));
    const boxX = BAR.left + Math.max(data.networks.length, 1) * BAR.gap + BOX.left;
    const labels = data.networks.map((network) =>
      [network.name || network.id.slice(0, 8), ...network.subnets.map((subnet) => subnet.cidr)].join("  "));
    // Tall enough for the devices' rows and for the longest bar's label (about 7 px a character).
    const height = Math.max(220, BAR.top * 2 + 40 + devices.length * BOX.row,
                            BAR.top * 2 + 24 + 7 * Math.max(0, ...labels.map((label) => label.length)));
    svg.setAttribute("viewBox", `0 0 ${boxX + BOX.width + 16} ${height}`);
    svg.setAttribute("width", boxX + BOX.width + 16);
    svg.setAttribute("height", height);

    const links = element("g", {class: "links"}, svg);
    data.networks.forEach((network, index) => {
      const x = barX.get(network.id);
      const group = link(element("g", {class: "network", "data-id": network.id}, svg), url(container, "network", network.id),
        `Network ${network.name || network.id}${network.external ? " (external)" : ""}: ` +
        (network.subnets.map((subnet) => subnet.cidr).join(", ") || "no subnet"));
      element("rect", {x, y: BAR.top, width: BAR.width, height: height - BAR.top * 2, rx: 6,
                       fill: COLORS[index % COLORS.length], class: network.external ? "external" : ""}, group);
      const middle = x + BAR.width / 2;
      text(group, labels[index], {x: middle, y: BAR.top + 12, class: "network-label", "dominant-baseline": "central",
                                  transform: `rotate(90 ${middle} ${BAR.top + 12})`});
    });
    devices.forEach((device, row) => {
      const y = BAR.top + 40 + row * BOX.row;
      const middle = y + BOX.height / 2;
      for (const leg of device.legs) {
        if (!barX.has(leg.network_id)) continue;
        const x = barX.get(leg.network_id) + BAR.width / 2;
        element("line", {x1: x, y1: middle, x2: boxX, y2: middle, class: "link" + (leg.gateway ? " gateway" : ""),
                         "data-device": device.id, "data-network": leg.network_id}, links);
        element("circle", {cx: x, cy: middle, r: 5, class: "leg"}, links);
        if (leg.addresses.length) {
          text(links, leg.addresses.join(", "), {x: x + BAR.width / 2 + 4, y: middle - 5, class: "address"});
        }
      }
      const kind = device.kind === "router" ? "router" : "server";
      const group = link(element("g", {class: kind, "data-id": device.id}, svg),
        url(container, device.kind === "router" ? "router" : "server", device.id),
        `${device.kind === "router" ? "Router" : "Server"} ${device.name || device.id} (${device.status})`);
      element("rect", {x: boxX, y, width: BOX.width, height: BOX.height, rx: device.kind === "router" ? 22 : 4,
                       class: "box"}, group);
      text(group, device.name || device.id.slice(0, 8), {x: boxX + 12, y: y + 19, class: "name"});
      text(group, `${device.kind} · ${device.status}`, {x: boxX + 12, y: y + 35, class: "kind"});
    });
  }

  function start(container) {
    const svg = container.querySelector("svg");
    const state = document.getElementById("topology-state");
    const empty = document.getElementById("topology-empty");
    let last = null;
    async function refresh() {
      // A tab in the background is not redrawn; it catches up when shown.
      if (document.hidden) { setTimeout(refresh, Number(container.dataset.interval) || 3000); return; }
      try {
        const response = await fetch(container.dataset.source, {credentials: "same-origin",
                                                                  headers: {Accept: "application/json"}});
        if (response.redirected || response.status === 401) { window.location.reload(); return; }
        if (!response.ok) throw new Error(`the topology could not be read (${response.status})`);
        const body = await response.text();
        if (body !== last) {
          last = body;
          const data = JSON.parse(body);
          draw(container, svg, data);
          empty.hidden = data.networks.length > 0;
        }
        const count = (kind) => {
          const found = svg.querySelectorAll(`g.${kind}`).length;
          return `${found} ${kind}${found === 1 ? "" : "s"}`;
        };
        state.textContent = `${count("network")}, ${count("router")}, ${count("server")}` +
          ` · updated ${new Date().toLocaleTimeString()}`;
      } catch (error) {
        state.textContent = `Not updated: ${error.message}`;
      }
      setTimeout(refresh, Number(container.dataset.interval) || 3000);
    }
    refresh();
  }

  document.addEventListener("DOMContentLoaded", () => {
    const container = document.getElementById("topology");
    if (container) start(container);
  });
})();
