// The page: record or choose a clip, send it to /predict, and show the answer, the clip's
// histogram, the network at work, and a report on the loaded model (GET /model).

import { drawHistogram, drawNetwork, speakerClass } from "./drawings.js";
import { formatHz, formatPercent } from "./format.js";
import { Recording, canRecord } from "./recorder.js";

const PREDICT_URL = "/predict?explain=true";
const MODEL_URL = "/model";
const KEY_STORAGE = "voiceid.apiKey";
const MAX_RECORDING_S = 20; // recording stops by itself after this, well under the server's limit
const MIN_RECORDING_S = 0.3; // shorter recordings are a slip of the finger, not a word
const SILENCE_DB = -60; // level-meter floor, dBFS
const NO_RECORDING =
  "Recording needs a secure page (https or localhost) and a browser with Web Audio; " +
  "choose a file instead.";

const $ = (id) => document.getElementById(id);

/** A new HTML element with a class and, optionally, text. */
function element(tag, className = "", text = "") {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text) node.textContent = text;
  return node;
}

const ui = {
  record: $("record"),
  recordLabel: document.querySelector("#record .record-label"),
  clip: $("clip"),
  meter: $("recording-meter"),
  levelFill: $("level-fill"),
  elapsed: $("elapsed"),
  status: $("status"),
  error: $("error"),
  keyForm: $("key-form"),
  apiKey: $("api-key"),
  knownVoices: $("known-voices"),
  verdict: $("verdict"),
  result: $("result"),
  confidence: $("confidence"),
  scores: $("scores"),
  answerMeta: $("answer-meta"),
  histogram: $("histogram"),
  histogramBox: $("histogram-box"),
  histogramEmpty: $("histogram-empty"),
  network: $("network"),
  networkBox: $("network-box"),
  labels: $("labels"),
  metrics: $("metrics"),
  modelFacts: $("model-facts"),
  training: $("training"),
  plotCurves: $("plot-curves"),
  plotConfusion: $("plot-confusion"),
};

const state = {
  model: null, // the GET /model answer
  answer: null, // the latest /predict answer
  recording: null, // the Recording in progress
  recordingTimer: null,
  busy: false, // a clip is on its way to the server
  pending: null, // {blob, filename} waiting for an API key
};

// ---- talking to the server -------------------------------------------------------------

class HttpError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

/** The `detail` of an error response as one line of text. */
async function errorDetail(response) {
  try {
    const { detail } = await response.json();
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail))
      return detail.map((item) => item.msg || JSON.stringify(item)).join("; ");
  } catch {
    // not JSON: fall through to the status line
  }
  return `the server answered ${response.status} ${response.statusText}`.trim();
}

async function requestJson(url, options = {}) {
  let response;
  try {
    response = await fetch(url, options);
  } catch (error) {
    throw new HttpError(0, `could not reach the server (${error.message})`);
  }
  if (!response.ok) throw new HttpError(response.status, await errorDetail(response));
  return response.json();
}

function storedKey() {
  return sessionStorage.getItem(KEY_STORAGE) || "";
}

/** The API key header, when the page has a key. */
function keyHeaders() {
  const key = storedKey();
  return key ? { "X-API-Key": key } : {};
}

/** Sends a clip to /predict as multipart field `file`, with the API key when there is one. */
function predict(blob, filename) {
  const body = new FormData();
  body.append("file", blob, filename);
  return requestJson(PREDICT_URL, { method: "POST", body, headers: keyHeaders() });
}

// ---- messages ------------------------------------------------------------------------------

function say(text) {
  ui.status.textContent = text;
}

function showError(text) {
  ui.error.textContent = text;
}

function clearMessages() {
  say("");
  showError("");
}

// ---- sending a clip --------------------------------------------------------------------------

function setBusy(busy) {
  state.busy = busy;
  // aria-disabled rather than disabled, so keyboard focus stays where it is.
  ui.record.setAttribute("aria-disabled", String(busy || !canRecord()));
  ui.clip.setAttribute("aria-disabled", String(busy));
}

