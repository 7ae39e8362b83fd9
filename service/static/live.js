// "Listen live": the microphone streamed to /listen as 16-bit PCM at the browser's own rate
// (the server resamples), and each answer shown as it comes: the name, a scrolling timeline of
// the last 30 s with one colour per voice, and the histogram of the latest window.

import { UNREACHABLE, storedKey } from "./api.js";
import { drawHistogram, drawTimeline } from "./drawings.js";
import { UNKNOWN_IN_SHORT, isolateRightToLeft } from "./format.js";
import { MUTED_ADVICE, MUTED_PEAK, microphoneProblem, showRecordButton } from "./microphone.js";
import { Recording, canRecord, peakOf } from "./recorder.js";

const LISTEN_PATH = "/listen";
const SHOWN_S = 30; // seconds of timeline on screen; older hops are dropped
const NO_MICROPHONE =
  "Listening needs a secure page (https or localhost) and a browser with Web Audio.";
const LISTENING = "Listening. Speak, and watch the name follow the voice; press Stop to end.";
// After this many seconds of audio whose every sample is under MUTED_PEAK (-80 dBFS: digital
// silence, which no real microphone's own noise is), the microphone is muted or the wrong one.
const MUTED_AFTER_S = 2;
const MUTED = `The microphone sends only silence: ${MUTED_ADVICE}.`;
// Close codes the server uses (service/listen.py), in the person's words.
const CLOSED = {
  1008: "the server needs its API key",
  1009: "a piece of audio was too large for the server",
  1012: "the server restarted, or now serves a model that hears differently; listen again",
  1013: "the server is too busy for another stream; try again in a moment",
  4408: "the server heard nothing for too long",
  4413: "the stream reached the server's length limit",
  4429: "audio arrived faster than the server allows",
  4503: "the server has no model loaded yet",
};

/** Float samples in [-1, 1] as 16-bit little-endian PCM (an ArrayBuffer), clipped beyond. */
export function toPcm16(samples) {
  const view = new DataView(new ArrayBuffer(samples.length * 2));
  for (let i = 0; i < samples.length; i += 1) {
    const s = Math.max(-1, Math.min(1, samples[i]));
    view.setInt16(i * 2, s < 0 ? s * 0x8000 : s * 0x7fff, true);
  }
  return view.buffer;
}

/**
 * What a close means for the person: null when it was asked for, else the server's words;
 * `opened` false when the connection never opened (the server is down, or not there).
 */
export function closeMessage(code, reason, opened = true) {
  if (code === 1000) return null;
  if (!opened) return `Stopped: could not connect to the server; ${UNREACHABLE}.`;
  const known = CLOSED[code];
  if (known) return `Stopped: ${known} (${reason || code}).`;
  return `Stopped: the connection to the server was lost (${reason || `code ${code}`}).`;
}

export class LiveListener {
  #socket = null; // the stream's; null once it is stopped or closed
  #recording = null; // set from the press that starts it, so a second press stops it
  #silentS = 0; // seconds of digital silence sent since the last sound
  #mutedShown = false; // whether the status says the microphone sends only silence
  #startAgain = () => this.start(); // one function, so that the key prompt waits with it once

