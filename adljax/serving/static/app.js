// The adljax model page and API page: plain JavaScript, no build step, no network but
// this service. The page reads /metadata and shows the interface of the model's family.
//
// For tests and the curious: window.adljaxLast = {endpoint, inputs, request, response} is
// the last answered request (inputs: the examples sent); window.adljax.done counts the
// requests handled (answered or refused), window.adljax.busy those in flight.
"use strict";

window.adljax = { done: 0, busy: 0, metadata: null, ui: null };
window.adljaxLast = null;

const $ = (id) => document.getElementById(id);

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

// ---------------------------------------------------------------- requests and errors

class ApiError extends Error {
  constructor(status, field, message) {
    super(message);
    this.status = status;
    this.field = field;
  }
}

function showError(error) {
  const box = $("error");
  if (!box) return;
  if (!error) {
    box.hidden = true;
    box.textContent = "";
    return;
  }
  let text;
  if (error instanceof ApiError) {
    text = `${error.status}: ${error.field ? error.field + ": " : ""}${error.message}`;
  } else {
    text = String(error.message || error);
  }
  box.textContent = text;
  box.hidden = false;
}

async function getJSON(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const error = (body && body.error) || {};
    throw new ApiError(response.status, error.field || null, error.message || response.statusText);
  }
  return body;
}

// POSTs `body` to /`endpoint`; records window.adljaxLast and shows or clears #error.
async function post(endpoint, body) {
  window.adljax.busy += 1;
  try {
    const response = await fetch(`/${endpoint}`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
    });
    const answer = await response.json().catch(() => null);
    if (!response.ok) {
      const error = (answer && answer.error) || {};
      throw new ApiError(response.status, error.field || null, error.message || response.statusText);
    }
    showError(null);
    return answer;
  } catch (error) {
    showError(error);
    throw error;
  } finally {
    window.adljax.busy -= 1;
  }
}

function record(endpoint, request, response) {
  window.adljaxLast = { endpoint: `/${endpoint}`, inputs: request.inputs, request, response };
}

function finished() {
  window.adljax.done += 1;
}

// Runs the async `task`, counting it in adljax.done whatever happens; errors are shown.
async function handled(task) {
  try {
    await task();
  } catch (error) {
    showError(error);
  } finally {
    finished();
  }
}

// ---------------------------------------------------------------- helpers

function entrySpec(meta) {
  const fn = meta.functions[meta.entry] || Object.values(meta.functions)[0];
  return fn.inputs[0];
}

function exampleShape(spec) {
  return spec.shape.filter((size) => size !== "batch");
}

function isImageSpec(spec) {
  return spec.shape.length === 4 && spec.dtype === "uint8";
}

function describeSpec(spec) {
  return `${spec.name} ${spec.dtype} (${spec.shape.join(", ")})`;
}

function formatNumber(value) {
  if (!Number.isFinite(value)) return String(value);
  const magnitude = Math.abs(value);
  if (magnitude !== 0 && (magnitude >= 1e6 || magnitude < 1e-3)) return value.toExponential(3);
  return String(Number(value.toPrecision(5)));
}

function classColour(index) {
  const palette = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#46f0f0",
    "#f032e6", "#bcf60c", "#fabebe", "#008080", "#e6beff", "#9a6324"];
  return palette[index % palette.length];
}

// An (H, W, C) nested list of 0-255 values drawn into a fresh W x H canvas.
function imageCanvas(image, className) {
  const h = image.length;
  const w = image[0].length;
  const canvas = el("canvas", { class: className || "pixels" });
  canvas.width = w;
  canvas.height = h;
  putPixels(canvas.getContext("2d"), image, 0, 0, 1);
  return canvas;
}

// Draws (H, W, C) values 0-255 (C = 1 grey, 3 RGB) at (x, y), each pixel scale x scale.
function putPixels(ctx, image, x, y, scale) {
  const h = image.length;
  const w = image[0].length;
  const data = ctx.createImageData(w, h);
  for (let i = 0; i < h; i++) {
    for (let j = 0; j < w; j++) {
      const px = image[i][j];
      const c = Array.isArray(px) ? px : [px];
      const o = 4 * (i * w + j);
      data.data[o] = c[0];
      data.data[o + 1] = c.length >= 3 ? c[1] : c[0];
      data.data[o + 2] = c.length >= 3 ? c[2] : c[0];
      data.data[o + 3] = 255;
    }
  }
  if (scale === 1) {
    ctx.putImageData(data, x, y);
    return;
  }
  const small = el("canvas");
  small.width = w;
  small.height = h;
  small.getContext("2d").putImageData(data, 0, 0);
  ctx.save();
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(small, x, y, w * scale, h * scale);
  ctx.restore();
}