async function identify(blob, filename) {
  state.pending = { blob, filename };
  clearMessages();
  setBusy(true);
  say(`Sending ${filename}…`);
  try {
    const answer = await predict(blob, filename);
    state.pending = null;
    if (!ui.keyForm.hidden) {
      const hadFocus = ui.keyForm.contains(document.activeElement);
      ui.keyForm.hidden = true;
      if (hadFocus) ui.record.focus();
    }
    if (!state.model || state.model.version !== answer.model.version) await loadModel();
    showAnswer(answer);
  } catch (error) {
    say("");
    if (error.status === 401) {
      askForKey(error.message);
    } else {
      state.pending = null;
      showError(`Could not identify ${filename}: ${error.message}.`);
    }
  } finally {
    setBusy(false);
  }
}

function askForKey(detail, then = "send the clip again") {
  showError(
    `${detail.charAt(0).toUpperCase()}${detail.slice(1)}. ` +
      `Enter the API key below to ${then}.`,
  );
  ui.keyForm.hidden = false;
  ui.apiKey.value = storedKey();
  ui.apiKey.focus();
}

function submitKey(event) {
  event.preventDefault();
  const key = ui.apiKey.value.trim();
  if (!key) return;
  sessionStorage.setItem(KEY_STORAGE, key);
  if (state.pending) identify(state.pending.blob, state.pending.filename);
  else if (!state.model) loadModel();
}

function chooseFile() {
  const [file] = ui.clip.files;
  ui.clip.value = ""; // so that choosing the same file again sends it again
  if (file && !state.busy) identify(file, file.name);
}

// ---- recording -----------------------------------------------------------------------------

function setRecordingUi(recording) {
  ui.record.classList.toggle("recording", recording);
  ui.recordLabel.textContent = recording ? "Stop" : "Record";
  ui.meter.hidden = !recording;
  ui.levelFill.style.transform = "scaleX(0)";
  ui.elapsed.textContent = "0.0 s";
}

function showLevel(samples, startedAt) {
  let peak = 0;
  for (const sample of samples) peak = Math.max(peak, Math.abs(sample));
  const db = peak > 0 ? 20 * Math.log10(peak) : SILENCE_DB;
  const fraction = Math.min(Math.max(1 - db / SILENCE_DB, 0), 1);
  ui.levelFill.style.transform = `scaleX(${fraction.toFixed(3)})`;
  ui.elapsed.textContent = `${((performance.now() - startedAt) / 1000).toFixed(1)} s`;
}

async function startRecording() {
  clearMessages();
  const startedAt = performance.now();
  const recording = new Recording({ onChunk: (samples) => showLevel(samples, startedAt) });
  state.recording = recording;
  setRecordingUi(true);
  say("Starting the microphone…");
  try {
    await recording.start();
  } catch (error) {
    state.recording = null;
    setRecordingUi(false);
    say("");
    showError(microphoneProblem(error));
    return;
  }
  if (state.recording !== recording) return; // stopped while the microphone was starting
  say(`Recording. Say “Hello”, then press Stop (it stops by itself after ${MAX_RECORDING_S} s).`);
  state.recordingTimer = setTimeout(stopRecording, MAX_RECORDING_S * 1000);
}

async function stopRecording() {
  const recording = state.recording;
  if (!recording) return;
  state.recording = null;
  clearTimeout(state.recordingTimer);
  setRecordingUi(false);
  const { wav, seconds } = await recording.stop();
  if (seconds < MIN_RECORDING_S) {
    say("");
    showError(
      `The recording is only ${seconds.toFixed(1)} s long; ` +
        "press Record, say a word, then press Stop.",
    );
    return;
  }
  identify(wav, "recording.wav");
}

function microphoneProblem(error) {
  switch (error.name) {
    case "NotAllowedError":
    case "SecurityError":
      return "The browser did not allow the microphone. Allow it, or choose a file instead.";
    case "NotFoundError":
    case "OverconstrainedError":
      return "No microphone was found. Plug one in, or choose a file instead.";
    case "NotReadableError":
      return "The microphone is busy in another program. Close it there, or choose a file instead.";
    default:
      return `Could not start recording: ${error.message || error.name}.`;
  }
}

function toggleRecording() {
  if (state.recording) stopRecording();
  else if (!canRecord()) showError(NO_RECORDING);
  else if (!state.busy) startRecording();
}

// ---- the answer ----------------------------------------------------------------------------

