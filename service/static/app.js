// The page: record or choose a clip, send it to /predict, and show the answer, the clip's
// histogram, the network at work, and a report on the loaded model (GET /model). Listening live
// (live.js), teaching it a new voice (teach.js) and its versions (versions.js) have modules of
// their own.

import { KEY_STORAGE, keyHeaders, requestJson, storedKey } from "./api.js";
import { $, capitalise, element, messages } from "./dom.js";
import { drawHistogram, drawNetwork, speakerClass } from "./drawings.js";
import {
  UNKNOWN_IN_SHORT,
  formatHz,
  formatPercent,
  inWords,
  isolate,
  isolateRightToLeft,
  listInWords,
  qualityInWords,
} from "./format.js";
import { LiveListener } from "./live.js";
import { MicButton } from "./microphone.js";
import { canRecord } from "./recorder.js";
import { startTeaching } from "./teach.js";
import { startVersions } from "./versions.js";

const PREDICT_URL = "/predict?explain=true";
const MODEL_URL = "/model";
// What a key typed into the prompt is tried on before anything waiting for it is sent again:
// behind the key, light, and answered (if only 503) whether or not a model is loaded.
const KEY_CHECK_URL = MODEL_URL;

const ui = {
  record: $("record"),
  clip: $("clip"),
  meter: $("recording-meter"),
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
  quality: $("quality"),
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
  busy: false, // a clip is on its way to the server
  sent: 0, // clips sent: only the last one's answer (or failure) is shown
  waiting: [], // {then, retry}: what was refused for the API key, to do again once it is right
  onModelLoaded: [], // called with each newly loaded model
};

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

// ---- the API key -----------------------------------------------------------------------------

/**
 * Shows `detail` and what the key will do: every action waiting for it, in order ("go on" when
 * none is left, as when a key is typed again after a right one has sent them all).
 */
function askForKey(detail) {
  const then = inWords([...new Set(state.waiting.map((action) => action.then))]) || "go on";
  showError(`${capitalise(detail)}. Enter the API key below to ${then}.`);
  ui.keyForm.hidden = false;
  ui.apiKey.value = storedKey();
  ui.apiKey.focus();
}

/**
 * A request was answered 401: ask for the key; `retry` waits for it with the others refused, in
 * the order they were (the same `retry` once, however often it was refused).
 */
function needKey(detail, then, retry) {
  if (!state.waiting.some((action) => action.retry === retry)) state.waiting.push({ then, retry });
  askForKey(detail);
}

/** A request with the key went through: the prompt has done its job. */
function keyWorked(focusAfter = ui.record) {
  if (ui.keyForm.hidden) return;
  const hadFocus = ui.keyForm.contains(document.activeElement);
  ui.keyForm.hidden = true;
  showError("");
  if (hadFocus) focusAfter.focus();
}

/**
 * The key typed is tried first: a wrong one is asked for again, and nothing waiting is sent with
 * it. Once it is right (or the check could not tell), the prompt goes and everything waiting for
 * the key is done again, once each, in the order refused: taken from the list at once, so that a
 * second press finds nothing left to send.
 */
async function submitKey(event) {
  event.preventDefault();
  const key = ui.apiKey.value.trim();
  if (!key) return;
  sessionStorage.setItem(KEY_STORAGE, key);
  try {
    await requestJson(KEY_CHECK_URL, { headers: keyHeaders() });
  } catch (error) {
    if (error.status === 401) {
      askForKey(error.message);
      return;
    }
    // Any other failure is no verdict on the key: the actions will say what went wrong.
  }
  const waiting = state.waiting.splice(0);
  keyWorked();
  for (const action of waiting) action.retry();
}

// ---- sending a clip --------------------------------------------------------------------------

function setBusy(busy) {
  state.busy = busy;
  // aria-disabled rather than disabled, so keyboard focus stays where it is.
  ui.record.setAttribute("aria-disabled", String(busy || !canRecord()));
  ui.clip.setAttribute("aria-disabled", String(busy));
}