function toBytes(image01) {
  return image01.map((row) => row.map((px) => px.map((v) => Math.round(255 * Math.min(1, Math.max(0, v))))));
}

function renderBars(container, probabilities, names, top) {
  container.replaceChildren();
  probabilities.forEach((p, k) => {
    const row = el("div", { class: "bar-row" + (k === top ? " top" : ""), "data-class-id": String(k) });
    const fill = el("div", { class: "bar-fill" });
    fill.style.width = `${(100 * p).toFixed(1)}%`;
    row.append(
      el("span", { class: "bar-label", text: names ? names[k] : String(k) }),
      el("div", { class: "bar" }, fill),
      el("span", { class: "bar-value", text: `${(100 * p).toFixed(1)}%` }),
    );
    container.append(row);
  });
}

async function loadExamples(meta) {
  if (!meta.service.has_examples) return null;
  try {
    return (await getJSON("/examples")).examples;
  } catch (error) {
    showError(error);
    return null;
  }
}

function integerField(id, low, high) {
  const text = $(id).value.trim();
  const value = Number(text);
  if (text === "" || !Number.isInteger(value) || value < low || value > high) {
    throw new Error(`${id}: enter a whole number from ${low} to ${high}`);
  }
  return value;
}

// ---------------------------------------------------------------- the header

function showHeader(meta) {
  const model = meta.model.name || "model";
  const dataset = meta.dataset.name;
  document.title = `${model} on ${dataset} · adljax`;
  $("model-title").textContent = `${model} on ${dataset}`;
  $("model-name").textContent = model;
  $("dataset-name").textContent = dataset;
  $("family").textContent = meta.family;
  $("input-spec").textContent = meta.family === "language_model"
    ? `text, ${[...(meta.vocabulary || "")].length} known characters`
    : describeSpec(entrySpec(meta));
  const info = meta.dataset.info || {};
  $("dataset-description").textContent = info.description || "";
}

function chooseUI(meta) {
  const spec = entrySpec(meta);
  if (meta.family === "classifier" && isImageSpec(spec)) return "draw";
  if ((meta.family === "classifier" || meta.family === "regressor") && spec.shape.length === 2) {
    return "form";
  }
  if (meta.family === "detector") return "detect";
  if (meta.family === "generator") return "generate";
  if (meta.family === "language_model") return "write";
  return "json";
}

// ---------------------------------------------------------------- draw a digit

