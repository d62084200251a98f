// The adljax model page: reads /metadata, then builds the interface of the model's family.
// Everything is local: no CDN, no build step. `window.adljaxLast` keeps the last request's
// inputs and the service's answer (the browser tests read it).
"use strict";

const app = document.getElementById("app");
const errorBox = document.getElementById("error");
window.adljaxLast = null;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  children.forEach((child) => node.append(child));
  return node;
}

async function post(endpoint, body) {
  errorBox.textContent = "";
  const answer = await fetch(endpoint, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const json = await answer.json();
  if (!answer.ok) {
    const where = json.error && json.error.field ? ` (${json.error.field})` : "";
    errorBox.textContent = `${answer.status}${where}: ${json.error ? json.error.message : answer.statusText}`;
    throw new Error(errorBox.textContent);
  }
  window.adljaxLast = { endpoint, inputs: body.inputs, body, response: json };
  return json;
}

function entryInput(meta) {
  return meta.functions[meta.entry].inputs[0];
}

// Draws a uint8 (H, W, C) image, nested lists, scaled up into a canvas.
function drawImage(canvas, image, scale) {
  const h = image.length, w = image[0].length, c = image[0][0].length;
  canvas.width = w * scale; canvas.height = h * scale;
  const ctx = canvas.getContext("2d");
  for (let i = 0; i < h; i++) for (let j = 0; j < w; j++) {
    const p = image[i][j];
    const [r, g, b] = c === 1 ? [p[0], p[0], p[0]] : [p[0], p[1], p[2]];
    ctx.fillStyle = `rgb(${r},${g},${b})`;
    ctx.fillRect(j * scale, i * scale, scale, scale);
  }
}

function bars(probabilities, names) {
  const best = probabilities.indexOf(Math.max(...probabilities));
  return el("div", { id: "bars" }, ...probabilities.map((p, k) =>
    el("div", { class: k === best ? "bar top" : "bar" },
      el("span", { text: String(names ? names[k] : k).padStart(3) }),
      el("span", { class: "fill", style: `width:${Math.round(p * 300)}px` }),
      el("span", { text: p.toFixed(3) }))));
}

// ---- a canvas to draw on, downsampled to the model's (H, W, C) as ink = high values ----
async function imageClassifier(meta) {
  const [, height, width, channels] = entryInput(meta).shape;
  const size = 280;
  const pad = el("canvas", { id: "pad", class: "pad", width: size, height: size });
  const ctx = pad.getContext("2d");
  const clear = () => { ctx.fillStyle = "black"; ctx.fillRect(0, 0, size, size); };
  clear();
  const top = el("div", { id: "top-class", text: "–" });
  const result = el("div", { id: "result" });
  const preview = el("canvas", { id: "sent", class: "view" });
  let drawing = false, last = null;
  const at = (event) => {
    const box = pad.getBoundingClientRect();
    const point = event.touches ? event.touches[0] : event;
    return [point.clientX - box.left, point.clientY - box.top];
  };
  const stroke = (event) => {
    if (!drawing) return;
    const [x, y] = at(event);
    ctx.strokeStyle = "white"; ctx.lineWidth = size / 9; ctx.lineCap = "round";
    ctx.beginPath(); ctx.moveTo(...(last || [x, y])); ctx.lineTo(x, y); ctx.stroke();
    last = [x, y];
    event.preventDefault();
  };
  const classify = async () => {
    const pixels = ctx.getImageData(0, 0, size, size).data;
    const image = [];
    for (let i = 0; i < height; i++) {
      const row = [];
      for (let j = 0; j < width; j++) {
        let sum = 0, count = 0;  // the area average of the cell (i, j)
        const y0 = Math.floor(i * size / height), y1 = Math.floor((i + 1) * size / height);
        const x0 = Math.floor(j * size / width), x1 = Math.floor((j + 1) * size / width);
        for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) {
          sum += pixels[(y * size + x) * 4]; count++;
        }
        row.push(Array(channels).fill(Math.round(sum / count)));
      }
      image.push(row);
    }
    await showClassification([image]);
  };
  const showClassification = async (inputs) => {
    drawImage(preview, inputs[0], 12);
    const answer = await post("/classify", { inputs });
    const first = answer.predictions[0];
    top.textContent = first.class;
    result.replaceChildren(bars(first.probabilities, meta.class_names));
  };
  pad.addEventListener("mousedown", (e) => { drawing = true; last = null; stroke(e); });
  pad.addEventListener("mousemove", stroke);
  pad.addEventListener("touchstart", (e) => { drawing = true; last = null; stroke(e); });
  pad.addEventListener("touchmove", stroke);
  for (const end of ["mouseup", "mouseleave", "touchend"]) {
    pad.addEventListener(end, () => { if (drawing) { drawing = false; classify(); } });
  }
  const clearButton = el("button", { id: "clear", text: "Clear" });
  clearButton.onclick = () => { clear(); top.textContent = "–"; result.replaceChildren(); };
  const examples = el("div", { id: "examples" });
  if (meta.service.has_examples) {
    const { examples: list } = await (await fetch("/examples")).json();
    list.forEach((image, k) => {
      const button = el("button", { class: "example", text: `example ${k}` });
      button.onclick = () => showClassification([image]);
      examples.append(button);
    });
  }
  app.replaceChildren(
    el("p", { text: `Draw a digit with the mouse; it is sent as ${height}x${width} uint8 pixels.` }),
    el("div", { class: "row" },
      el("div", {}, pad, el("div", {}, clearButton), examples),
      el("div", {}, el("div", { text: "the model sees" }), preview, top, result)));
}