async function identify(blob, filename) {
  const ticket = (state.sent += 1);
  clearMessages();
  setBusy(true);
  say(`Sending ${isolate(filename)}…`);
  try {
    const answer = await predict(blob, filename);
    if (ticket !== state.sent) return; // a later clip's answer is the one to show
    keyWorked();
    if (!state.model || state.model.version !== answer.model.version) await loadModel();
    showAnswer(answer);
  } catch (error) {
    if (ticket !== state.sent) return;
    say("");
    // The answer shown was the earlier clip's: left up, it would read as this one's.
    clearAnswer(`No answer for ${isolate(filename)}: see the message under “Give it a clip”.`);
    const retry = () => identify(blob, filename);
    if (error.status === 401) needKey(error.message, "send the clip again", retry);
    else showError(`Could not identify ${isolate(filename)}: ${error.message}.`);
  } finally {
    if (ticket === state.sent) setBusy(false);
  }
}

function chooseFile() {
  const [file] = ui.clip.files;
  ui.clip.value = ""; // so that choosing the same file again sends it again
  if (file && !state.busy) identify(file, file.name);
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
  const [named, nearest] = [isolate(answer.speaker), isolate(closest[0])];
  ui.verdict.dataset.state = answer.unknown ? "unknown" : "known";
  ui.verdict.className = `verdict ${answer.unknown ? "" : labelClass(answer.speaker)}`.trim();
  ui.result.textContent = answer.speaker;
  if (answer.unknown) {
    ui.confidence.textContent = unknownWhy(answer, closest, needed);
    const why = UNKNOWN_IN_SHORT[answer.unknown_reason];
    say(
      `Unknown speaker${why ? `: ${why}` : ""}. The closest voice is ${nearest}, at ` +
        `${formatPercent(closest[1])}.`,
    );
  } else if (answer.confidence < closest[1]) {
    // The runner-up, named because the clip lies among its recordings, far from the top voice's.
    ui.confidence.textContent =
      `The clip lies among ${named}'s recordings and far from those of ${nearest}, ` +
      `whom the network scored higher (${formatPercent(closest[1])}).`;
    say(`${named}.`);
  } else {
    ui.confidence.textContent = `${formatPercent(answer.confidence)} sure (a voice is named from ${needed}).`;
    say(`${named}, ${formatPercent(answer.confidence)} sure.`);
  }
  ui.answerMeta.textContent =
    `${answer.duration_s.toFixed(2)} s clip · answered in ${Math.round(answer.timing_ms)} ms · ` +
    `model ${isolate(answer.model.name)} (${answer.model.version.slice(0, 8)})`;
  renderScores(answer);
  const words = qualityInWords(answer.quality, answer.unknown_cause);
  ui.quality.replaceChildren(...words.map((s) => element("li", "", s)));
  redraw();
}

/**
 * Why a clip was answered "unknown": a recording too poor to judge, a voice too far from every
 * known one, or unsure between two; and what would help.
 */
function unknownWhy(answer, closest, needed) {
  const nearest = isolate(closest[0]);
  if (answer.unknown_reason === "poor_recording") {
    const { problem, advice } = answer.unknown_cause;
    const [why, help] = [problem, advice].map(isolateRightToLeft);
    return (
      `Not named, and the recording is the likely cause: ${why}. ` +
      `To be named, ${help}, then try again.`
    );
  }
  if (answer.unknown_reason === "far")
    return (
      `Too far from every voice this model knows. The closest voice is ${nearest} at ` +
      `${formatPercent(closest[1])}, but the clip is unlike all of ${nearest}'s recordings. ` +
      `If this is a new voice, teach it to the model below.`
    );
  const [runner, secondScore] = runnerUp(answer.scores, closest[0]);
  const second = isolate(runner);
  return (
    `Not sure enough to name anyone: it sounds between voices. The closest voice is ` +
    `${nearest} at ${formatPercent(closest[1])}, then ${second} at ` +
    `${formatPercent(secondScore)}, but this model names a voice ` +
    `${unsureRule(answer, closest[1], needed)}. Say a longer phrase, or teach the model more ` +
    `takes of ${nearest} and ${second}.`
  );
}