async function setUpDraw(meta) {
  const spec = entrySpec(meta);
  const [H, W, C] = exampleShape(spec);
  const names = meta.class_names;
  // The canvas is a whole number of screen pixels per model pixel (35 for 8x8: 280x280),
  // so every cell averages the same area.
  const k = Math.max(1, Math.round(280 / Math.max(H, W)));
  const canvas = $("draw-canvas");
  canvas.width = W * k;
  canvas.height = H * k;
  canvas.style.aspectRatio = `${W} / ${H}`;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  // About 1.5 cells wide on a small grid (the strokes of scikit-learn's 8x8 digits), at
  // least a tenth of the canvas on a large one (MNIST's 28x28).
  const brush = Math.round(Math.max(1.5 * k, canvas.width / 11));
  $("grid-size").textContent = `${H}x${W}`;
  $("pixels-caption").textContent =
    `${H}x${W} cells, uint8 0-255, ink high (the mean of each ${k}x${k} block)`;
  const preview = $("pixels-preview");
  preview.width = W;
  preview.height = H;

  function clear() {
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
  }
  clear();

  // Area average: each model pixel is the mean of its k x k block, ink (white) high.
  function pixels() {
    const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    const image = [];
    for (let i = 0; i < H; i++) {
      const row = [];
      for (let j = 0; j < W; j++) {
        const sums = [0, 0, 0];
        for (let y = i * k; y < (i + 1) * k; y++) {
          for (let x = j * k; x < (j + 1) * k; x++) {
            const o = 4 * (y * canvas.width + x);
            sums[0] += data[o];
            sums[1] += data[o + 1];
            sums[2] += data[o + 2];
          }
        }
        const mean = sums.map((s) => Math.round(s / (k * k)));
        row.push(C === 1 ? [Math.round((mean[0] + mean[1] + mean[2]) / 3)] : mean.slice(0, C));
      }
      image.push(row);
    }
    return image;
  }

  let sequence = 0;
  async function classify() {
    const image = pixels();
    putPixels(preview.getContext("2d"), image, 0, 0, 1);
    const mine = ++sequence;
    await handled(async () => {
      const request = { inputs: [image] };
      const answer = await post("classify", request);
      if (mine !== sequence) return; // a later stroke's answer will show
      const p = answer.predictions[0];
      $("top-class").textContent = p.class;
      $("top-class").dataset.classId = String(p.class_id);
      $("top-probability").textContent = `(${(100 * p.probability).toFixed(1)}%)`;
      renderBars($("bars"), p.probabilities, names, p.class_id);
      record("classify", request, answer);
    });
  }

  let drawing = false;
  let last = null;
  function point(event) {
    const rect = canvas.getBoundingClientRect();
    return [
      ((event.clientX - rect.left) * canvas.width) / rect.width,
      ((event.clientY - rect.top) * canvas.height) / rect.height,
    ];
  }
  function dot([x, y]) {
    ctx.fillStyle = "#fff";
    ctx.beginPath();
    ctx.arc(x, y, brush / 2, 0, 2 * Math.PI);
    ctx.fill();
  }
  function segment(from, to) {
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = brush;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(from[0], from[1]);
    ctx.lineTo(to[0], to[1]);
    ctx.stroke();
  }
  canvas.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    if (canvas.setPointerCapture) {
      try {
        canvas.setPointerCapture(event.pointerId);
      } catch (_) {
        // synthetic pointers cannot always be captured
      }
    }
    drawing = true;
    last = point(event);
    dot(last);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!drawing) return;
    event.preventDefault();
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    for (const e of events.length ? events : [event]) {
      const here = point(e);
      segment(last, here);
      last = here;
    }
  });
  function end(event) {
    if (!drawing) return;
    event.preventDefault();
    drawing = false;
    classify();
  }
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  canvas.addEventListener("lostpointercapture", end);

  $("clear").addEventListener("click", () => {
    sequence += 1;
    clear();
    preview.getContext("2d").clearRect(0, 0, W, H);
    $("top-class").textContent = "–";
    $("top-probability").textContent = "";
    $("bars").replaceChildren();
  });

  const examples = await loadExamples(meta);
  if (examples) {
    $("draw-examples-box").hidden = false;
    examples.forEach((image, index) => {
      const button = el("button", { type: "button", class: "thumb", id: `draw-example-${index}`,
        title: `test image ${index}` }, imageCanvas(image));
      button.addEventListener("click", () => {
        clear();
        putPixels(ctx, image, 0, 0, k);
        classify();
      });
      $("draw-examples").append(button);
    });
  }
}

// ---------------------------------------------------------------- a form of features

async function setUpForm(meta) {
  const spec = entrySpec(meta);
  const [F] = exampleShape(spec);
  const info = meta.dataset.info || {};
  const extras = info.extras || {};
  const names = meta.feature_names || info.feature_names || [];
  const means = extras.feature_mean || [];
  const stds = extras.feature_std || [];
  const endpoint = meta.family === "classifier" ? "classify" : "regress";
  $("form-title").textContent = `${F} features`;
  const fields = $("feature-fields");
  for (let f = 0; f < F; f++) {
    const name = names[f] || `feature ${f}`;
    const value = means[f] !== undefined ? String(Number(means[f].toFixed(2))) : "0";
    const hint = means[f] !== undefined
      ? `training mean ${formatNumber(means[f])}${stds[f] !== undefined ? `, std ${formatNumber(stds[f])}` : ""}`
      : "";
    fields.append(
      el("label", { for: `feature-${f}`, text: name }),
      el("input", { type: "number", step: "any", id: `feature-${f}`, name, value, required: "" }),
      el("span", { class: "muted hint", text: hint }),
    );
  }
  if (meta.family === "regressor") {
    $("prediction-note").textContent = info.description ? `target: ${info.description}` : "";
  }

  function features() {
    const values = [];
    for (let f = 0; f < F; f++) {
      const text = $(`feature-${f}`).value.trim();
      const value = Number(text);
      if (text === "" || !Number.isFinite(value)) {
        throw new Error(`${names[f] || `feature ${f}`}: enter a number`);
      }
      values.push(value);
    }
    return values;
  }

  let sequence = 0;
  async function predict() {
    const mine = ++sequence;
    await handled(async () => {
      const request = { inputs: [features()] };
      const answer = await post(endpoint, request);
      if (mine !== sequence) return;
      const p = answer.predictions[0];
      const out = $("prediction");
      if (endpoint === "regress") {
        out.textContent = p.value.map(formatNumber).join(", ");
        out.dataset.value = JSON.stringify(p.value);
      } else {
        out.textContent = `class ${p.class} (${(100 * p.probability).toFixed(1)}%)`;
        out.dataset.value = JSON.stringify(p.class_id);
        renderBars($("form-bars"), p.probabilities, meta.class_names, p.class_id);
      }
      record(endpoint, request, answer);
    });
  }
  $("feature-form").addEventListener("submit", (event) => {
    event.preventDefault();
    predict();
  });

  const examples = await loadExamples(meta);
  if (examples) {
    $("form-examples-box").hidden = false;
    examples.forEach((row, index) => {
      const button = el("button", { type: "button", id: `form-example-${index}`, text: `test ${index}`,
        title: row.map(formatNumber).join(", ") });
      button.addEventListener("click", () => {
        row.forEach((v, f) => { $(`feature-${f}`).value = String(Number(v.toPrecision(6))); });
        predict();
      });
      $("form-examples").append(button);
    });
  }
  predict();
}