// ---- a form, one field per feature (defaults: the training means) ----
function tabular(meta) {
  const spec = entryInput(meta);
  const count = spec.shape[1];
  const names = meta.feature_names || Array.from({ length: count }, (_, k) => `x${k}`);
  const means = meta.dataset.info.extras.feature_mean || Array(count).fill(0);
  const fields = names.map((name, k) => el("input", {
    id: `feature-${k}`, type: "number", step: "any", value: Number(means[k]).toFixed(2),
  }));
  const shown = el("div", { id: "prediction", text: "–" });
  const go = el("button", { id: "predict", text: "Predict" });
  const endpoint = meta.family === "regressor" ? "/regress" : "/classify";
  go.onclick = async () => {
    const answer = await post(endpoint, { inputs: [fields.map((f) => Number(f.value))] });
    const first = answer.predictions[0];
    shown.textContent = meta.family === "regressor"
      ? first.value.map((v) => v.toFixed(3)).join(", ")
      : `${first.class} (${first.probability.toFixed(3)})`;
  };
  app.replaceChildren(
    el("p", { text: spec.description }),
    ...names.map((name, k) => el("div", {}, el("label", { for: `feature-${k}`, text: name }), fields[k])),
    go, shown);
}

// ---- the detector: pick an example or upload an image; boxes drawn over it ----
async function detector(meta) {
  const [, height, width] = entryInput(meta).shape;
  const scale = Math.max(1, Math.floor(384 / width));
  const view = el("canvas", { id: "detections", class: "view" });
  const count = el("div", { id: "box-count", text: "0" });
  const list = el("ol", { id: "detection-list" });
  const minScore = el("input", { id: "min-score", type: "number", step: "0.05", value: "0.3" });
  const detect = async (image) => {
    const answer = await post("/detect", { inputs: [image], min_score: Number(minScore.value) });
    drawImage(view, image, scale);
    const ctx = view.getContext("2d");
    ctx.lineWidth = 2; ctx.font = "14px sans-serif";
    const colours = ["#ff3b30", "#34c759", "#0a84ff", "#ffcc00", "#af52de"];
    const found = answer.detections[0];
    found.forEach((d) => {
      const [x0, y0, x1, y1] = d.box.map((v) => v * scale);
      ctx.strokeStyle = ctx.fillStyle = colours[d.class_id % colours.length];
      ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
      ctx.fillText(`${d.class} ${d.score.toFixed(2)}`, x0 + 2, Math.max(12, y0 - 3));
    });
    count.textContent = String(found.length);
    list.replaceChildren(...found.map((d) => el("li", {
      text: `${d.class} ${d.score.toFixed(2)} [${d.box.map((v) => v.toFixed(1)).join(", ")}]`,
    })));
  };
  const upload = el("input", { id: "upload", type: "file", accept: "image/*" });
  upload.onchange = () => {
    const file = upload.files[0];
    if (!file) return;
    const picture = new Image();
    picture.onload = () => {
      const canvas = el("canvas", { width, height });
      const ctx = canvas.getContext("2d");
      ctx.drawImage(picture, 0, 0, width, height);
      const data = ctx.getImageData(0, 0, width, height).data;
      const image = [];
      for (let i = 0; i < height; i++) {
        const row = [];
        for (let j = 0; j < width; j++) {
          const k = (i * width + j) * 4;
          row.push([data[k], data[k + 1], data[k + 2]]);
        }
        image.push(row);
      }
      detect(image);
    };
    picture.src = URL.createObjectURL(file);
  };
  const examples = el("div", { id: "examples" });
  if (meta.service.has_examples) {
    const { examples: images } = await (await fetch("/examples")).json();
    images.forEach((image, k) => {
      const button = el("button", { class: "example", text: `example ${k}` });
      button.onclick = () => detect(image);
      examples.append(button);
    });
  }
  app.replaceChildren(
    el("p", { text: `Pick an example or upload an image (resized to ${width}x${height}).` }),
    examples, el("div", {}, upload, el("label", { text: " minimum score " }), minScore),
    el("div", { class: "row" }, view,
      el("div", {}, el("span", { text: "boxes drawn: " }), count, list)));
}

// ---- a GAN: a grid of samples, and a walk between two latents ----
function drawSample(canvas, sample) {
  if (Array.isArray(sample[0])) {  // an image in [0, 1], (H, W, C)
    drawImage(canvas, sample.map((row) => row.map((p) => p.map((v) => Math.round(v * 255)))), 6);
  }
}

