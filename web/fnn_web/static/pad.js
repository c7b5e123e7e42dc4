// The drawing pad: pointer drawing on a transparent canvas, live prediction (at most
// one request in flight and ~10 a second), probability bars, the 28x28 preview,
// model selector, compare view, random test images and uploads. No dependencies.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const canvas = $("canvas");
  const ctx = canvas.getContext("2d");
  const preview = $("preview").getContext("2d");
  const INK = "#111";
  const MIN_INTERVAL_MS = 100; // live prediction: at most ~10 requests a second

  const state = {
    models: [], // from GET /api/models
    model: null, // selected model's name
    compare: false,
    source: { kind: "canvas" }, // or {kind: "upload", image} or {kind: "sample", index}
    empty: true,
    drawing: false,
    last: null, // last pointer position
    dirty: false, // the drawing changed since the last request
    inFlight: false,
    sentAt: -Infinity,
    timer: null,
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
    if (e.button !== 0) return;
    e.preventDefault();
    canvas.setPointerCapture(e.pointerId);
    if (state.source.kind !== "canvas") startDrawingOver();
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
    state.source = { kind: "canvas" };
    $("sample-info").hidden = true;
  }

  function clearPad() {
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    clearTimeout(state.timer);
    state.timer = null;
    state.dirty = false;
    state.empty = true;
    state.source = { kind: "canvas" };
    $("upload").value = "";
    $("sample-info").hidden = true;
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
    try {
      let answer;
      if (source.kind === "sample") {
        answer = await getJSON(`/api/sample?index=${source.index}&${modelQuery()}`);
      } else if (source.kind === "canvas" && state.empty) {
        answer = null;
      } else {
        const image = source.kind === "upload" ? source.image : canvas.toDataURL("image/png");
        answer = await postJSON("/api/predict", { image, model: state.model, compare: state.compare });
      }
      if (source === state.source) {
        showAnswer(answer);
        setStatus("");
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

  function currentModel() {
    return state.models.find((m) => m.name === state.model) || { classes: [], name: "" };
  }

  function pct(p) {
    return `${(100 * p).toFixed(1)}%`;
  }

  function showAnswer(a) {
    const label = $("label");
    const classes = currentModel().classes;
    if (!a || a.blank) {
      label.textContent = "?";
      label.classList.add("idle");
      $("confidence").textContent = a ? `${a.reason[0].toUpperCase()}${a.reason.slice(1)}: draw a digit` : "Draw a digit";
    } else {
      label.textContent = a.class;
      label.classList.remove("idle");
      $("confidence").textContent = `${pct(a.confidence)} confident${a.confidence < 0.5 ? " (unsure)" : ""}`;
    }
    showBars(classes, a && !a.blank ? a.probabilities : null);
    showPreview(a ? a.preview : null);
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
    if (rows.length !== classes.length) buildBars(classes);
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

  const previewImage = preview.createImageData(28, 28);
  function showPreview(rows) {
    const px = previewImage.data;
    for (let i = 0; i < 28 * 28; i++) {
      const v = rows ? Math.round(255 * rows[Math.floor(i / 28)][i % 28]) : 0;
      px.set([v, v, v, 255], 4 * i);
    }
    preview.putImageData(previewImage, 0, 0);
  }

  function showCompare(a) {
    const body = $("compare-body");
    body.replaceChildren();
    const rows = a && a.compare ? a.compare : state.models.map((m) => ({ model: m.name, test_accuracy: m.test_accuracy }));
    for (const r of rows) {
      const tr = document.createElement("tr");
      if (r.model === state.model) tr.className = "selected";
      const name = document.createElement("th");
      name.scope = "row";
      const accuracy = document.createElement("span");
      accuracy.className = "accuracy";
      accuracy.textContent = r.test_accuracy == null ? "test accuracy unknown" : `${pct(r.test_accuracy)} on test`;
      name.append(r.model, accuracy);
      const cells = [
        r.class == null ? "–" : r.class,
        r.confidence == null ? "–" : pct(r.confidence),
      ].map((t) => {
        const td = document.createElement("td");
        td.textContent = t;
        return td;
      });
      tr.append(name, ...cells);
      body.append(tr);
    }
  }

  // ------------------------------------------------------------ models, compare, samples, uploads

  async function loadModels() {
    try {
      const data = await getJSON("/api/models");
      state.models = data.models;
      state.model = data.default;
      const select = $("model");
      select.replaceChildren();
      for (const m of data.models) {
        const acc = m.test_accuracy == null ? "test accuracy unknown" : `${pct(m.test_accuracy)} test accuracy`;
        select.append(new Option(`${m.name} (${acc})`, m.name, false, m.name === data.default));
      }
      showAnswer(null);
    } catch (err) {
      setStatus(`Cannot load the models: ${err.message}`, true);
    }
  }

  $("model").addEventListener("change", () => {
    state.model = $("model").value;
    buildBars(currentModel().classes);
    schedule();
  });

  $("compare-toggle").addEventListener("click", () => {
    state.compare = !state.compare;
    $("compare-toggle").setAttribute("aria-pressed", String(state.compare));
    $("compare").hidden = !state.compare;
    schedule();
  });

  // A test image is drawn on the canvas as dark ink on transparency, like a drawing.
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

  $("sample").addEventListener("click", async () => {
    try {
      const a = await getJSON(`/api/sample?${modelQuery()}`);
      clearPad();
      drawSample(a.preview);
      state.empty = false;
      state.source = { kind: "sample", index: a.index };
      showAnswer(a);
    } catch (err) {
      setStatus(`No test image: ${err.message}`, true);
    }
  });

  $("upload").addEventListener("change", () => {
    const file = $("upload").files[0];
    if (!file) return;
    const reader = new FileReader();
    reader.onload = () => {
      const image = reader.result;
      const img = new Image();
      img.onload = () => {
        ctx.clearRect(0, 0, canvas.width, canvas.height);
        const f = Math.min(canvas.width / img.width, canvas.height / img.height);
        const w = img.width * f;
        const h = img.height * f;
        ctx.drawImage(img, (canvas.width - w) / 2, (canvas.height - h) / 2, w, h);
      };
      img.src = image;
      $("sample-info").hidden = true;
      state.empty = false;
      state.source = { kind: "upload", image };
      schedule();
    };
    reader.onerror = () => setStatus("Cannot read that file", true);
    reader.readAsDataURL(file);
  });

  loadModels();
})();