// ---------------------------------------------------------------- detection

async function setUpDetect(meta) {
  const spec = entrySpec(meta);
  const [H, W, C] = exampleShape(spec);
  const names = meta.class_names;
  const scale = Math.max(1, Math.floor(448 / Math.max(H, W)));
  const canvas = $("detect-canvas");
  canvas.width = W * scale;
  canvas.height = H * scale;
  const ctx = canvas.getContext("2d");
  $("upload-note").textContent = `an upload is resized to ${W}x${H} RGB, as the model takes it`;
  let current = null;
  let sequence = 0;

  function minScore() {
    return Number($("min-score").value);
  }

  function draw(image, detections) {
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    putPixels(ctx, image, 0, 0, scale);
    let drawn = 0;
    ctx.font = "bold 14px system-ui, sans-serif";
    ctx.textBaseline = "top";
    // Lowest score first, so the best boxes and their labels lie on top.
    for (const d of [...detections].reverse()) {
      const [x0, y0, x1, y1] = d.box.map((v) => v * scale);
      const colour = classColour(d.class_id);
      ctx.strokeStyle = colour;
      ctx.lineWidth = 3;
      ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
      const label = `${d.class} ${d.score.toFixed(2)}`;
      const width = ctx.measureText(label).width + 6;
      const ly = y0 >= 18 ? y0 - 18 : y0;
      ctx.fillStyle = colour;
      ctx.fillRect(x0, ly, width, 18);
      ctx.fillStyle = "#fff";
      ctx.fillText(label, x0 + 3, ly + 2);
      drawn += 1;
    }
    return drawn;
  }

  async function detect(image) {
    current = image;
    const mine = ++sequence;
    draw(image, []);
    await handled(async () => {
      const request = { inputs: [image], min_score: minScore() };
      const answer = await post("detect", request);
      if (mine !== sequence) return;
      const detections = answer.detections[0];
      const drawn = draw(image, detections);
      $("box-count").textContent = String(drawn);
      const rows = detections.map((d, i) => el("tr", {},
        el("td", { text: String(i + 1) }),
        el("td", {}, el("span", { class: "swatch", style: `background:${classColour(d.class_id)}` }), d.class),
        el("td", { text: d.score.toFixed(3) }),
        el("td", { text: d.box.map((v) => v.toFixed(1)).join(", ") })));
      $("detections").replaceChildren(...rows);
      record("detect", request, answer);
      window.adljaxLast.boxesDrawn = drawn;
    });
  }

  $("min-score").addEventListener("input", () => {
    $("min-score-value").textContent = minScore().toFixed(2);
  });
  $("min-score").addEventListener("change", () => {
    if (current) detect(current);
  });

  $("upload").addEventListener("change", async () => {
    const file = $("upload").files[0];
    if (!file) return;
    let bitmap;
    try {
      bitmap = await createImageBitmap(file);
    } catch (error) {
      showError(new Error(`cannot read ${file.name} as an image`));
      finished();
      return;
    }
    const small = el("canvas");
    small.width = W;
    small.height = H;
    const sctx = small.getContext("2d", { willReadFrequently: true });
    sctx.fillStyle = "#000";
    sctx.fillRect(0, 0, W, H);
    sctx.imageSmoothingQuality = "high";
    sctx.drawImage(bitmap, 0, 0, W, H);
    const data = sctx.getImageData(0, 0, W, H).data;
    const image = [];
    for (let i = 0; i < H; i++) {
      const row = [];
      for (let j = 0; j < W; j++) {
        const o = 4 * (i * W + j);
        row.push(C === 1 ? [Math.round((data[o] + data[o + 1] + data[o + 2]) / 3)]
          : [data[o], data[o + 1], data[o + 2]].slice(0, C));
      }
      image.push(row);
    }
    document.querySelectorAll("#detect-examples .thumb").forEach((b) => b.classList.remove("selected"));
    detect(image);
  });

  const examples = await loadExamples(meta);
  if (examples) {
    $("detect-examples-box").hidden = false;
    examples.forEach((image, index) => {
      const button = el("button", { type: "button", class: "thumb", id: `detect-example-${index}`,
        title: `test image ${index}` }, imageCanvas(image));
      button.addEventListener("click", () => {
        document.querySelectorAll("#detect-examples .thumb").forEach((b) => b.classList.remove("selected"));
        button.classList.add("selected");
        detect(image);
      });
      $("detect-examples").append(button);
    });
    $("detect-example-0").click();
  }
}

