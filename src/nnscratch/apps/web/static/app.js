// nnscratch's page: draw on a canvas, send it to POST /api/predict, show the answer.
// Plain JavaScript, no library: every asset comes from the nnscratch server.
"use strict";

const pad = document.getElementById("pad");
const ctx = pad.getContext("2d");
const INK = 22;          // pen width in canvas pixels (the canvas is 280 px: 10x MNIST)
const EVERY_MS = 120;    // at most one prediction request in flight, and this often while drawing

// ------------------------------------------------------------------ drawing
function clearPad() {
  ctx.fillStyle = "white";  // an opaque background: the server sees dark ink on light paper
  ctx.fillRect(0, 0, pad.width, pad.height);
  empty = true;
  showBlank();
}

let drawing = false, empty = true, last = null;

function point(event) {
  const box = pad.getBoundingClientRect();
  return [(event.clientX - box.left) * pad.width / box.width,
          (event.clientY - box.top) * pad.height / box.height];
}

function stroke(from, to) {
  ctx.strokeStyle = "#111";
  ctx.lineWidth = INK;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.beginPath();
  if (from[0] === to[0] && from[1] === to[1]) {  // a dot: a zero-length line may draw nothing
    ctx.fillStyle = "#111";
    ctx.arc(from[0], from[1], INK / 2, 0, 2 * Math.PI);
    ctx.fill();
    return;
  }
  ctx.moveTo(from[0], from[1]);
  ctx.lineTo(to[0], to[1]);
  ctx.stroke();
}

// Pointer events cover mouse, pen and touch alike.
pad.addEventListener("pointerdown", (event) => {
  event.preventDefault();
  pad.setPointerCapture(event.pointerId);
  drawing = true;
  last = point(event);
  stroke(last, last);  // a dot
  empty = false;
  schedule();
});
pad.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  const p = point(event);
  stroke(last, p);
  last = p;
  schedule();
});
for (const type of ["pointerup", "pointercancel"]) {
  pad.addEventListener(type, () => {
    if (!drawing) return;
    drawing = false;
    schedule(true);
  });
}
document.getElementById("clear").addEventListener("click", clearPad);

// ------------------------------------------------------------------ asking the server
let busy = false, again = false, lastSent = 0, timer = null;

// Live while drawing, but never more than one request at a time: if the
// drawing changed while a request was out, send once more when it returns.
function schedule(now = false) {
  if (empty) return;
  if (busy) { again = true; return; }
  const wait = now ? 0 : Math.max(0, EVERY_MS - (Date.now() - lastSent));
  clearTimeout(timer);
  timer = setTimeout(send, wait);
}

// A 503 (the server has too many drawings in hand) is asked again once, after
// the delay its Retry-After header gives; a second 503 or any other failure
// clears the answer and says why, so an old answer never stands for a new drawing.
function send(retried = false) {
  busy = true;
  again = false;
  lastSent = Date.now();
  pad.toBlob(async (blob) => {
    let retryIn = 0;
    try {
      const response = await fetch("/api/predict", {method: "POST", headers: {"Content-Type": "image/png"}, body: blob});
      const answer = await response.json();
      if (empty) showBlank();
      else if (response.ok) show(answer);
      else if (response.status === 503 && !retried) {
        retryIn = retryAfter(response);
        showFailure(`the server is busy: asking again in ${retryIn} s`);
      } else if (response.status === 503) showFailure("the server is still busy: draw again in a moment");
      else showFailure(answer.error || response.statusText);
    } catch (error) {
      showFailure("no answer from the server (" + error.message + ")");
    } finally {
      if (retryIn) setTimeout(() => (empty ? done() : send(true)), retryIn * 1000);
      else done();
    }
  }, "image/png");
}

function done() {
  busy = false;
  if (again) schedule(true);
}

// Seconds to wait, from a Retry-After header in seconds (1 if absent or a date; at most 30).
function retryAfter(response) {
  const seconds = Number(response.headers.get("Retry-After"));
  return Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds, 30) : 1;
}

