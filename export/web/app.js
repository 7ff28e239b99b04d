// The page of `effnet app`: MediaPipe Tasks' ImageClassifier (WebAssembly, CPU) on the model
// file beside this page. Every image is classified here; the server only serves files.
// app.json (written by `effnet app`) names the model, its metadata, its output kind, the crop,
// the runtime and examples.
// The input contract (export/contract.py): the classifier sees the centre square of `crop`
// (0.875) of the image's shorter side, resized here to the model's input size (so a photo of
// any size works: the runtime garbles images over 8192 px), as `effnet predict` does.
// The output contract: "probabilities" are shown as the file gives them, "logits" through a
// softmax over every class.
// Automation: index.html?images=a.png,b.png classifies those files on load and writes
// [{"image", "label", "score", "ms"}] (or {"error": "..."}) as JSON into <pre id="results">;
// ms: the classifier call, to 0.1 ms.

const $ = (id) => document.getElementById(id);
let config = null;
let classifier = null;
let notReady = "the model is still loading";

function status(text, kind = "") {
  $("status").textContent = text;
  $("status").className = kind;
}

async function loadConfig() {
  const response = await fetch("app.json");
  if (!response.ok) throw new Error(`app.json: HTTP ${response.status}`);
  return response.json();
}

function showModel() {
  const [height, width] = config.input.size;
  document.title = `${config.name}: in your browser`;
  $("name").textContent = config.name;
  $("description").textContent = config.description || "";
  const labels = config.labels ? `${config.labels.length} labels` : "no labels (class indices)";
  $("facts").textContent = `${config.model} · ${width}×${height} ${config.input.dtype} input · ` +
    `${labels} · MediaPipe Tasks ${config.runtime.version}`;
  $("crop").textContent = `${+(100 * config.crop).toFixed(1)}%`;
  $("labels").hidden = !config.labels;
  for (const label of config.labels || []) {
    $("labels-list").append(Object.assign(document.createElement("li"), { textContent: label }));
  }
  for (const path of config.examples || []) {
    const image = Object.assign(document.createElement("img"), { src: path, alt: "" });
    const button = Object.assign(document.createElement("button"), { type: "button", title: path });
    image.addEventListener("error", () => button.replaceChildren("not an image"));
    button.append(image);
    button.addEventListener("click", () => classifyPath(path));
    const item = document.createElement("li");
    item.append(button);
    $("gallery").append(item);
  }
  $("gallery-section").hidden = !(config.examples || []).length;
}

async function loadClassifier() {
  const base = new URL(config.runtime.url.replace(/\/?$/, "/"), document.baseURI);
  let vision;
  try {
    vision = await import(new URL("vision_bundle.mjs", base).href);
  } catch (err) {
    const { package: name, version } = config.runtime;
    throw new Error(`the MediaPipe runtime did not load from ${base.href} (${err.message}); ` +
      `to run without the network, write the app with \`effnet app --runtime=DIR\`: a local ` +
      `npm install or \`npm pack\` tarball of ${name}@${version}`);
  }
  try {
    const files = await vision.FilesetResolver.forVisionTasks(new URL("wasm", base).href);
    const loaded = await vision.ImageClassifier.createFromOptions(files, {
      baseOptions: { modelAssetPath: encodeURIComponent(config.model), delegate: "CPU" },
      runningMode: "IMAGE",
      maxResults: config.output === "logits" ? -1 : config.top_k,  // a softmax needs all
    });
    const [height, width] = config.input.size;
    loaded.classify(new ImageData(width, height));  // warm-up: the first call sets things up
    return loaded;
  } catch (err) {
    throw new Error(`the model ${config.model} failed to load (${err.message || err})`);
  }
}