// ---------------------------------------------------------------- generators

async function setUpGenerate(meta) {
  const outputs = meta.functions.generate.outputs;
  const shape = exampleShape(outputs.find((o) => o.name === "samples") || outputs[0]);
  const images = shape.length === 3;
  const points = shape.length === 1 && shape[0] === 2;
  const limit = Math.min(256, meta.service.max_batch_size);
  const info = meta.dataset.info || {};
  const centres = (info.extras && info.extras.centres) || null;
  $("count").max = String(limit);
  // A grid of 16 images; points make a cloud, the more the better (up to the limit).
  $("count").value = String(Math.min(points ? 256 : 16, limit));
  $("steps").max = String(limit);
  $("steps").value = String(Math.min(points ? 24 : 8, limit));
  $("samples-note").textContent = images
    ? `images ${shape.join("x")} in [0, 1], drawn 0-255`
    : points ? "2-D points; rings: the training mixture's centres" : `samples of shape (${shape})`;

  // One fixed view for all point plots: the samples' extent, with the centres in view.
  function view(all) {
    let xs = all.map((p) => p[0]);
    let ys = all.map((p) => p[1]);
    if (centres) {
      xs = xs.concat(centres.map((c) => c[0]));
      ys = ys.concat(centres.map((c) => c[1]));
    }
    const cx = (Math.max(...xs) + Math.min(...xs)) / 2;
    const cy = (Math.max(...ys) + Math.min(...ys)) / 2;
    const half = 0.55 * Math.max(Math.max(...xs) - Math.min(...xs), Math.max(...ys) - Math.min(...ys), 1e-6);
    return { cx, cy, half };
  }

  function scatter(canvas, all, highlight, path) {
    const ctx = canvas.getContext("2d");
    const size = canvas.width;
    const v = view(all);
    const sx = (x) => ((x - v.cx + v.half) / (2 * v.half)) * size;
    const sy = (y) => ((v.cy + v.half - y) / (2 * v.half)) * size;
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, size, size);
    ctx.strokeStyle = "#ddd";
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(sx(0), 0); ctx.lineTo(sx(0), size);
    ctx.moveTo(0, sy(0)); ctx.lineTo(size, sy(0));
    ctx.stroke();
    if (centres) {
      ctx.strokeStyle = "#999";
      for (const c of centres) {
        ctx.beginPath();
        ctx.arc(sx(c[0]), sy(c[1]), 9, 0, 2 * Math.PI);
        ctx.stroke();
      }
    }
    if (path) {
      ctx.strokeStyle = "#4363d8";
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      all.forEach((p, i) => (i ? ctx.lineTo(sx(p[0]), sy(p[1])) : ctx.moveTo(sx(p[0]), sy(p[1]))));
      ctx.stroke();
    }
    let drawn = 0;
    ctx.fillStyle = "rgba(230, 25, 75, 0.75)";
    for (const p of all) {
      ctx.beginPath();
      ctx.arc(sx(p[0]), sy(p[1]), 3.5, 0, 2 * Math.PI);
      ctx.fill();
      drawn += 1;
    }
    if (highlight !== undefined && all[highlight]) {
      const p = all[highlight];
      ctx.fillStyle = "#f58231";
      ctx.strokeStyle = "#000";
      ctx.beginPath();
      ctx.arc(sx(p[0]), sy(p[1]), 8, 0, 2 * Math.PI);
      ctx.fill();
      ctx.stroke();
    }
    return drawn;
  }

  let sequence = 0;
  async function sample() {
    const mine = ++sequence;
    await handled(async () => {
      const request = { seed: integerField("seed", 0, 2 ** 31 - 1), count: integerField("count", 1, limit) };
      const answer = await post("generate", request);
      if (mine !== sequence) return;
      const grid = $("samples");
      grid.replaceChildren();
      let drawn = 0;
      if (images) {
        answer.samples.forEach((s, i) => {
          const canvas = imageCanvas(toBytes(s), "sample");
          canvas.title = `sample ${i}`;
          grid.append(canvas);
          drawn += 1;
        });
      } else if (points) {
        const canvas = el("canvas", { class: "scatter", id: "scatter" });
        canvas.width = canvas.height = 360;
        grid.append(canvas);
        drawn = scatter(canvas, answer.samples);
      } else {
        grid.append(el("pre", { class: "output", text: JSON.stringify(answer.samples) }));
        drawn = answer.samples.length;
      }
      grid.dataset.drawn = String(drawn);
      $("samples-note").dataset.count = String(drawn);
      record("generate", request, answer);
      window.adljaxLast.drawn = drawn;
    });
  }

  let frames = [];
  let timer = null;
  function showFrame(index) {
    const canvas = $("frame-canvas");
    if (!frames.length) return;
    $("frame-index").textContent = `${index + 1} / ${frames.length}`;
    $("frame-canvas").dataset.frame = String(index);
    if (images) {
      const image = toBytes(frames[index]);
      const scale = Math.max(1, Math.floor(224 / Math.max(shape[0], shape[1])));
      canvas.width = shape[1] * scale;
      canvas.height = shape[0] * scale;
      putPixels(canvas.getContext("2d"), image, 0, 0, scale);
      document.querySelectorAll("#frames canvas").forEach((c, i) => c.classList.toggle("selected", i === index));
    } else if (points) {
      canvas.width = canvas.height = 300;
      scatter(canvas, frames, index, true);
    }
  }
  async function interpolate() {
    await handled(async () => {
      const request = {
        interpolate: {
          from_seed: integerField("from-seed", 0, 2 ** 31 - 1),
          to_seed: integerField("to-seed", 0, 2 ** 31 - 1),
          steps: integerField("steps", 2, limit),
        },
      };
      const answer = await post("generate", request);
      frames = answer.samples;
      const slider = $("frame-slider");
      slider.max = String(frames.length - 1);
      slider.value = "0";
      const strip = $("frames");
      strip.replaceChildren();
      if (images) {
        frames.forEach((f, i) => {
          const c = imageCanvas(toBytes(f), "sample small");
          c.addEventListener("click", () => { slider.value = String(i); showFrame(i); });
          strip.append(c);
        });
      }
      showFrame(0);
      record("generate", request, answer);
    });
  }
  $("frame-slider").addEventListener("input", () => showFrame(Number($("frame-slider").value)));
  $("play").addEventListener("click", () => {
    if (timer) {
      clearInterval(timer);
      timer = null;
      $("play").textContent = "Play";
      return;
    }
    $("play").textContent = "Pause";
    timer = setInterval(() => {
      if (!frames.length) return;
      const slider = $("frame-slider");
      const next = (Number(slider.value) + 1) % frames.length;
      slider.value = String(next);
      showFrame(next);
    }, 250);
  });
  $("sample-form").addEventListener("submit", (event) => { event.preventDefault(); sample(); });
  $("interpolate-form").addEventListener("submit", (event) => { event.preventDefault(); interpolate(); });
  await sample();
  await interpolate();
}

