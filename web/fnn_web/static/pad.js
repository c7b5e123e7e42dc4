// The pad: a drawing canvas for digit models, a photo box (upload, camera, drop, paste) for photo models;
// live prediction (at most one request in flight and ~10 a second), probability bars, what the network
// sees (in colour for RGB models), the model panel (architecture, confusion matrix), test images by
// class, the last 10 predictions and the compare view. No dependencies.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const canvas = $("canvas");
  const ctx = canvas.getContext("2d");
  const INK = "#111";
  const MIN_INTERVAL_MS = 100; // live prediction: at most ~10 requests a second
  const MAX_SIDE = 1024; // the server's limit on an image's width and height
  const MAX_URL = 1000000; // a data URL this long still fits the server's 1 MB body limit
  const HISTORY = 10;

  const state = {
    models: [], // from GET /api/models
    titles: {}, // kind -> title
    model: null, // selected model's name
    compare: false,
    source: { kind: "canvas", id: 0 }, // or {kind: "upload", image, id} or {kind: "sample", index, dataset, image, trueClass, id}
    nextId: 1,
    empty: true,
    drawing: false,
    last: null, // last pointer position
    dirty: false, // the input changed since the last request
    inFlight: false,
    sentAt: -Infinity,
    timer: null,
    details: {}, // model name -> GET /api/models/NAME
    history: [], // newest first: {key, preview, label, confidence, model, trueClass}
  };

  const currentModel = () => state.models.find((m) => m.name === state.model) || { classes: [], name: "", kind: "digits" };
  const photoMode = () => currentModel().kind !== "digits";
  const newSource = (source) => {
    state.source = { ...source, id: state.nextId++ };
    return state.source;
  };

  // ------------------------------------------------------------ drawing

  function point(e) {
    const r = canvas.getBoundingClientRect();
    return [((e.clientX - r.left) * canvas.width) / r.width, ((e.clientY - r.top) * canvas.height) / r.height];
  }

  function stroke(from, to) {
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.strokeStyle = INK;
    ctx.lineWidth = Number($("stroke").value);
    ctx.beginPath();
    ctx.moveTo(from[0], from[1]);
    ctx.lineTo(to[0], to[1]);
    ctx.stroke();
  }

  function dot(p) {
    ctx.fillStyle = INK;
    ctx.beginPath();
    ctx.arc(p[0], p[1], Number($("stroke").value) / 2, 0, 2 * Math.PI);
    ctx.fill();
  }

  canvas.addEventListener("pointerdown", (e) => {
    if (e.button !== 0 || photoMode()) return;
    e.preventDefault();
    canvas.setPointerCapture(e.pointerId);
    if (state.source.kind !== "canvas") startDrawingOver();
    else if (state.empty) newSource({ kind: "canvas" });
    state.drawing = true;
    state.empty = false;
    state.last = point(e);
    dot(state.last); // a tap leaves a dot
    schedule();
  });

  canvas.addEventListener("pointermove", (e) => {
    if (!state.drawing) return;
    const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [];
    for (const ev of events.length ? events : [e]) {
      const p = point(ev);
      stroke(state.last, p);
      state.last = p;
    }
    schedule();
  });

  const endStroke = () => {
    if (!state.drawing) return;
    state.drawing = false;
    schedule();
  };
  canvas.addEventListener("pointerup", endStroke);
  canvas.addEventListener("pointercancel", endStroke);

  // Drawing over a sample or an upload: what is on the canvas becomes the input.
  function startDrawingOver() {
    newSource({ kind: "canvas" });
    $("sample-info").hidden = true;
  }

  function clearPad() {
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    clearTimeout(state.timer);
    state.timer = null;
    state.dirty = false;
    state.empty = true;
    newSource({ kind: "canvas" });
    $("upload").value = "";
    $("camera").value = "";
    $("sample-info").hidden = true;
    canvas.classList.remove("has-photo");
    showAnswer(null);
    setStatus("");
  }

  $("clear").addEventListener("click", () => {
    clearPad();
    canvas.focus();
  });
  document.addEventListener("keydown", (e) => {
    const typing = e.target.closest("input, select, textarea");
    if (e.key === "Escape" || (!typing && (e.key === "Delete" || e.key === "Backspace"))) {
      e.preventDefault();
      clearPad();
    }
  });

  $("stroke").addEventListener("input", () => {
    $("stroke-value").value = `${$("stroke").value} px`;
  });

  // ------------------------------------------------------------ requests

  // Throttle: one request in flight; the next waits until MIN_INTERVAL_MS after the last.
  function schedule() {
    state.dirty = true;
    if (state.inFlight || state.timer) return;
    const wait = Math.max(0, state.sentAt + MIN_INTERVAL_MS - performance.now());
    state.timer = setTimeout(send, wait);
  }

  async function send() {
    state.timer = null;
    if (!state.dirty) return;
    state.dirty = false;
    state.inFlight = true;
    state.sentAt = performance.now();
    const source = state.source;
    const model = state.model;
    try {
      let answer;
      if (source.kind === "sample" && currentModel().dataset === source.dataset) {
        answer = await getJSON(`/api/sample?index=${source.index}&${modelQuery()}`);
      } else if (source.kind === "canvas" && state.empty) {
        answer = null;
      } else {
        const image = source.kind === "canvas" ? canvas.toDataURL("image/png") : source.image;
        answer = await postJSON("/api/predict", { image, model, compare: state.compare });
      }
      if (source === state.source && model === state.model) {
        showAnswer(answer);
        setStatus("");
        if (answer && !state.drawing && !state.dirty) remember(answer, source);
      }
    } catch (err) {
      setStatus(err.message, true);
    } finally {
      state.inFlight = false;
      if (state.dirty) schedule();
    }
  }

  function modelQuery() {
    return `model=${encodeURIComponent(state.model)}${state.compare ? "&compare=1" : ""}`;
  }

  async function readJSON(response) {
    let body = null;
    try {
      body = await response.json();
    } catch (_) {
      // not JSON: fall through to the status text
    }
    if (!response.ok) {
      throw new Error(body && body.message ? body.message : `${response.status} ${response.statusText}`);
    }
    return body;
  }

  async function getJSON(url) {
    return readJSON(await fetch(url, { headers: { Accept: "application/json" } }));
  }

  async function postJSON(url, body) {
    const response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
    });
    return readJSON(response);
  }

  // ------------------------------------------------------------ showing answers

  function setStatus(text, isError = false) {
    $("status").textContent = text;
    $("status").classList.toggle("error", isError);
  }

  function pct(p) {
    return `${(100 * p).toFixed(1)}%`;
  }

  function ask() {
    return photoMode() ? "upload a photo" : "draw a digit";
  }

  function showAnswer(a) {
    const label = $("label");
    const classes = currentModel().classes;
    if (!a || a.blank) {
      label.textContent = "?";
      label.classList.add("idle");
      label.classList.remove("word");
      const idle = ask();
      $("confidence").textContent = a ? `${a.reason[0].toUpperCase()}${a.reason.slice(1)}: ${idle}` : idle[0].toUpperCase() + idle.slice(1);
    } else {
      label.textContent = a.class;
      label.classList.remove("idle");
      label.classList.toggle("word", a.class.length > 2);
      $("confidence").textContent = `${pct(a.confidence)} confident${a.confidence < 0.5 ? " (unsure)" : ""}`;
    }
    showBars(classes, a && !a.blank ? a.probabilities : null);
    showPreview($("preview"), a ? a.preview : null, currentModel().view);
    showCompare(a);
    if (a && a.true_label !== undefined) {
      const ok = a.label === a.true_label;
      $("sample-info").textContent =
        `Test image #${a.index} (${a.dataset}): true ${a.true_class}, predicted ${a.class} ${ok ? "✓" : "✗"}`;
      $("sample-info").classList.toggle("wrong", !ok);
      $("sample-info").hidden = false;
    }
  }

  function buildBars(classes) {
    const bars = $("bars");
    bars.replaceChildren();
    bars.style.setProperty("--name-width", `${Math.max(1, ...classes.map((c) => c.length)) * 0.62}em`);
    for (const c of classes) {
      const li = document.createElement("li");
      const name = document.createElement("span");
      name.className = "class";
      name.textContent = c;
      const track = document.createElement("span");
      track.className = "track";
      const fill = document.createElement("span");
      fill.className = "fill";
      track.append(fill);
      const value = document.createElement("span");
      value.className = "value";
      value.textContent = "–";
      li.append(name, track, value);
      bars.append(li);
    }
  }

  function showBars(classes, probs) {
    const rows = $("bars").children;
    if (rows.length !== classes.length || Array.from(rows).some((r, i) => r.firstChild.textContent !== classes[i])) {
      buildBars(classes);
    }
    const top = probs ? probs.indexOf(Math.max(...probs)) : -1;
    classes.forEach((c, i) => {
      const p = probs ? probs[i] : 0;
      const row = rows[i];
      row.querySelector(".fill").style.width = pct(p);
      row.querySelector(".value").textContent = probs ? pct(p) : "–";
      row.classList.toggle("top", i === top);
      row.setAttribute("aria-label", `${c}: ${probs ? pct(p) : "no answer"}`);
    });
  }

  // An image as the API sends it (rows of values, or rows of [r, g, b]) drawn 1:1 on a canvas of its size.
  function showPreview(target, rows, shape) {
    const [h, w] = shape || [28, 28];
    if (target.width !== w || target.height !== h) {
      target.width = w;
      target.height = h;
    }
    const g = target.getContext("2d");
    const img = g.createImageData(w, h);
    for (let r = 0; r < h; r++) {
      for (let c = 0; c < w; c++) {
        const v = rows ? rows[r][c] : 0;
        const rgb = Array.isArray(v) ? v.map((u) => Math.round(255 * u)) : [0, 0, 0].map(() => Math.round(255 * v));
        img.data.set([...rgb, 255], 4 * (r * w + c));
      }
    }
    g.putImageData(img, 0, 0);
  }

  function showCompare(a) {
    const body = $("compare-body");
    body.replaceChildren();
    const m = currentModel();
    const group = state.models.filter((x) => x.group === m.group);
    const rows = a && a.compare ? a.compare : group.map((x) => ({ model: x.name, test_accuracy: x.test_accuracy }));
    for (const r of rows) {
      const tr = document.createElement("tr");
      if (r.model === state.model) tr.className = "selected";
      const name = document.createElement("th");
      name.scope = "row";
      const accuracy = document.createElement("span");
      accuracy.className = "accuracy";
      accuracy.textContent = r.test_accuracy == null ? "test accuracy unknown" : `${pct(r.test_accuracy)} on test`;
      name.append(r.model, accuracy);
      const cells = [r.class == null ? "–" : r.class, r.confidence == null ? "–" : pct(r.confidence)].map((t) => {
        const td = document.createElement("td");
        td.textContent = t;
        return td;
      });
      tr.append(name, ...cells);
      body.append(tr);
    }
    const others = state.models.filter((x) => x.group !== m.group);
    $("compare-others").hidden = others.length === 0;
    $("compare-others-list").replaceChildren(
      ...others.map((x) => {
        const li = document.createElement("li");
        li.textContent = `${x.name}: ${x.title}`;
        return li;
      }),
    );
  }

  // ------------------------------------------------------------ the last 10 predictions

  function remember(a, source) {
    if (a.blank) return;
    const key = `${source.id}/${a.model}`;
    const entry = {
      key,
      preview: a.preview,
      view: currentModel().view,
      label: a.class,
      confidence: a.confidence,
      model: a.model,
      truth: a.true_class !== undefined ? a.true_class : source.trueClass,
    };
    state.history = [entry, ...state.history.filter((e) => e.key !== key)].slice(0, HISTORY);
    showHistory();
  }

  function showHistory() {
    $("history-empty").hidden = state.history.length > 0;
    $("history").replaceChildren(
      ...state.history.map((e) => {
        const li = document.createElement("li");
        const thumb = document.createElement("canvas");
        thumb.className = "thumb";
        thumb.setAttribute("role", "img");
        thumb.setAttribute("aria-label", `What ${e.model} saw`);
        showPreview(thumb, e.preview, e.view);
        const text = document.createElement("div");
        const what = document.createElement("strong");
        what.textContent = e.label;
        const how = document.createElement("span");
        how.className = "muted";
        how.textContent = `${pct(e.confidence)} · ${e.model}`;
        text.append(what, how);
        if (e.truth !== undefined) {
          const ok = e.truth === e.label;
          const truth = document.createElement("span");
          truth.className = ok ? "good" : "bad";
          truth.textContent = `true ${e.truth} ${ok ? "✓" : "✗"}`;
          text.append(truth);
        }
        li.append(thumb, text);
        return li;
      }),
    );
  }

  // ------------------------------------------------------------ the model panel

  function showModel() {
    const m = currentModel();
    const facts = [
      ["Dataset", m.dataset || "unknown"],
      ["Input", m.title],
      ["Test accuracy", m.test_accuracy == null ? "unknown" : pct(m.test_accuracy)],
      ["Trained", m.trained ? m.trained.replace("T", " ") : "unknown"],
      ["Parameters", m.summary ? m.summary.total.toLocaleString("en") : "?"],
    ];
    $("model-facts").replaceChildren(
      ...facts.flatMap(([k, v]) => {
        const dt = document.createElement("dt");
        dt.textContent = k;
        const dd = document.createElement("dd");
        dd.textContent = v;
        return [dt, dd];
      }),
    );
    const body = $("arch").tBodies[0];
    body.replaceChildren(
      ...(m.summary ? m.summary.layers : []).map((l) => {
        const tr = document.createElement("tr");
        for (const v of [l.name, l.type, l.output_shape, l.params.toLocaleString("en")]) {
          const td = document.createElement("td");
          td.textContent = v;
          tr.append(td);
        }
        return tr;
      }),
    );
    $("arch-total").textContent = m.summary ? m.summary.total.toLocaleString("en") : "";
    showConfusion(null, "Confusion matrix: loading…");
    const name = m.name;
    if (!state.details[name]) state.details[name] = getJSON(`/api/models/${encodeURIComponent(name)}`);
    state.details[name].then(
      (d) => name === state.model && showConfusion(d.confusion),
      (err) => name === state.model && showConfusion(null, `Confusion matrix: ${err.message}`),
    );
  }

  let confusion = null; // what the canvas shows, for hover
  function showConfusion(c, text) {
    const cv = $("confusion");
    const g = cv.getContext("2d");
    g.clearRect(0, 0, cv.width, cv.height);
    confusion = c && c.matrix ? c : null;
    if (!confusion) {
      $("confusion-caption").textContent = text || `Confusion matrix: ${c && c.reason ? c.reason : "not available"}`;
      cv.setAttribute("aria-label", "No confusion matrix");
      return;
    }
    const k = c.matrix.length;
    const cell = cv.width / k;
    c.matrix.forEach((row, i) => {
      const total = row.reduce((s, v) => s + v, 0) || 1;
      row.forEach((v, j) => {
        const share = v / total;
        if (i === j) g.fillStyle = `rgba(31, 95, 191, ${0.12 + 0.88 * share})`;
        else g.fillStyle = share > 0 ? `rgba(179, 38, 30, ${Math.min(1, 0.08 + 3 * share)})` : "#f4f5f7";
        g.fillRect(j * cell, i * cell, cell - 1, cell - 1);
      });
    });
    const caption = `Test confusion matrix (rows: true class, columns: predicted; hover for counts): ${pct(c.accuracy)} right of ${c.n.toLocaleString("en")} images, from ${c.source}`;
    $("confusion-caption").textContent = caption;
    cv.setAttribute("aria-label", caption);
  }

  $("confusion").addEventListener("mousemove", (e) => {
    if (!confusion) return;
    const r = e.target.getBoundingClientRect();
    const k = confusion.matrix.length;
    const i = Math.min(k - 1, Math.floor(((e.clientY - r.top) / r.height) * k));
    const j = Math.min(k - 1, Math.floor(((e.clientX - r.left) / r.width) * k));
    const classes = currentModel().classes;
    const row = confusion.matrix[i];
    const total = row.reduce((s, v) => s + v, 0) || 1;
    e.target.title = `true ${classes[i]}, predicted ${classes[j]}: ${row[j]} (${pct(row[j] / total)} of ${classes[i]})`;
  });

  // ------------------------------------------------------------ models, modes, compare

  async function loadModels() {
    try {
      const data = await getJSON("/api/models");
      state.models = data.models;
      state.titles = Object.fromEntries(data.kinds.map((k) => [k.kind, k.title]));
      state.model = data.default;
      const select = $("model");
      select.replaceChildren();
      for (const { kind, title } of data.kinds) {
        const ofKind = data.models.filter((m) => m.kind === kind);
        if (!ofKind.length) continue;
        const group = document.createElement("optgroup");
        group.label = title;
        for (const m of ofKind) {
          const acc = m.test_accuracy == null ? "test accuracy unknown" : `${pct(m.test_accuracy)} test accuracy`;
          group.append(new Option(`${m.name} (${acc})`, m.name, false, m.name === data.default));
        }
        select.append(group);
      }
      select.value = data.default;
      applyMode();
      showAnswer(null);
    } catch (err) {
      setStatus(`Cannot load the models: ${err.message}`, true);
    }
  }

  const INTRO = {
    digits: "Draw a digit: the network answers as you draw.",
    fashion: "Upload or take a photo of a piece of clothing, or pick a test image: the network names it.",
    rgb32: "Upload or take a photo, or pick a test image: the network names what it shows, from a 32×32 colour copy.",
    none: "Upload an image: the network reads it as it is, resized to its input.",
  };

  // The page follows the selected model: drawing for digits, a photo box for the rest; its classes, its panel.
  function applyMode() {
    const m = currentModel();
    const photo = photoMode();
    document.body.dataset.mode = photo ? "photo" : "draw";
    $("intro").textContent = INTRO[m.kind] || INTRO.none;
    $("input-title").textContent = photo ? "Photo" : "Draw";
    canvas.setAttribute(
      "aria-label",
      photo
        ? "The image the network reads. Upload, take, drop or paste a photo; press Escape or Delete to clear."
        : "Drawing area. Draw a digit with a mouse, finger or pen; press Escape or Delete to clear.",
    );
    const [h, w, c] = m.view || [28, 28];
    const colour = c === 3 ? " colour" : m.kind === "rgb32" ? " gray" : "";
    $("preview-caption").textContent = `What the network sees: the ${h}×${w}${colour} input after preprocessing`;
    $("preview").setAttribute("aria-label", `The ${h} by ${w}${colour} input the network sees`);
    $("preview").classList.toggle("large", h * w <= 1024);
    buildBars(m.classes);
    const classes = $("classes");
    classes.classList.toggle("short", m.classes.every((c) => c.length <= 2));
    classes.replaceChildren(
      ...m.classes.map((name, i) => {
        const b = document.createElement("button");
        b.type = "button";
        b.className = "class-button";
        b.dataset.class = String(i);
        b.textContent = name;
        b.setAttribute("aria-label", `Test image of class ${name}`);
        b.addEventListener("click", () => loadSample(i));
        return b;
      }),
    );
    showModel();
  }

  $("model").addEventListener("change", () => {
    const before = currentModel();
    state.model = $("model").value;
    const now = currentModel();
    applyMode();
    if (before.group !== now.group) {
      clearPad(); // another kind of input: what was drawn or given means nothing to this model
    } else {
      showAnswer(null);
      schedule();
    }
  });

  $("compare-toggle").addEventListener("click", () => {
    state.compare = !state.compare;
    $("compare-toggle").setAttribute("aria-pressed", String(state.compare));
    $("compare").hidden = !state.compare;
    schedule();
  });

  // ------------------------------------------------------------ test images and uploads

  // A digit test image is drawn on the canvas as dark ink on transparency, like a drawing; a photo as it is.
  function drawSample(rows) {
    const small = document.createElement("canvas");
    small.width = small.height = 28;
    const sctx = small.getContext("2d");
    const img = sctx.createImageData(28, 28);
    for (let i = 0; i < 28 * 28; i++) {
      img.data.set([17, 17, 17, Math.round(255 * rows[Math.floor(i / 28)][i % 28])], 4 * i);
    }
    sctx.putImageData(img, 0, 0);
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(small, 0, 0, canvas.width, canvas.height);
  }

  function drawPhoto(img) {
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    const f = Math.min(canvas.width / img.naturalWidth, canvas.height / img.naturalHeight);
    const w = img.naturalWidth * f;
    const h = img.naturalHeight * f;
    ctx.imageSmoothingEnabled = Math.max(img.naturalWidth, img.naturalHeight) > 64; // small test images stay crisp
    ctx.drawImage(img, (canvas.width - w) / 2, (canvas.height - h) / 2, w, h);
    ctx.imageSmoothingEnabled = true;
    canvas.classList.toggle("has-photo", photoMode());
  }

  const loadImage = (url) =>
    new Promise((resolve, reject) => {
      const img = new Image();
      img.onload = () => resolve(img);
      img.onerror = () => reject(new Error("That file is not an image this browser can read"));
      img.src = url;
    });

  const readFile = (file) =>
    new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.onerror = () => reject(new Error("Cannot read that file"));
      reader.readAsDataURL(file);
    });

  // The server takes PNG or JPEG up to 1024×1024 in a 1 MB body: a phone photo (or a WebP, GIF, ...) is
  // redrawn here, at most 1024 px on its longer side, as JPEG on white (PNG when it is small enough).
  async function prepareImage(file) {
    const url = await readFile(file);
    const img = await loadImage(url);
    const w = img.naturalWidth;
    const h = img.naturalHeight;
    if (/^data:image\/(png|jpeg);/.test(url) && Math.max(w, h) <= MAX_SIDE && url.length <= MAX_URL) return { url, img };
    let f = Math.min(1, MAX_SIDE / Math.max(w, h));
    for (let tries = 0; tries < 8; tries++, f *= 0.75) {
      const c = document.createElement("canvas");
      c.width = Math.max(1, Math.round(w * f));
      c.height = Math.max(1, Math.round(h * f));
      const g = c.getContext("2d");
      g.drawImage(img, 0, 0, c.width, c.height);
      let out = c.toDataURL("image/png");
      if (out.length > MAX_URL) {
        g.globalCompositeOperation = "destination-over";
        g.fillStyle = "#fff";
        g.fillRect(0, 0, c.width, c.height);
        out = c.toDataURL("image/jpeg", 0.9);
      }
      if (out.length <= MAX_URL) return { url: out, img: await loadImage(out) };
    }
    throw new Error("That image is too large to send");
  }

  async function useFile(file) {
    if (!file) return;
    try {
      const { url, img } = await prepareImage(file);
      drawPhoto(img);
      $("sample-info").hidden = true;
      state.empty = false;
      newSource({ kind: "upload", image: url });
      schedule();
    } catch (err) {
      setStatus(err.message, true);
    }
  }

  for (const id of ["upload", "camera"]) $(id).addEventListener("change", () => useFile($(id).files[0]));
  canvas.addEventListener("dragover", (e) => {
    e.preventDefault();
    canvas.classList.add("drop");
  });
  canvas.addEventListener("dragleave", () => canvas.classList.remove("drop"));
  canvas.addEventListener("drop", (e) => {
    e.preventDefault();
    canvas.classList.remove("drop");
    useFile(e.dataTransfer.files[0]);
  });
  document.addEventListener("paste", (e) => {
    const item = Array.from(e.clipboardData ? e.clipboardData.items : []).find((i) => i.type.startsWith("image/"));
    if (item) useFile(item.getAsFile());
  });

  async function loadSample(label) {
    try {
      const query = label === undefined ? "" : `class=${label}&`;
      const a = await getJSON(`/api/sample?${query}${modelQuery()}`);
      if (a.model !== state.model) return;
      clearPad();
      if (photoMode()) drawPhoto(await loadImage(a.image));
      else drawSample(a.preview);
      state.empty = false;
      const source = newSource({ kind: "sample", index: a.index, dataset: a.dataset, image: a.image, trueClass: a.true_class });
      showAnswer(a);
      remember(a, source);
    } catch (err) {
      setStatus(`No test image: ${err.message}`, true);
    }
  }

  $("sample").addEventListener("click", () => loadSample());

  loadModels();
})();
