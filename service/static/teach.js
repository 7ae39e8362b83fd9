// "Teach it your voice": a name, five or more takes (recorded or dropped), each stored
// on the server as a clip of that speaker (POST /speakers/{name}/clips); then a training job
// (POST /train) whose progress the page follows (GET /train/{id}) until the new version serves.

import { api, speakerPath, withAdvice } from "./api.js";
import { $, button, capitalise, element, messages } from "./dom.js";
import { drawHistogram } from "./drawings.js";
import {
  formatSeconds,
  isolate,
  isolateRightToLeft,
  listInWords,
  qualityInWords,
  takesInWords,
} from "./format.js";
import { MicButton } from "./microphone.js";

// The server trains from 4 clips a speaker; 5 leave one for its validation split to check.
export const MIN_TAKES = 5;
const MAX_NAME_CHARS = 64; // the server's limit, in characters (code points)
const MAX_NAME_BYTES = 255; // and in bytes of UTF-8: a file name's
const NAME_CHARS = /^[\p{L}\p{Nd} ._-]*$/u; // letters, digits, space and -_.
const INVISIBLE = /\p{Default_Ignorable_Code_Point}/u; // such as the Hangul fillers
const UNKNOWN = "unknown"; // the answer for a voice the model does not know: no voice's name
// How the server's refusals of a name begin (422: its rules; 409: it reads as another's).
const NAME_REFUSED = /^speaker name /;
const POLL_MS = 400; // between looks at a running training job
const STARTING = ""; // state.job while POST /train is on its way: a second press waits for it
const THUMBNAIL = { width: 180, height: 56 }; // px, a take's histogram
// Events between this section and the list of voices (versions.js).
export const STORE_CHANGED = "voiceid:store-changed";
export const SPEAKER_REMOVED = "voiceid:speaker-removed";

/**
 * What is wrong with `name` (in NFC) as a speaker's name, by the server's rules, or "" when
 * nothing is: 1-64 visible letters, digits, spaces, "-", "_" and ".", at most 255 bytes of UTF-8;
 * not starting with "." or a space, not ending with a space, no path separators; not "unknown"
 * in any case. The server checks again and has the last word (it also refuses a name that
 * reads as another's, or as "unknown" in another script).
 */
export function checkSpeakerName(name) {
  const shown = isolate(name);
  const length = [...name].length;
  if (length === 0) return "Type a name first.";
  if (length > MAX_NAME_CHARS)
    return `“${shown}” is ${length} characters long; a name has at most ${MAX_NAME_CHARS}.`;
  const bytes = new TextEncoder().encode(name).length;
  if (bytes > MAX_NAME_BYTES)
    return `“${shown}” takes ${bytes} bytes; a name takes at most ${MAX_NAME_BYTES}.`;
  if (/[/\\]/.test(name)) return `“${shown}” has a “/” or “\\”; a name cannot.`;
  const hidden = [...name].find((char) => INVISIBLE.test(char));
  if (hidden !== undefined) {
    const code = hidden.codePointAt(0).toString(16).toUpperCase().padStart(4, "0");
    return `“${shown}” has an invisible character (U+${code}); a name cannot.`;
  }
  const odd = [...name].find((char) => !NAME_CHARS.test(char));
  if (odd !== undefined)
    return `“${shown}” has “${odd}”; a name holds letters, digits, spaces, “-”, “_” and “.” only.`;
  if (/^[. ]/.test(name)) return `“${shown}” starts with “${name[0]}”; a name cannot.`;
  if (name.endsWith(" ")) return `“${shown}” ends with a space; a name cannot.`;
  if (name.normalize("NFKC").toLowerCase() === UNKNOWN)
    return (
      `“${shown}” reads as “${UNKNOWN}”, the answer for a voice the model does not know; ` +
      "choose another name."
    );
  return "";
}