  /**
   * `ui` holds the toggle button, the name, why it is unknown, the timeline and histogram SVGs
   * and their boxes; `model()` gives the loaded model (labels, band centres); `say`,
   * `showError` speak; `onKeyNeeded(detail, retry)` asks for the API key.
   */
  constructor({ ui, model, say, showError, onKeyNeeded }) {
    Object.assign(this, { ui, model, say, showError, onKeyNeeded });
    this.hops = [];
    ui.button.addEventListener("click", () => (this.#recording ? this.stop() : this.start()));
  }

  async start() {
    if (!canRecord()) return this.showError(NO_MICROPHONE);
    this.showError("");
    this.hops = [];
    this.#setUi(true);
    this.say("Starting the microphone…");
    const recording = new Recording({ keep: false, onChunk: (s) => this.#send(s) });
    this.#recording = recording;
    try {
      await recording.start();
    } catch (error) {
      if (this.#recording === recording) this.#finish(microphoneProblem(error));
      return;
    }
    if (this.#recording !== recording) return; // stopped while the microphone was starting
    this.#connect(recording.sampleRate);
  }

  #connect(sampleRate) {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}${LISTEN_PATH}`, ["voiceid"]);
    socket.binaryType = "arraybuffer";
    this.#socket = socket;
    let opened = false;
    socket.onopen = () => {
      opened = true;
      const key = storedKey();
      socket.send(JSON.stringify({ sample_rate: sampleRate, explain: true, ...(key && { key }) }));
    };
    // A stream stopped by the person is no longer this.#socket: its late words are ignored.
    socket.onmessage = ({ data }) => socket === this.#socket && this.#answer(JSON.parse(data));
    socket.onclose = ({ code, reason }) =>
      socket === this.#socket && this.#closed(code, reason, opened);
  }

  #send(samples) {
    if (!(this.#socket && this.#socket.readyState === WebSocket.OPEN && this.ready)) return;
    this.#socket.send(toPcm16(samples));
    this.#watchForSilence(samples);
  }

  /** Says, while it lasts, that the microphone sends only digital silence (muted, or not the
   * one spoken into): the answers alone would show nobody speaking and never say why. */
  #watchForSilence(samples) {
    if (peakOf(samples) >= MUTED_PEAK) {
      this.#silentS = 0;
      if (this.#mutedShown) this.say(LISTENING);
      this.#mutedShown = false;
      return;
    }
    this.#silentS += samples.length / this.#recording.sampleRate;
    if (!this.#mutedShown && this.#silentS >= MUTED_AFTER_S) {
      this.#mutedShown = true;
      this.say(MUTED);
    }
  }

  #answer(message) {
    if (message.type === "ready") {
      this.ready = true;
      [this.#silentS, this.#mutedShown] = [0, false];
      this.say(LISTENING);
      return;
    }
    this.hops.push(message);
    while (this.hops.length && this.hops[0].t < message.t - SHOWN_S) this.hops.shift();
    this.#show(message);
  }

  #show(hop) {
    const { ui } = this;
    if (hop.speech) {
      // A live region: rewritten with the same name, it would be read out four times a second.
      if (ui.name.textContent !== hop.speaker) ui.name.textContent = hop.speaker;
      ui.name.dataset.state = hop.unknown ? "unknown" : "known";
      const index = this.model() ? this.model().labels.indexOf(hop.speaker) : -1;
      ui.name.className = `live-name ${index >= 0 ? `speaker-${index % 6}` : ""}`.trim();
    }
    ui.name.dataset.t = String(hop.t);
    ui.silence.hidden = hop.speech;
    const why = hop.speech && hop.unknown && UNKNOWN_IN_SHORT[hop.unknown_reason];
    ui.why.hidden = !why;
    if (why && ui.why.textContent !== `(${why})`) ui.why.textContent = `(${why})`;
    const labels = this.model() ? this.model().labels : [];
    drawTimeline(ui.timeline, Math.max(ui.timelineBox.clientWidth, 280), this.hops, labels, SHOWN_S);
    if (hop.speech && hop.histogram && this.model()) {
      const centres = this.model().band_centres_hz;
      drawHistogram(ui.histogram, Math.max(ui.histogramBox.clientWidth, 280), {
        histogram: hop.histogram,
        band_centres_hz: centres,
      });
    }
  }

  #closed(code, reason, opened) {
    this.#socket = null;
    const words = isolateRightToLeft(reason);
    if (code === 1008) {
      this.#finish("");
      this.onKeyNeeded(words, this.#startAgain);
      return;
    }
    this.#finish(closeMessage(code, words, opened) || "");
  }

  stop() {
    const socket = this.#socket;
    this.#socket = null;
    if (socket) socket.close(1000, "stopped");
    this.#finish("");
  }

  #finish(error) {
    this.ready = false;
    if (this.#recording) this.#recording.stop();
    this.#recording = null;
    this.#setUi(false);
    this.say(error ? "" : "Stopped listening.");
    if (error) this.showError(error);
  }

  #setUi(listening) {
    const labels = { idleLabel: "Listen live", stopName: "Stop listening" };
    showRecordButton(this.ui.button, listening, labels);
    if (listening) this.ui.panel.hidden = false;
  }
}