function labelClass(label) {
  const index = state.model ? state.model.labels.indexOf(label) : -1;
  return index >= 0 ? speakerClass(index) : "";
}

function showAnswer(answer) {
  state.answer = answer;
  const closest = Object.entries(answer.scores).reduce((best, entry) =>
    entry[1] > best[1] ? entry : best,
  );
  const needed = formatPercent(answer.threshold);
  ui.verdict.dataset.state = answer.unknown ? "unknown" : "known";
  ui.verdict.className = `verdict ${answer.unknown ? "" : labelClass(answer.speaker)}`.trim();
  ui.result.textContent = answer.speaker;
  if (answer.unknown) {
    ui.confidence.textContent = unknownWhy(answer, closest, needed);
    say(`Unknown speaker. The closest voice is ${closest[0]}, at ${formatPercent(closest[1])}.`);
  } else {
    ui.confidence.textContent = `${formatPercent(answer.confidence)} sure (a voice is named from ${needed}).`;
    say(`${answer.speaker}, ${formatPercent(answer.confidence)} sure.`);
  }
  ui.answerMeta.textContent =
    `${answer.duration_s.toFixed(2)} s clip · answered in ${Math.round(answer.timing_ms)} ms · ` +
    `model ${answer.model.name} (${answer.model.version.slice(0, 8)})`;
  renderScores(answer);
  redraw();
}

/** Why a clip was answered "unknown": too far from every known voice, or unsure between two. */
function unknownWhy(answer, closest, needed) {
  if (answer.unknown_reason === "far")
    return (
      `Too far from every voice this model knows. The closest voice is ${closest[0]} at ` +
      `${formatPercent(closest[1])}, but the clip is unlike all of ${closest[0]}'s recordings.`
    );
  return (
    `Not sure enough to name anyone: it sounds between voices. The closest voice is ` +
    `${closest[0]} at ${formatPercent(closest[1])}, but this model names a voice only from ` +
    `${needed}.`
  );
}

function renderScores(answer) {
  const labels = state.model ? state.model.labels : Object.keys(answer ? answer.scores : {});
  ui.scores.replaceChildren(...labels.map((label) => scoreItem(label, answer)));
}

/** One voice's row: its name, a bar of its score with the threshold marked, the score. */
function scoreItem(label, answer) {
  const score = answer ? answer.scores[label] : null;
  const winner = answer && label === answer.speaker ? " winner" : "";
  const bar = element("span", "score-bar");
  bar.setAttribute("aria-hidden", "true");
  if (answer) {
    const fill = element("span", "score-fill");
    fill.style.width = `${100 * score}%`;
    const mark = element("span", "threshold-mark");
    mark.title = `threshold ${formatPercent(answer.threshold)}`;
    mark.style.left = `${100 * answer.threshold}%`;
    bar.append(fill, mark);
  }
  const item = element("li", `score ${labelClass(label)}${winner}`);
  item.append(
    element("span", "score-name", label),
    bar,
    element("span", "score-value", score === null ? "–" : formatPercent(score)),
  );
  return item;
}

// ---- drawings ------------------------------------------------------------------------------

function boxWidth(box) {
  return Math.max(Math.floor(box.clientWidth), 280);
}

function redraw() {
  const explain = state.answer && state.answer.explain;
  ui.histogram.toggleAttribute("hidden", !explain);
  ui.histogramEmpty.hidden = Boolean(explain);
  if (explain) drawHistogram(ui.histogram, boxWidth(ui.histogramBox), explain);
  if (state.model)
    drawNetwork(ui.network, boxWidth(ui.networkBox), state.model, explain ? state.answer : null);
}

// ---- the model report ----------------------------------------------------------------------

const METRICS = {
  train_accuracy: ["Training accuracy", "on the clips it learned from"],
  val_accuracy: ["Validation accuracy", "on clips held back from training"],
  val_false_reject_rate: ["Known voices called unknown", "on validation clips"],
  val_degraded_false_reject_rate: [
    "Known voices called unknown, degraded",
    "on a noisy, phone or codec copy of each validation clip",
  ],
  false_accept_rate: ["Strangers let in", "of the recordings of other speakers given"],
  open_set_auroc: ["Open-set AUROC", "how well the distance tells strangers from known voices"],
  n_train: ["Training clips", "used to learn the weights"],
  n_val: ["Validation clips", "used only to check"],
};