// ------------------------------------------------------------------ showing the answer
const bars = document.getElementById("bars");
for (let d = 0; d < 10; d++) {
  bars.insertAdjacentHTML("beforeend",
    `<div class="bar" id="bar-${d}"><span class="label">${d}</span>` +
    `<span class="track"><span class="fill"></span></span><span class="value">&ndash;</span></div>`);
}

function show(answer) {
  const p = answer.probabilities;
  document.getElementById("digit").textContent = answer.digit;
  document.getElementById("confidence").textContent = `${(100 * p[answer.digit]).toFixed(1)} % sure`;
  document.getElementById("status").textContent = "";
  p.forEach((value, d) => {
    const bar = document.getElementById(`bar-${d}`);
    bar.classList.toggle("top", d === answer.digit);
    bar.querySelector(".fill").style.width = `${100 * value}%`;
    bar.querySelector(".value").textContent = `${(100 * value).toFixed(1)} %`;
  });
  drawInput(answer.input);
  drawLayers(answer.activations, answer.feature_maps || []);
}

function showBlank() {
  document.getElementById("digit").textContent = "?";
  document.getElementById("confidence").textContent = "draw something";
  document.getElementById("status").textContent = "";
  for (let d = 0; d < 10; d++) {
    const bar = document.getElementById(`bar-${d}`);
    bar.classList.remove("top");
    bar.querySelector(".fill").style.width = "0";
    bar.querySelector(".value").textContent = "–";
  }
  drawInput(null);
  drawLayers([], []);
}

function showFailure(message) {
  showBlank();
  document.getElementById("confidence").textContent = "no answer";
  document.getElementById("status").textContent = message;
}

function drawInput(rows) {
  const canvas = document.getElementById("input");
  const c = canvas.getContext("2d");
  const image = c.createImageData(28, 28);
  for (let i = 0; i < 28 * 28; i++) {
    const v = rows ? rows[Math.floor(i / 28)][i % 28] : 0;
    image.data.set([v, v, v, 255], 4 * i);
  }
  c.putImageData(image, 0, 0);
}

// Each convolutional layer as a row of small pictures (its first feature maps), then each
// dense hidden layer as a grid of squares; brightness = activation / the layer's largest.
function drawLayers(layers, featureMaps) {
  const holder = document.getElementById("layers");
  holder.textContent = "";
  featureMaps.forEach((maps, k) => {
    const name = document.createElement("div");
    name.className = "layer-name";
    name.textContent = `convolution ${k + 1}: ${maps.length} feature maps of ${maps[0].length}x${maps[0][0].length}`;
    const row = document.createElement("div");
    row.className = "maps";
    maps.forEach((map) => row.append(mapCanvas(map)));
    holder.append(name, row);
  });
  layers.forEach((values, k) => {
    const cols = Math.min(32, Math.ceil(Math.sqrt(values.length * 2)));
    const rows = Math.ceil(values.length / cols);
    const cell = Math.max(6, Math.floor(256 / cols));
    const canvas = document.createElement("canvas");
    canvas.width = cols * cell;
    canvas.height = rows * cell;
    const c = canvas.getContext("2d");
    c.fillStyle = "#111";
    c.fillRect(0, 0, canvas.width, canvas.height);
    const low = Math.min(0, ...values), high = Math.max(...values);
    values.forEach((v, i) => {
      const t = high > low ? (v - low) / (high - low) : 0;
      c.fillStyle = `rgb(${Math.round(40 + 215 * t)}, ${Math.round(30 + 160 * t)}, ${Math.round(20 + 40 * t)})`;
      c.fillRect((i % cols) * cell + 1, Math.floor(i / cols) * cell + 1, cell - 2, cell - 2);
    });
    const name = document.createElement("div");
    name.className = "layer-name";
    name.textContent = `hidden layer ${k + 1}: ${values.length} neurons`;
    holder.append(name, canvas);
  });
}