// ---------------------------------------------------------------- language models

const CHUNK = 20;
const CONTEXT = 500;

async function setUpWrite(meta) {
  const vocabulary = meta.vocabulary || "";
  $("chunk-size").textContent = String(CHUNK);
  const promptBox = $("prompt");
  if ([...promptBox.value].some((c) => !vocabulary.includes(c))) {
    promptBox.value = vocabulary.includes("T") ? "The " : vocabulary.slice(0, 1);
  }
  let stopped = false;
  window.adljax.writing = false;

  async function write() {
    const prompt = promptBox.value;
    let length, temperature, seed;
    try {
      if (!prompt) throw new Error("prompt: write a few characters first");
      const unknown = [...new Set([...prompt].filter((c) => !vocabulary.includes(c)))];
      if (vocabulary && unknown.length) {
        throw new Error(`prompt: characters the model does not know: ${JSON.stringify(unknown.join(""))}`);
      }
      length = integerField("length", 1, 2000);
      seed = integerField("lm-seed", 0, 2 ** 31 - 1);
      temperature = Number($("temperature").value);
      if (!(temperature > 0)) throw new Error("temperature: a number above 0");
    } catch (error) {
      showError(error);
      finished();
      return;
    }
    stopped = false;
    window.adljax.writing = true;
    $("write").disabled = true;
    $("stop").disabled = false;
    $("prompt-echo").textContent = prompt;
    const out = $("generated");
    out.textContent = "";
    let text = "";
    const status = $("write-status");
    status.dataset.state = "writing";
    try {
      for (let chunk = 0; [...text].length < length && !stopped; chunk++) {
        const written = [...text].length;
        const context = [...(prompt + text)].slice(-CONTEXT).join("");
        const request = { prompt: context, length: Math.min(CHUNK, length - written),
          temperature, seed: seed + chunk };
        status.textContent = `writing… ${written} / ${length}`;
        let answer;
        try {
          answer = await post("generate", request);
          record("generate", request, answer);
        } finally {
          finished();
        }
        if (!answer.text) break;
        text += answer.text;
        out.textContent = text;
        $("output").scrollTop = $("output").scrollHeight;
      }
      status.textContent = stopped ? `stopped at ${[...text].length} characters`
        : `${[...text].length} characters`;
      status.dataset.state = stopped ? "stopped" : "done";
    } catch (error) {
      status.textContent = "failed";
      status.dataset.state = "failed";
    } finally {
      window.adljax.writing = false;
      $("write").disabled = false;
      $("stop").disabled = true;
    }
  }
  $("write-form").addEventListener("submit", (event) => { event.preventDefault(); write(); });
  $("stop").addEventListener("click", () => { stopped = true; });
}