function humanise(key) {
  const text = key.replace(/_/g, " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function metricValue(key, value) {
  if (typeof value !== "number")
    return typeof value === "object" ? JSON.stringify(value) : String(value);
  if (/accuracy|rate|precision|recall/.test(key) && value >= 0 && value <= 1)
    return formatPercent(value);
  return Number.isInteger(value) ? String(value) : value.toPrecision(4);
}

/** Fills a <dl> with `[term, value, note]` rows. */
function fillList(list, rows) {
  list.replaceChildren(
    ...rows.map(([term, value, note]) => {
      const dd = element("dd", "", value);
      if (note) dd.append(element("small", "", note));
      const row = element("div");
      row.append(element("dt", "", term), dd);
      return row;
    }),
  );
}

function listInWords(items) {
  if (items.length <= 1) return items.join("");
  return `${items.slice(0, -1).join(", ")} and ${items[items.length - 1]}`;
}

function renderReport(model) {
  ui.knownVoices.textContent = listInWords(model.labels);
  ui.labels.replaceChildren(
    ...model.labels.map((label) => element("li", `chip ${labelClass(label)}`, label)),
  );
  fillList(
    ui.metrics,
    Object.entries(model.metrics).map(([key, value]) => {
      const [term, note] = METRICS[key] || [humanise(key), ""];
      return [term, metricValue(key, value), note];
    }),
  );
  const features = model.feature_config;
  const created = model.created ? new Date(model.created) : null;
  fillList(ui.modelFacts, [
    ["Name", `${model.name}, version ${model.version}`],
    ["Layers", `${model.architecture.join(" → ")} neurons (${model.output_activation} outputs)`],
    ["Threshold", `${formatPercent(model.threshold)}: a lower top score answers “unknown”`],
    [
      "Strangers",
      `a clip farther than ${model.open_set.threshold.toFixed(2)} from every recording of its ` +
        `closest voice answers “unknown” (${model.open_set.n_references} recordings compared)`,
    ],
    [
      "Histogram",
      `${features.n_bands} bands from ${formatHz(features.fmin)} to ${formatHz(features.fmax)}, ` +
        `at ${formatHz(features.sample_rate)} sampling`,
    ],
    ...(created ? [["Trained", created.toLocaleString()]] : []),
  ]);
  fillList(
    ui.training,
    Object.entries(model.training).map(([key, value]) => [humanise(key), metricValue(key, value)]),
  );
  for (const [image, url] of [
    [ui.plotCurves, model.plots.training_curves],
    [ui.plotConfusion, model.plots.confusion_matrix],
  ]) {
    showPicture(image, url);
  }
}

/** The bundle's picture at `url` in `image`, fetched with the key (an img cannot send it). */
async function showPicture(image, url) {
  let response;
  try {
    response = await fetch(url, { headers: keyHeaders() });
  } catch {
    return; // the report reads on without its picture
  }
  if (!response.ok) return;
  if (image.src.startsWith("blob:")) URL.revokeObjectURL(image.src);
  image.src = URL.createObjectURL(await response.blob());
  image.parentElement.href = image.src;
}

async function loadModel() {
  try {
    state.model = await requestJson(MODEL_URL, { headers: keyHeaders() });
  } catch (error) {
    if (error.status === 401) askForKey(error.message, "see the model");
    else showError(`Could not load the model: ${error.message}.`);
    return;
  }
  renderReport(state.model);
  renderScores(state.answer);
  redraw();
}

// ---- start -----------------------------------------------------------------------------------

function start() {
  ui.record.addEventListener("click", toggleRecording);
  ui.clip.addEventListener("change", chooseFile);
  ui.clip.addEventListener("click", (event) => {
    if (state.busy) event.preventDefault();
  });
  ui.keyForm.addEventListener("submit", submitKey);
  setBusy(false);
  let lastWidth = 0;
  new ResizeObserver(() => {
    const width = ui.networkBox.clientWidth;
    if (width !== lastWidth) {
      lastWidth = width;
      redraw();
    }
  }).observe(ui.networkBox);
  loadModel();
}

start();