// One feature map as a small grey picture, scaled so each value is a 3x3 block.
function mapCanvas(map) {
  const h = map.length, w = map[0].length, zoom = 3;
  const canvas = document.createElement("canvas");
  canvas.width = w * zoom;
  canvas.height = h * zoom;
  const c = canvas.getContext("2d");
  const values = map.flat(), high = Math.max(...values, 1e-9), low = Math.min(0, ...values);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const v = Math.round(255 * (map[y][x] - low) / (high - low));
      c.fillStyle = `rgb(${v}, ${v}, ${v})`;
      c.fillRect(x * zoom, y * zoom, zoom, zoom);
    }
  }
  return canvas;
}

// ------------------------------------------------------------------ the model view
document.querySelectorAll(".tab").forEach((tab) => tab.addEventListener("click", () => {
  document.querySelectorAll(".tab").forEach((t) => t.classList.toggle("active", t === tab));
  document.querySelectorAll(".view").forEach((v) => v.classList.toggle("active", v.id === `view-${tab.dataset.view}`));
  if (tab.dataset.view === "model") loadModel();
}));

let modelLoaded = false;
async function loadModel() {
  if (modelLoaded) return;
  modelLoaded = true;
  const info = await (await fetch("/api/model")).json();
  const m = info.metrics || {};
  const acc = (x) => (x === undefined ? "?" : `${(100 * x).toFixed(2)} %`);
  document.getElementById("model-info").textContent =
    `${info.sizes.join(" → ")} (${info.activation}), ${info.parameters.toLocaleString()} parameters; ` +
    `test accuracy ${acc(m.test_accuracy)}, train accuracy ${acc(m.train_accuracy)}. From ${info.source}.`;
  drawCurves(info.history || {});
  document.getElementById("weights").src = "/api/weights.png";
}

// Cost (left axis) and accuracy (right axis, 0-100 %) against epoch.
function drawCurves(history) {
  const canvas = document.getElementById("curves");
  const c = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, L = 56, R = 56, T = 16, B = 60;
  c.clearRect(0, 0, W, H);
  const cost = history.train_cost || history.cost || [];  // "cost": runs of nnscratch 0.1
  const note = document.getElementById("curves-note");
  if (!cost.length) { note.textContent = "this model file holds no training history"; return; }
  const series = [
    {name: "training cost", values: cost, axis: "cost", colour: "#d2552d"},
    {name: "validation cost", values: history.val_cost || [], axis: "cost", colour: "#e9a07f"},
    {name: "training accuracy", values: history.train_accuracy || [], axis: "acc", colour: "#3a6ea5"},
    {name: "validation accuracy", values: history.val_accuracy || [], axis: "acc", colour: "#8fb3da"},
  ].filter((s) => s.values.length);
  const maxCost = Math.max(...series.filter((s) => s.axis === "cost").flatMap((s) => s.values)) * 1.05;
  const n = cost.length;
  const x = (i) => L + (n > 1 ? i / (n - 1) : 0.5) * (W - L - R);
  const y = (v, axis) => T + (1 - (axis === "cost" ? v / maxCost : v)) * (H - T - B);
  c.strokeStyle = "#ccc"; c.fillStyle = "#666"; c.font = "12px system-ui, sans-serif"; c.lineWidth = 1;
  c.strokeRect(L, T, W - L - R, H - T - B);
  for (let k = 0; k <= 4; k++) {
    const v = k / 4;
    c.textAlign = "right"; c.fillText((maxCost * v).toFixed(2), L - 6, y(maxCost * v, "cost") + 4);
    c.textAlign = "left"; c.fillText(`${100 * v} %`, W - R + 6, y(v, "acc") + 4);
  }
  c.textAlign = "center";
  c.fillText(`epoch (1 to ${n})`, (L + W - R) / 2, H - B + 20);
  series.forEach((s, k) => {
    c.strokeStyle = s.colour; c.lineWidth = 2; c.beginPath();
    s.values.forEach((v, i) => (i ? c.lineTo(x(i), y(v, s.axis)) : c.moveTo(x(i), y(v, s.axis))));
    c.stroke();
    c.fillStyle = s.colour; c.textAlign = "left";
    c.fillRect(L + 160 * k, H - 16, 14, 4);
    c.fillText(s.name, L + 20 + 160 * k, H - 10);
  });
  note.textContent = `cost on the left axis, accuracy on the right; ${n} epochs`;
}

clearPad();