const ui = {
  name: $("speaker-name"),
  nameError: $("name-error"),
  record: $("take-record"),
  meter: $("take-meter"),
  files: $("take-files"),
  drop: $("take-drop"),
  takes: $("takes"),
  takesEmpty: $("takes-empty"),
  count: $("take-count"),
  takesAdvice: $("takes-advice"),
  train: $("train"),
  progress: $("train-progress"),
  progressDetail: $("train-detail"),
};
const { say, showError, clear: clearMessages } = messages($("teach-status"), $("teach-error"));

const state = {
  hooks: null, // from app.js: reportFailure, keyWorked, reloadModel, onModelLoaded
  bands: null, // the served model's band centres, Hz, for the histograms
  name: "", // the speaker whose takes are shown
  known: Promise.resolve(null), // what GET /speakers says of that name: {in_model, in_store}
  addToVoice: "", // the model's voice the person agreed to add takes to
  takes: [], // {speaker, state: sending|accepted|stored|refused, file, id, seconds, histogram, detail}
  takesCheck: null, // the server's check of the shown speaker's stored takes, as a whole
  recorded: 0, // takes recorded in this page, for their file names
  job: null, // the id of the training job being followed; STARTING while one is asked for
};

function failed(error, what, retry) {
  state.hooks.reportFailure(error, { what, retry, showError });
}

// ---- the name ------------------------------------------------------------------------------

function showNameProblem(problem) {
  ui.nameError.textContent = problem;
  ui.name.setAttribute("aria-invalid", String(Boolean(problem)));
}

// Checked as the name is typed, not when the field is left: a message appearing then would
// move the buttons away from under the pointer on its way to one, and the click would be lost.
function checkTypedName() {
  const name = typedName();
  showNameProblem(name ? checkSpeakerName(name) : "");
}

/** The name in the field, composed (NFC) as the server takes it. */
function typedName() {
  return ui.name.value.trim().normalize("NFC");
}

/** The name typed, when it is one (and its takes are shown); else null, with the reason. */
function currentName() {
  const name = typedName();
  const problem = checkSpeakerName(name);
  showNameProblem(problem);
  if (problem) return null;
  if (name !== state.name) showSpeaker(name);
  return name;
}

/** `currentName()`, with the focus sent to the name field when there is none. */
function nameOrFocus() {
  const name = currentName();
  if (!name) ui.name.focus();
  return name;
}

function showSpeaker(name) {
  state.name = name;
  state.takes = [];
  state.takesCheck = null;
  state.known = knownSpeaker(name);
  renderTakes();
  loadStoredTakes(name);
}

/** The store's or the model's speaker `name` (asked of the list, so no 404 for a new name). */
async function knownSpeaker(name) {
  const { speakers } = await api("/speakers");
  return speakers.find((speaker) => speaker.name === name) || null;
}

/** The takes the store already holds for `name` (from earlier visits), without histograms. */
async function loadStoredTakes(name) {
  let speaker;
  try {
    const known = await state.known;
    if (!known || !known.in_store) return;
    speaker = await api(speakerPath(name));
  } catch (error) {
    if (error.status === 422) showNameProblem(capitalise(error.message));
    else failed(error, `look up ${isolate(name)}`, () => lookUpAgain(name));
    return;
  }
  if (name !== state.name) return; // another name was typed meanwhile
  state.takesCheck = speaker.takes;
  const shown = new Set(state.takes.map((take) => take.id));
  const stored = speaker.clips
    .filter((clip) => !shown.has(clip.id))
    .map((clip) => ({ speaker: name, state: "stored", id: clip.id, seconds: clip.seconds }));
  state.takes.unshift(...stored);
  renderTakes();
}

/** `name`'s entry and stored takes asked for anew, if it is still shown: the first ask failed. */
function lookUpAgain(name) {
  if (name !== state.name) return;
  state.known = knownSpeaker(name);
  loadStoredTakes(name);
}

// ---- takes ---------------------------------------------------------------------------------