/** The second-highest score's voice and score, after `top`'s. */
function runnerUp(scores, top) {
  return Object.entries(scores)
    .filter(([label]) => label !== top)
    .reduce((best, entry) => (entry[1] > best[1] ? entry : best), ["", 0]);
}

/** Which rule an unsure clip broke: the threshold, or the margin over the runner-up. */
function unsureRule(answer, topScore, needed) {
  if (topScore < answer.threshold || !state.model) return `only from ${needed}`;
  return `only when it scores ${state.model.unsure_odds} times the runner-up or more`;
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
  return capitalise(key.replace(/_/g, " "));
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
    ["Name", `${isolate(model.name)}, version ${model.version}`],
    [
      "Layers",
      `${model.architecture.join(" → ")} neurons (${model.output_activation} outputs); ` +
        (model.training.hidden_pinned
          ? "the hidden width was set when training"
          : `the hidden width is the one chosen for ${model.labels.length} voices`),
    ],
    [
      "Threshold",
      `${formatPercent(model.threshold)}: a lower top score, or one under ${model.unsure_odds} ` +
        "times the runner-up’s, answers “unknown” (unsure between voices)",
    ],
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
    if (error.status === 401) needKey(error.message, "see the model", loadModel);
    else showError(`Could not load the model: ${error.message}.`);
    return;
  }
  keyWorked();
  if (state.answer && state.answer.model.version !== state.model.version)
    clearAnswer("The model has changed since the last clip; give it one again.");
  renderReport(state.model);
  renderScores(state.answer);
  redraw();
  for (const listener of state.onModelLoaded) listener(state.model);
}

/** No answer to show (the model changed, or the last clip failed), and `note` says why. */
function clearAnswer(note) {
  state.answer = null;
  ui.verdict.dataset.state = "empty";
  ui.verdict.className = "verdict";
  ui.result.textContent = "?";
  ui.confidence.textContent = note;
  ui.answerMeta.textContent = "";
  renderScores(null);
  redraw();
  ui.quality.replaceChildren();
}

// ---- start -----------------------------------------------------------------------------------

/**
 * Another section's request failed: a 401 asks for the key here (and then does `retry`), any
 * other failure is told in the server's words through `showError`.
 */
function reportFailure(error, { what, retry, showError: show }) {
  if (error.status === 401) {
    show(`${capitalise(error.message)}: enter the API key under “Give it a clip”, above.`);
    needKey(error.message, what, retry);
  } else {
    show(`Could not ${what}: ${error.message}.`);
  }
}

/** What the other sections need from this one: the key prompt and the model's changes. */
const hooks = {
  reportFailure,
  keyWorked,
  reloadModel: loadModel,
  onModelLoaded: (listener) => state.onModelLoaded.push(listener),
};

/** "Listen live" beside Record: its section fills in as the server answers. */
function startListening() {
  const { say: sayLive, showError: showLiveError } = messages($("live-status"), $("live-error"));
  new LiveListener({
    ui: {
      button: $("listen"),
      panel: $("live"),
      name: $("live-name"),
      silence: $("live-silence"),
      why: $("live-why"),
      timeline: $("live-timeline"),
      timelineBox: $("live-timeline-box"),
      histogram: $("live-histogram"),
      histogramBox: $("live-histogram-box"),
    },
    model: () => state.model,
    say: sayLive,
    showError: showLiveError,
    onKeyNeeded: (detail, retry) => needKey(detail, "listen live", retry),
  });
}

function start() {
  new MicButton({
    button: ui.record,
    meter: ui.meter,
    idleLabel: "Record",
    say,
    showError,
    onTake: (wav) => identify(wav, "recording.wav"),
    ready: () => !state.busy,
  });
  startListening();
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
  startTeaching(hooks);
  startVersions(hooks);
  loadModel();
}

start();