// ---------------------------------------------------------------- JSON in, JSON out

function zeros(shape, value) {
  if (!shape.length) return value;
  return Array.from({ length: shape[0] }, () => zeros(shape.slice(1), value));
}

function exampleBody(meta, endpoint, examples) {
  if (endpoint === "generate") {
    if (meta.family === "language_model") {
      const vocabulary = meta.vocabulary || "";
      const prompt = [..."def "].every((c) => vocabulary.includes(c)) ? "def " : vocabulary.slice(0, 1);
      return { prompt, length: 100, temperature: 0.8, seed: 0 };
    }
    return { seed: 0, count: Math.min(4, meta.service.max_batch_size) };
  }
  const fn = { classify: "predict", regress: "predict", detect: "detect", embed: "embed" }[endpoint];
  const spec = (meta.functions[fn] || meta.functions[meta.entry]).inputs[0];
  const example = examples ? examples[0] : zeros(exampleShape(spec), spec.low !== undefined && spec.low !== null ? spec.low : 0);
  const body = { inputs: [example] };
  if (endpoint === "detect") body.min_score = 0.3;
  return body;
}

async function setUpJSON(meta) {
  const select = $("json-endpoint");
  for (const name of meta.service.endpoints) select.append(el("option", { value: name, text: `/${name}` }));
  const examples = await loadExamples(meta);
  $("json-note").textContent = examples
    ? "filled in with the first test example"
    : `inputs: ${describeSpec(entrySpec(meta))}`;
  function fill() {
    $("json-body").value = JSON.stringify(exampleBody(meta, select.value, examples));
  }
  select.addEventListener("change", fill);
  fill();
  $("json-send").addEventListener("click", () => handled(async () => {
    let request;
    try {
      request = JSON.parse($("json-body").value);
    } catch (error) {
      throw new Error(`the request is not valid JSON: ${error.message}`);
    }
    const answer = await post(select.value, request);
    $("json-answer").textContent = JSON.stringify(answer, null, 2);
    record(select.value, request, answer);
  }));
}

// ---------------------------------------------------------------- the API page (/docs)

function shellQuote(text) {
  return `'${text.replace(/'/g, "'\\''")}'`;
}

function pythonShape(shape) {
  let expression = "0";
  for (const size of [...shape].reverse()) expression = `[${expression}]*${size}`;
  return `[${expression}]`;
}

// {text: the shell command, body: the JSON it sends (null for GET)}.
function curlExample(base, path, method, body, spec) {
  if (method === "get") return { text: `curl -s ${base}${path}`, body: null };
  const json = JSON.stringify(body);
  if (json.length <= 1500 || !spec) {
    return {
      text: `curl -s -X POST ${base}${path} \\\n  -H 'Content-Type: application/json' \\\n  -d ${shellQuote(json)}`,
      body,
    };
  }
  // Too long to read: a zero input of the right shape, written by Python.
  const zero = { ...body, inputs: [zeros(exampleShape(spec), 0)] };
  const extra = body.min_score !== undefined ? `, "min_score": ${body.min_score}` : "";
  return {
    text: `python3 -c 'import json; print(json.dumps({"inputs": ${pythonShape(exampleShape(spec))}${extra}}))' \\\n`
      + `  | curl -s -X POST ${base}${path} -H 'Content-Type: application/json' -d @-`,
    body: zero,
  };
}