function scatter(canvas, points) {
  canvas.width = canvas.height = 360;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "white"; ctx.fillRect(0, 0, 360, 360);
  const extent = Math.max(1e-6, ...points.flat().map(Math.abs)) * 1.1;
  ctx.fillStyle = "#0a58ca";
  points.forEach(([x, y]) => ctx.fillRect(180 + (x / extent) * 175, 180 - (y / extent) * 175, 3, 3));
}

function generator(meta) {
  const seed = el("input", { id: "seed", type: "number", value: "0" });
  const count = el("input", { id: "count", type: "number", value: "16" });
  const grid = el("div", { id: "samples" });
  const points = el("canvas", { class: "view" });
  const images = meta.dataset.info.input_shape.length === 3;
  const sample = el("button", { id: "sample", text: "Sample" });
  sample.onclick = async () => {
    const answer = await post("/generate", { seed: Number(seed.value), count: Number(count.value) });
    if (images) {
      grid.replaceChildren(...answer.samples.map((s) => { const c = el("canvas", { class: "view sample" }); drawSample(c, s); return c; }));
    } else {
      scatter(points, answer.samples);
      points.dataset.points = String(answer.samples.length);
      grid.replaceChildren(points);
    }
  };
  const frame = el("canvas", { id: "frame", class: "view" });
  const slider = el("input", { id: "walk", type: "range", min: "0", max: "9", value: "0" });
  let frames = [];
  const walk = el("button", { id: "interpolate", text: "Walk from seed 0 to seed 1" });
  walk.onclick = async () => {
    const answer = await post("/generate", { interpolate: { from_seed: 0, to_seed: 1, steps: 10 } });
    frames = answer.samples;
    slider.value = "0"; slider.oninput();
  };
  slider.oninput = () => {
    const s = frames[Number(slider.value)];
    if (!s) return;
    if (images) drawSample(frame, s); else scatter(frame, [s]);
  };
  app.replaceChildren(
    el("div", {}, el("label", { text: "seed" }), seed, el("label", { text: " count" }), count, sample),
    grid,
    el("h3", { text: "Latent interpolation" }), walk, el("div", {}, slider), frame);
  sample.onclick();
}

// ---- a character model writing, a chunk at a time ----
function languageModel(meta) {
  const prompt = el("textarea", { id: "prompt", rows: "3" });
  prompt.value = "def ";
  const length = el("input", { id: "length", type: "number", value: "200" });
  const temperature = el("input", { id: "temperature", type: "number", step: "0.1", value: "0.8" });
  const out = el("div", { id: "generated" });
  const write = el("button", { id: "write", text: "Write" });
  write.onclick = async () => {
    out.textContent = "";
    const total = Number(length.value);
    let written = "", chunk = 0;
    while (written.length < total) {
      const context = (prompt.value + written).slice(-500);
      const size = Math.min(20, total - written.length);
      const answer = await post("/generate", {
        prompt: context, length: size, temperature: Number(temperature.value), seed: chunk++,
      });
      written += answer.text;
      out.textContent = prompt.value + written;
    }
    out.dataset.written = String(written.length);
  };
  app.replaceChildren(
    el("p", { text: `Vocabulary: ${meta.vocabulary.length} characters.` }), prompt,
    el("div", {}, el("label", { text: "length" }), length, el("label", { text: " temperature" }), temperature, write),
    out);
}

// ---- anything else: JSON in, JSON out ----
function generic(meta) {
  const endpoint = el("select", { id: "endpoint" }, ...meta.service.endpoints.map((e) => el("option", { value: e, text: `/${e}` })));
  const body = el("textarea", { id: "body", rows: "8" });
  body.value = JSON.stringify({ inputs: [] });
  const out = el("pre", { id: "answer" });
  const send = el("button", { id: "send", text: "Send" });
  send.onclick = async () => {
    out.textContent = JSON.stringify(await post(`/${endpoint.value}`, JSON.parse(body.value)), null, 2);
  };
  app.replaceChildren(el("p", { text: entryInput(meta).description }), endpoint, body, send, out);
}

async function main() {
  const meta = await (await fetch("/metadata")).json();
  const name = meta.model.name || "model";
  document.getElementById("title").textContent = `${name} on ${meta.dataset.name}`;
  document.getElementById("subtitle").textContent =
    `${meta.family}; ${meta.dataset.info.description}; endpoints: ${meta.service.endpoints.map((e) => "/" + e).join(", ")}`;
  const input = meta.functions[meta.entry].inputs[0];
  if (meta.family === "classifier" && input.shape.length === 4) await imageClassifier(meta);
  else if ((meta.family === "classifier" || meta.family === "regressor") && input.shape.length === 2) tabular(meta);
  else if (meta.family === "detector") await detector(meta);
  else if (meta.family === "generator") generator(meta);
  else if (meta.family === "language_model") languageModel(meta);
  else generic(meta);
  document.body.dataset.ready = "true";
}

main().catch((error) => { errorBox.textContent = String(error); });
