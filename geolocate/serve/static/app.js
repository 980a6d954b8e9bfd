// geolocate serve: drop photos, ask /api/predict, draw the answer on a Leaflet map.
// Everything this page loads comes from this server (see the Content-Security-Policy).
"use strict";

const settings = JSON.parse(document.getElementById("settings").textContent);
const map = L.map("map", { worldCopyJump: true, attributionControl: true }).setView([46.5, 2.5], 5);
map.attributionControl.setPrefix(false); // Leaflet's prefix links to its web site
const answer = L.featureGroup().addTo(map);
const results = []; // one entry per dropped photo: {name, doc | error}

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}

const fmt = {
  km: (v) => (v === null || v === undefined ? "–" : v < 10 ? v.toFixed(2) + " km" : v.toFixed(0) + " km"),
  pct: (v) => (v === null || v === undefined ? "–" : (100 * v).toFixed(1) + " %"),
  deg: (v) => v.toFixed(5),
};

async function basemap() {
  // Natural Earth 1:50m country outlines (public domain), vendored: no network needed.
  const topo = await (await fetch("/static/vendor/world-atlas/countries-50m.json")).json();
  L.geoJSON(topojson.feature(topo, topo.objects.countries), {
    style: { color: "#7d8796", weight: 1, fillColor: "#f4f1ea", fillOpacity: 1 },
    interactive: false,
  }).addTo(map).bringToBack();
  if (settings.tile_url) {
    L.tileLayer(settings.tile_url, { attribution: settings.tile_attribution || "", maxZoom: 19 }).addTo(map);
  } else {
    map.attributionControl.addAttribution("Natural Earth");
  }
}

async function modelCard() {
  const card = await (await fetch("/api/model")).json();
  const trained = card.trained_on || {};
  const photos = Object.entries(trained.photos || {}).map(([k, v]) => `${v} ${k}`).join(", ");
  const line = `${card.model || "?"} via ${card.engine || "?"} · run ${card.run_id || "?"} · ` +
    `${(trained.sources || []).join(", ") || "unknown"} photos` + (photos ? ` (${photos})` : "") +
    ` · ${card.classes} cells in ${card.cities} cities`;
  document.getElementById("model-line").textContent = line;
  if (card.synthetic) {
    document.getElementById("model").append(el("p", "Trained on synthetic photos: its answers for real photos mean nothing.", "warning"));
  }
  figures(card);
  if (card.error_map) {
    const fig = document.getElementById("error-map");
    fig.querySelector("img").src = "/api/model/error_map.png";
    fig.hidden = false;
  }
  if (card.bbox) map.fitBounds([[card.bbox[1], card.bbox[0]], [card.bbox[3], card.bbox[2]]], { padding: [30, 30], animate: false });
  return card;
}

function figures(card) {
  const table = document.getElementById("figures");
  if (!card.test || !Object.keys(card.test).length) {
    table.replaceChildren(el("caption", "No test figures beside this checkpoint (evaluate its run)."));
    return;
  }
  const head = el("tr");
  ["test set", "top-1", "median", "p90"].forEach((h, i) => head.append(el("th", h, i ? "num" : "")));
  const rows = [["this model", card.test, "model"], ...Object.entries(card.baselines || {}).map(([k, v]) => [k, v, ""])];
  table.replaceChildren(head, ...rows.map(([name, f, cls]) => {
    const tr = el("tr", undefined, cls);
    tr.append(el("td", name), el("td", fmt.pct(f.acc_top1), "num"), el("td", fmt.km(f.median_km), "num"), el("td", fmt.km(f.p90_km), "num"));
    return tr;
  }));
}

function status(text, isError) {
  const node = document.getElementById("status");
  node.textContent = text;
  node.className = isError ? "error" : "";
}

async function locate(form, name) {
  const entry = { name };
  results.push(entry);
  const item = el("li", `${name}: locating…`);
  item.addEventListener("click", () => show(entry, item));
  document.getElementById("photos").append(item);
  try {
    const response = await fetch("/api/predict", { method: "POST", body: form });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || response.statusText);
    entry.doc = body;
    const p = body.predictions[0];
    item.textContent = `${name}: ${fmt.deg(p.lat)}, ${fmt.deg(p.lon)}` + (p.error_km !== null && p.error_km !== undefined ? ` (error ${fmt.km(p.error_km)})` : "");
    show(entry, item);
    status("");
  } catch (err) {
    entry.error = String(err.message || err);
    item.textContent = `${name}: ${entry.error}`;
    item.classList.add("failed");
    status(entry.error, true);
  }
}