async function setUpDocs() {
  const base = window.location.origin;
  let schema, meta, examples = null;
  try {
    [schema, meta] = await Promise.all([getJSON("/openapi.json"), getJSON("/metadata")]);
  } catch (error) {
    showError(error);
    finished();
    return;
  }
  if (meta.service.has_examples) {
    examples = await getJSON("/examples").then((e) => e.examples).catch(() => null);
  }
  document.title = `${schema.info.title} · API`;
  $("api-title").textContent = schema.info.title;
  $("api-version").textContent = `OpenAPI ${schema.openapi} · adljax ${schema.info.version}`;
  $("base-url").textContent = base;
  const list = $("endpoints");
  const index = $("endpoint-index");
  const fnOf = { classify: "predict", regress: "predict", detect: "detect", embed: "embed" };
  for (const [path, methods] of Object.entries(schema.paths)) {
    for (const [method, operation] of Object.entries(methods)) {
      const name = path.replace(/^\//, "");
      const id = `endpoint-${method}-${name}`;
      const section = el("section", { class: "endpoint", id, "data-path": path, "data-method": method });
      section.append(el("h2", {},
        el("span", { class: `method ${method}`, text: method.toUpperCase() }),
        el("code", { class: "path", text: path })));
      section.append(el("p", { class: "summary", text: operation.summary || "" }));
      const content = operation.requestBody && operation.requestBody.content["application/json"];
      let body = null;
      let spec = null;
      if (content) {
        section.append(el("h3", { text: "request body (JSON schema)" }));
        section.append(el("pre", { class: "schema", text: JSON.stringify(content.schema, null, 2) }));
        body = exampleBody(meta, name, examples);
        const fn = fnOf[name];
        spec = fn && meta.functions[fn] ? meta.functions[fn].inputs[0] : null;
      }
      const byDescription = new Map();
      for (const [code, r] of Object.entries(operation.responses || {})) {
        byDescription.set(r.description, [...(byDescription.get(r.description) || []), code]);
      }
      const codes = [...byDescription].map(([description, list]) => `${list.join(", ")}: ${description}`);
      section.append(el("h3", { text: "responses" }), el("p", { class: "muted", text: codes.join(" · ") }));
      section.append(el("h3", { text: "example" }));
      const bodies = [body];
      if (name === "generate" && meta.family === "generator" && meta.service.max_batch_size >= 2) {
        bodies.push({ interpolate: { from_seed: 0, to_seed: 1, steps: Math.min(8, meta.service.max_batch_size) } });
      }
      for (const b of bodies) {
        const example = curlExample(base, path, method, b, spec);
        const curl = el("pre", { class: "curl", text: example.text });
        if (example.body) curl.dataset.body = JSON.stringify(example.body);
        section.append(curl);
      }
      list.append(section);
      index.append(el("li", {}, el("a", { href: `#${id}` }, `${method.toUpperCase()} ${path}`)));
    }
  }
  for (const [path, what] of [["/", "this model's web page"], ["/docs", "this page"], ["/openapi.json", "the OpenAPI document above"]]) {
    index.append(el("li", {}, el("a", { href: path }, `GET ${path}`), ` ${what}`));
  }
  $("loading").hidden = true;
  finished();
}

// ---------------------------------------------------------------- start

async function start() {
  if (document.body.dataset.page === "docs") {
    await setUpDocs();
    return;
  }
  let meta;
  try {
    meta = await getJSON("/metadata");
  } catch (error) {
    showError(error);
    $("loading").textContent = "The model's metadata could not be read.";
    finished();
    return;
  }
  window.adljax.metadata = meta;
  showHeader(meta);
  const ui = chooseUI(meta);
  window.adljax.ui = ui;
  document.body.dataset.ui = ui;
  $(`${ui}-ui`).hidden = false;
  $("loading").hidden = true;
  const setUp = { draw: setUpDraw, form: setUpForm, detect: setUpDetect, generate: setUpGenerate,
    write: setUpWrite, json: setUpJSON }[ui];
  try {
    await setUp(meta);
  } catch (error) {
    showError(error);
  }
  document.body.dataset.ready = "true";
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