async function decode(blob, name) {
  try {
    return await createImageBitmap(blob, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
  } catch {
    throw new Error(`${name}: not a readable image (${blob.type || "unknown type"})`);
  }
}

// The square the model sees of a width x height image: the centre square of `crop` of the
// shorter side, in whole pixels (as keras_effnet.data.eval_crop and contract.crop_box cut it).
function cropBox(width, height) {
  const side = Math.max(1, Math.floor(Math.min(width, height) * config.crop));
  return { x: Math.floor((width - side) / 2), y: Math.floor((height - side) / 2), side };
}

// The model's input: that square, resized to the input size by the browser.
function modelInput(bitmap) {
  const [height, width] = config.input.size;
  const { x, y, side } = cropBox(bitmap.width, bitmap.height);
  return createImageBitmap(bitmap, x, y, side, side, {
    resizeWidth: width, resizeHeight: height, resizeQuality: "high",
    premultiplyAlpha: "none", colorSpaceConversion: "none",
  });
}

// Softmax of logits (the largest subtracted first: no overflow).
function softmax(values) {
  const top = Math.max(...values);
  const exps = values.map((v) => Math.exp(v - top));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

// Top-k of one image: names from the model's labels file, as MediaPipe reads them; scores as
// the output contract says (a logits model's through a softmax over every class).
async function classify(bitmap) {
  if (!classifier) throw new Error(`not classified: ${notReady}`);
  const input = await modelInput(bitmap);
  let result, ms;
  try {
    const started = performance.now();
    result = classifier.classify(input);
    ms = Math.round((performance.now() - started) * 10) / 10;
  } finally {
    input.close();
  }
  let categories = result.classifications[0]?.categories ?? [];
  if (config.output === "logits") {
    const scores = softmax(categories.map((c) => c.score));
    categories = categories.map((c, i) => ({ ...c, score: scores[i] }))
      .sort((a, b) => b.score - a.score).slice(0, config.top_k);
  }
  const top = categories.map((c) => ({
    label: c.categoryName || config.labels?.[c.index] || String(c.index), score: c.score,
  }));
  return { top, ms };
}

function card(name, bitmap, outcome) {
  const item = document.createElement("li");
  if (bitmap) {
    const canvas = document.createElement("canvas");
    const scale = Math.min(1, 96 / Math.max(bitmap.width, bitmap.height));
    canvas.width = Math.max(1, Math.round(bitmap.width * scale));
    canvas.height = Math.max(1, Math.round(bitmap.height * scale));
    const context = canvas.getContext("2d");
    context.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    if (config?.crop) {  // outline the square the model sees
      const { x, y, side } = cropBox(bitmap.width, bitmap.height);
      context.strokeStyle = "rgba(255, 255, 255, 0.9)";
      context.setLineDash([3, 2]);
      context.strokeRect(x * scale + 0.5, y * scale + 0.5, side * scale - 1, side * scale - 1);
      canvas.title = "the outlined square is what the model sees";
    }
    item.append(canvas);
  }
  const body = document.createElement("div");
  body.append(Object.assign(document.createElement("p"), { className: "file", textContent: name }));
  if (outcome.error) {
    item.className = "failed";
    body.append(Object.assign(document.createElement("p"), { className: "error", textContent: outcome.error }));
  } else {
    const list = document.createElement("ul");
    for (const { label, score } of outcome.top) {
      const row = document.createElement("li");
      const bar = Object.assign(document.createElement("span"), { className: "bar" });
      bar.style.width = `${(100 * score).toFixed(1)}%`;
      row.append(Object.assign(document.createElement("span"), { className: "label", textContent: label }),
        Object.assign(document.createElement("span"), { className: "score", textContent: score.toFixed(3) }), bar);
      list.append(row);
    }
    body.append(list, Object.assign(document.createElement("p"), {
      className: "ms", textContent: `${outcome.ms.toFixed(1)} ms`,
    }));
  }
  item.append(body);
  $("cards").prepend(item);
}

// Classify one image (a Blob, or an ImageBitmap from the camera); show and return the outcome.
async function handle(name, source) {
  let bitmap = null;
  try {
    bitmap = source instanceof ImageBitmap ? source : await decode(source, name);
    const outcome = await classify(bitmap);
    card(name, bitmap, outcome);
    return { image: name, label: outcome.top[0]?.label ?? null, score: outcome.top[0]?.score ?? null,
             ms: outcome.ms };
  } catch (err) {
    card(name, bitmap, { error: err.message });
    return { image: name, error: err.message };
  } finally {
    bitmap?.close();
  }
}

async function classifyPath(path) {
  let error;
  try {
    const response = await fetch(path);
    if (response.ok) return handle(path, await response.blob());
    error = `${path}: HTTP ${response.status}`;
  } catch (err) {
    error = `${path}: ${err.message}`;
  }
  card(path, null, { error });
  return { image: path, error };
}

function wireInputs() {
  $("files").addEventListener("change", async (event) => {
    for (const file of event.target.files) await handle(file.name, file);
    event.target.value = "";
  });
  const drop = $("drop");
  for (const type of ["dragenter", "dragover"]) {
    drop.addEventListener(type, (event) => { event.preventDefault(); drop.classList.add("over"); });
  }
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", async (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    for (const file of event.dataTransfer.files) await handle(file.name, file);
  });
  if (!navigator.mediaDevices?.getUserMedia) {
    $("camera").hidden = true;  // no camera API here (or not a secure context)
    return;
  }
  $("camera-start").addEventListener("click", async () => {
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ video: true });
      $("camera-view").srcObject = stream;
      $("camera-view").hidden = $("camera-shot").hidden = false;
      $("camera-start").hidden = true;
    } catch (err) {
      card("camera", null, { error: `the camera is not available (${err.message})` });
    }
  });
  $("camera-shot").addEventListener("click", async () => {
    const frame = await createImageBitmap($("camera-view"));
    await handle(`camera ${new Date().toLocaleTimeString()}`, frame);
  });
}

async function main() {
  const requested = new URLSearchParams(location.search).get("images");
  let failure = null;
  wireInputs();
  try {
    config = await loadConfig();
    showModel();
    status("Loading the model…");
    classifier = await loadClassifier();
    status("Ready: pick or drop images, click an example, or use the camera.", "ready");
  } catch (err) {
    failure = err.message;
    notReady = failure;
    status(failure, "error");
  }
  if (requested !== null) {
    let results = { error: failure };
    if (!failure) {
      results = [];
      for (const path of requested.split(",").map((p) => p.trim()).filter(Boolean)) {
        results.push(await classifyPath(path));
      }
    }
    $("results").textContent = JSON.stringify(results);
    $("json").hidden = false;
  }
}

main();