/**
 * Whether takes may go to `name`. The server refuses takes for a voice the model knows and the
 * store does not hold, unless the request says they are meant for that voice: the person is
 * asked first, and the page says so only when they agree.
 */
async function mayAddTo(name) {
  if (state.addToVoice === name) return true;
  let known;
  try {
    known = await state.known;
  } catch {
    return true; // the list could not be read: the server still has the last word
  }
  if (!known || !known.in_model || known.in_store) return true;
  const shown = isolate(name);
  const agreed = window.confirm(
    `The model knows a voice called “${shown}” already. Add your takes to that voice? ` +
      "(Cancel to choose another name.)",
  );
  if (agreed) state.addToVoice = name;
  else showNameProblem(`“${shown}” is a voice the model knows; choose a name of your own.`);
  return agreed;
}

/** POSTs one clip; the answer lists it as accepted or refused, whatever the status. */
async function postClip(name, blob, filename) {
  const body = new FormData();
  body.append("files", blob, filename);
  const flag = state.addToVoice === name ? "?add_to_existing=true" : "";
  try {
    return await api(`${speakerPath(name)}/clips${flag}`, { method: "POST", body });
  } catch (error) {
    if (error.body && Array.isArray(error.body.refused)) return error.body;
    throw error;
  }
}

async function sendTake(blob, filename) {
  const name = nameOrFocus();
  if (!name || !(await mayAddTo(name))) return;
  clearMessages();
  const take = { speaker: name, state: "sending", file: filename };
  state.takes.push(take);
  renderTakes();
  try {
    settleTake(take, await postClip(name, blob, filename));
    state.hooks.keyWorked(ui.record);
  } catch (error) {
    refuseTake(take, error, () => sendTake(blob, filename));
  }
}

function settleTake(take, answer) {
  const [accepted] = answer.accepted;
  const [refused] = answer.refused;
  if (accepted && state.takes.some((other) => other !== take && other.id === accepted.id)) {
    removeTake(take);
    say(`${isolate(take.file)} is a take of ${isolate(take.speaker)} already.`);
    return;
  }
  if (answer.takes && take.speaker === state.name) state.takesCheck = answer.takes;
  if (accepted) {
    const { id, seconds, histogram, quality } = accepted;
    Object.assign(take, { state: "accepted", id, seconds, histogram, quality });
    say(`Take ${goodTakes().length} of ${isolate(take.speaker)} stored.`);
  } else {
    const detail = refused ? withAdvice(refused.status, refused.detail) : "refused";
    Object.assign(take, { state: "refused", detail, quality: refused && refused.quality });
    say(`${isolate(take.file)} was refused.`);
  }
  renderTakes();
  document.dispatchEvent(new Event(STORE_CHANGED));
}

/** A take the server did not store: it says why on its card (a 401 asks for the key). */
function refuseTake(take, error, retry) {
  if (error.status === 401) {
    removeTake(take);
    failed(error, "store the take", retry);
    return;
  }
  if (NAME_REFUSED.test(error.message)) showNameProblem(capitalise(error.message));
  Object.assign(take, { state: "refused", detail: error.message });
  renderTakes();
  say(`${isolate(take.file)} was not stored.`);
}

function removeTake(take) {
  state.takes = state.takes.filter((other) => other !== take);
  renderTakes();
}

/** A refused take's card goes; the focus, on its button, goes to Record a take. */
function dismissTake(take) {
  removeTake(take);
  ui.record.focus();
}

async function deleteTake(take) {
  const url = `${speakerPath(take.speaker)}/clips/${encodeURIComponent(take.id)}`;
  try {
    await api(url, { method: "DELETE" });
  } catch (error) {
    if (error.status !== 404) {
      failed(error, "delete the take", () => deleteTake(take));
      return;
    }
  }
  removeTake(take);
  ui.record.focus(); // the take's button has gone with it
  say(`Take deleted; ${countText()}`);
  document.dispatchEvent(new Event(STORE_CHANGED));
  recheckTakes(take.speaker);
}