function show(entry, item) {
  if (!entry.doc) return;
  document.querySelectorAll("#photos li").forEach((li) => li.classList.remove("active"));
  item.classList.add("active");
  const p = entry.doc.predictions[0];
  drawOnMap(p);
  resultPanel(p);
}

function drawOnMap(p) {
  answer.clearLayers();
  const best = Math.max(...p.top.map((c) => c.prob), 1e-9);
  for (const c of p.top) {
    const style = { color: "#2d6cdf", weight: 1, fillColor: "#2d6cdf", fillOpacity: 0.15 + 0.6 * (c.prob / best), className: "geo-cell" };
    const layer = c.polygon ? L.polygon(c.polygon.map(([lon, lat]) => [lat, lon]), style)
      : L.circleMarker([c.lat, c.lon], { ...style, radius: 6 });
    layer.bindTooltip(`#${c.rank} ${c.city || c.cell_id}: ${fmt.pct(c.prob)}`);
    answer.addLayer(layer);
  }
  if (p.radius_km) {
    answer.addLayer(L.circle([p.lat, p.lon], { radius: p.radius_km * 1000, color: "#d9480f", weight: 2, fill: false, dashArray: "6 4", className: "geo-radius" }));
  }
  answer.addLayer(L.circleMarker([p.lat, p.lon], { radius: 7, color: "#fff", weight: 2, fillColor: "#d9480f", fillOpacity: 1, className: "geo-point" })
    .bindTooltip(`predicted ${fmt.deg(p.lat)}, ${fmt.deg(p.lon)}`));
  if (p.true_lat !== null && p.true_lat !== undefined) {
    answer.addLayer(L.polyline([[p.lat, p.lon], [p.true_lat, p.true_lon]], { color: "#1b7f3b", weight: 2, className: "geo-error" })
      .bindTooltip(`error ${fmt.km(p.error_km)}`));
    answer.addLayer(L.circleMarker([p.true_lat, p.true_lon], { radius: 7, color: "#fff", weight: 2, fillColor: "#1b7f3b", fillOpacity: 1, className: "geo-truth" })
      .bindTooltip("truth (EXIF GPS)"));
  }
  map.fitBounds(answer.getBounds(), { padding: [40, 40], maxZoom: 13, animate: false });  // drawn at once: no half-scaled outline layer
}

function resultPanel(p) {
  document.getElementById("result").hidden = false;
  const rows = [
    ["latitude", fmt.deg(p.lat)], ["longitude", fmt.deg(p.lon)], ["confidence", fmt.pct(p.confidence)],
    ["90 % radius", fmt.km(p.radius_km)], ["placed by", p.position || "–"],
    ["error", p.error_km === null || p.error_km === undefined ? "no EXIF GPS" : fmt.km(p.error_km)],
  ];
  document.getElementById("numbers").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", k), el("dd", v, "value")]));
  document.querySelector("#top tbody").replaceChildren(...p.top.map((c) => {
    const tr = el("tr");
    tr.append(el("td", String(c.rank)), el("td", c.cell_id), el("td", c.city || ""), el("td", fmt.pct(c.prob), "num"));
    return tr;
  }));
}

function sendPhotos(files) {
  for (const file of files) {
    const form = new FormData();
    form.append("photo", file, file.name);
    locate(form, file.name);
  }
}

function sendViews() {
  const form = new FormData();
  const names = [];
  document.querySelectorAll("#views input[type=file]").forEach((input) => {
    if (input.files[0]) { form.append(input.dataset.view, input.files[0], input.files[0].name); names.push(input.dataset.view); }
  });
  if (!names.length) { status("choose at least one view", true); return; }
  locate(form, `location (${names.join(", ")})`);
}

function wireDrop(card) {
  const drop = document.getElementById("drop");
  if (card.views) {
    document.getElementById("views").hidden = false;
    document.getElementById("drop-hint").textContent = "This model locates a place from its four views.";
    document.getElementById("send-views").addEventListener("click", sendViews);
    return;
  }
  document.getElementById("files").addEventListener("change", (e) => sendPhotos(e.target.files));
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); sendPhotos(e.dataTransfer.files); });
}

basemap().catch((err) => status("basemap: " + err, true));
modelCard().then(wireDrop).catch((err) => status("model: " + err, true));
