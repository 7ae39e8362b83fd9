// A record button with its level meter: press to start, press again (or wait) to stop, and the
// take goes to `onTake`. The page has two (identify a clip, and teach a voice); only one
// records at a time, since there is one microphone.

import { Recording, canRecord, peakOf } from "./recorder.js";

const MAX_RECORDING_S = 20; // recording stops by itself after this, well under the server's limit
const MIN_RECORDING_S = 0.3; // shorter recordings are a slip of the finger, not a word
const SILENCE_DB = -60; // level-meter floor, dBFS
// A recording whose peak stays under this (-80 dBFS, the server's limit for a silent clip:
// pipeline/audio.py SILENCE_DBFS) came from a muted or wrong microphone: it is not sent.
export const MUTED_PEAK = 1e-4;
// What to check when the microphone sends only silence (Record and Listen live say it).
export const MUTED_ADVICE =
  "check that it is not muted and that the browser uses the one you speak into";
const MUTED = `The microphone sent only silence: ${MUTED_ADVICE}, then record again.`;
const NO_RECORDING =
  "Recording needs a secure page (https or localhost) and a browser with Web Audio; " +
  "choose a file instead.";

let active = null; // the MicButton recording now

/**
 * A record button's look while `on` (recording or listening) or not: "Stop", named `stopName`
 * for screen readers since the page can show two, else `idleLabel`. The name, not a pressed
 * state, says what a press does: "Stop, pressed" would read as stopped.
 */
export function showRecordButton(button, on, { idleLabel, stopName }) {
  button.classList.toggle("recording", on);
  button.querySelector(".record-label").textContent = on ? "Stop" : idleLabel;
  if (on) button.setAttribute("aria-label", stopName);
  else button.removeAttribute("aria-label");
}

/** Why the microphone could not start (`error` is getUserMedia's DOMException), and what to do. */
export function microphoneProblem(error) {
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

/** What is wrong with a recording of `seconds` whose loudest sample is `peak`, or "". */
function recordingProblem(seconds, peak) {
  if (seconds < MIN_RECORDING_S)
    return (
      `The recording is only ${seconds.toFixed(1)} s long; ` +
      "press Record, say a word, then press Stop."
    );
  return peak < MUTED_PEAK ? MUTED : "";
}

export class MicButton {
  #recording = null;
  #timer = null;

  /**
   * `button` holds a `.record-label`; `meter` a `.level-fill` and an `.elapsed`. `say` and
   * `showError` write to the section's messages; `onTake(wav, seconds)` gets each recording;
   * a press starts one only when `ready()` (which explains itself when it is not).
   */
  constructor({ button, meter, idleLabel, say, showError, onTake, ready = () => true }) {
    this.button = button;
    this.meter = meter;
    this.levelFill = meter.querySelector(".level-fill");
    this.elapsed = meter.querySelector(".elapsed");
    Object.assign(this, { idleLabel, say, showError, onTake, ready });
    button.addEventListener("click", () => this.toggle());
  }

  get recording() {
    return this.#recording !== null;
  }

  toggle() {
    if (this.#recording) this.stop();
    else if (!canRecord()) this.showError(NO_RECORDING);
    else if (this.ready()) this.start();
  }

  #setUi(recording) {
    const labels = { idleLabel: this.idleLabel, stopName: "Stop recording" };
    showRecordButton(this.button, recording, labels);
    this.meter.hidden = !recording;
    this.levelFill.style.transform = "scaleX(0)";
    this.elapsed.textContent = "0.0 s";
  }

  #showLevel(samples, startedAt) {
    const peak = peakOf(samples);
    const db = peak > 0 ? 20 * Math.log10(peak) : SILENCE_DB;
    const fraction = Math.min(Math.max(1 - db / SILENCE_DB, 0), 1);
    this.levelFill.style.transform = `scaleX(${fraction.toFixed(3)})`;
    this.elapsed.textContent = `${((performance.now() - startedAt) / 1000).toFixed(1)} s`;
  }

  async start() {
    if (active && active !== this) await active.stop();
    this.say("");
    this.showError("");
    const startedAt = performance.now();
    const recording = new Recording({ onChunk: (samples) => this.#showLevel(samples, startedAt) });
    this.#recording = recording;
    active = this;
    this.#setUi(true);
    this.say("Starting the microphone…");
    try {
      await recording.start();
    } catch (error) {
      this.#recording = null;
      active = null;
      this.#setUi(false);
      this.say("");
      this.showError(microphoneProblem(error));
      return;
    }
    if (this.#recording !== recording) return; // stopped while the microphone was starting
    this.say(
      `Recording. Say a few words, then press Stop (it stops by itself after ${MAX_RECORDING_S} s).`,
    );
    this.#timer = setTimeout(() => this.stop(), MAX_RECORDING_S * 1000);
  }

  async stop() {
    const recording = this.#recording;
    if (!recording) return;
    this.#recording = null;
    if (active === this) active = null;
    clearTimeout(this.#timer);
    this.#setUi(false);
    const { wav, seconds, peak } = await recording.stop();
    const problem = recordingProblem(seconds, peak);
    if (problem) {
      this.say("");
      this.showError(problem);
      return;
    }
    this.onTake(wav, seconds);
  }
}