/** The server's check of `name`'s stored takes again, once one has gone; none when it fails. */
async function recheckTakes(name) {
  let speaker = null;
  try {
    speaker = await api(speakerPath(name));
  } catch {
    // no speaker left (404), or the server is away: nothing to advise on
  }
  if (name !== state.name) return;
  state.takesCheck = speaker ? speaker.takes : null;
  renderTakes();
}

async function sendFiles(files) {
  const name = nameOrFocus();
  if (!name || !(await mayAddTo(name))) return;
  for (const file of files) await sendTake(file, file.name);
}

function chooseFiles() {
  const files = [...ui.files.files];
  ui.files.value = ""; // so that choosing the same files again sends them again
  sendFiles(files);
}

function dropFiles(event) {
  event.preventDefault();
  ui.drop.classList.remove("dragging");
  sendFiles([...event.dataTransfer.files]);
}

function dragOver(event) {
  if (![...event.dataTransfer.types].includes("Files")) return;
  event.preventDefault();
  event.dataTransfer.dropEffect = "copy";
  ui.drop.classList.add("dragging");
}

// ---- the takes' cards ------------------------------------------------------------------------

function goodTakes() {
  return state.takes.filter((take) => take.state === "accepted" || take.state === "stored");
}

function takeTitle(take) {
  if (take.state === "sending" || take.state === "refused") return take.file;
  return `Take ${goodTakes().indexOf(take) + 1} · ${formatSeconds(take.seconds)}`;
}

function thumbnail(histogram) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("role", "img");
  svg.classList.add("take-histogram");
  const explain = { histogram, band_centres_hz: state.bands };
  drawHistogram(svg, THUMBNAIL.width, explain, { thumbnail: true, height: THUMBNAIL.height });
  return svg;
}

/** What the card shows under its title: the histogram, the reason it was refused, or a note. */
function takeBody(take) {
  if (take.state === "accepted" && take.histogram && state.bands) return thumbnail(take.histogram);
  if (take.state === "refused") return element("p", "take-reason", capitalise(take.detail));
  const notes = { sending: "Sending…", stored: "Stored earlier.", accepted: "Stored." };
  return element("p", "take-note", notes[take.state]);
}

/** What a take's recording needs, when it has issues: the first one's words. */
function takeAdvice(take) {
  const [words] = take.quality && take.quality.issues.length ? qualityInWords(take.quality) : [];
  return words ? element("p", "take-advice", words) : null;
}

function takeAction(take) {
  const title = takeTitle(take);
  if (take.state === "refused")
    return button("Dismiss", "button secondary small", () => dismissTake(take), `Dismiss ${title}`);
  if (take.state === "sending") return null;
  return button("Delete", "button secondary small", () => deleteTake(take), `Delete ${title}`);
}

function takeCard(take) {
  const card = element("li", `take ${take.state}`);
  card.append(element("p", "take-title", takeTitle(take)), takeBody(take));
  const advice = takeAdvice(take);
  if (advice) card.append(advice);
  const action = takeAction(take);
  if (action) card.append(action);
  return card;
}

function countText() {
  const n = goodTakes().length;
  if (!state.name) return `Type a name, then record ${MIN_TAKES} takes or more.`;
  const takes = `${n} ${n === 1 ? "take" : "takes"} of ${isolate(state.name)}`;
  if (n >= MIN_TAKES) return `${takes}: ready to train.`;
  return `${takes}: ${MIN_TAKES - n} more before it can train.`;
}

function renderTakes() {
  ui.takes.replaceChildren(...state.takes.map(takeCard));
  ui.takesEmpty.hidden = state.takes.length > 0;
  ui.count.textContent = countText();
  const advice = takesInWords(state.takesCheck);
  ui.takesAdvice.replaceChildren(...advice.map((sentence) => element("li", "", sentence)));
  ui.takesAdvice.hidden = advice.length === 0;
  const ready = goodTakes().length >= MIN_TAKES && state.job === null;
  ui.train.setAttribute("aria-disabled", String(!ready));
}

// ---- training ------------------------------------------------------------------------------

async function train() {
  if (state.job !== null) return;
  if (ui.train.getAttribute("aria-disabled") === "true") {
    showError(`Not yet: ${countText()}`);
    return;
  }
  clearMessages();
  state.job = STARTING;
  renderTakes();
  let job;
  try {
    ({ job } = await api("/train", { method: "POST" }));
  } catch (error) {
    state.job = null;
    renderTakes();
    trainingRefused(error);
    return;
  }
  state.hooks.keyWorked(ui.train);
  follow(job);
}

/** The job a 409's detail names ("a training job is running (job 1a2b: GET /train/1a2b)"). */
function runningJob(error) {
  const match = /\/train\/([\w-]+)|\(job ([\w-]+)/.exec(error.message);
  return match ? match[1] || match[2] : null;
}

function trainingRefused(error) {
  const running = error.status === 409 ? runningJob(error) : null;
  if (running === null) {
    failed(error, "train", train);
    return;
  }
  follow(running, `Training was already under way (job ${running}); following it…`);
}

function showProgress(job) {
  ui.progress.hidden = false;
  ui.progress.value = job.progress;
  ui.progressDetail.textContent = `${capitalise(job.state)}: ${isolateRightToLeft(job.detail)}`;
}

/** No training to show: a bar left part-filled would read as one still running. */
function hideProgress() {
  ui.progress.hidden = true;
  ui.progressDetail.textContent = "";
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls job `id` until it is done or failed, showing its progress. */
async function follow(id, announcement = "Training…") {
  state.job = id;
  renderTakes();
  showProgress({ state: "queued", progress: 0, detail: "waiting to start" });
  say(announcement);
  const url = `/train/${encodeURIComponent(id)}`;
  try {
    let job = await api(url);
    while (job.state !== "done" && job.state !== "failed") {
      showProgress(job);
      await sleep(POLL_MS);
      job = await api(url);
    }
    showProgress(job);
    finished(job);
  } catch (error) {
    say("");
    hideProgress();
    failed(error, "follow the training", () => follow(id));
  } finally {
    state.job = null;
    renderTakes();
  }
}

function finished(job) {
  ui.progressDetail.textContent = ""; // the status below says it all now
  if (job.state === "failed") {
    say("");
    hideProgress();
    showError(`Training failed: ${isolateRightToLeft(job.detail)}`);
    return;
  }
  const model = job.model;
  say(
    model
      ? `Done: now serving version ${model.version}, which knows: ${listInWords(model.labels)}. ` +
          "Press Record at the top of the page: it should name you."
      : "Done.",
  );
  state.hooks.reloadModel();
}

// ---- start ---------------------------------------------------------------------------------

/** Wires up the section; `hooks` come from app.js. */
export function startTeaching(hooks) {
  state.hooks = hooks;
  hooks.onModelLoaded((model) => {
    state.bands = model.band_centres_hz;
    renderTakes();
  });
  new MicButton({
    button: ui.record,
    meter: ui.meter,
    idleLabel: "Record a take",
    say,
    showError,
    onTake: (wav) => sendTake(wav, `take-${(state.recorded += 1)}.wav`),
    ready: () => Boolean(nameOrFocus()),
  });
  ui.name.addEventListener("input", checkTypedName);
  ui.name.addEventListener("change", () => ui.name.value.trim() && currentName());
  ui.files.addEventListener("change", chooseFiles);
  ui.drop.addEventListener("dragover", dragOver);
  ui.drop.addEventListener("dragleave", () => ui.drop.classList.remove("dragging"));
  ui.drop.addEventListener("drop", dropFiles);
  ui.train.addEventListener("click", train);
  document.addEventListener(SPEAKER_REMOVED, ({ detail: name }) => {
    if (name === state.name) showSpeaker(name);
  });
  renderTakes();
}
