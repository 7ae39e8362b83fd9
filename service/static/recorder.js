// Microphone capture to a 16-bit PCM mono WAV, entirely in the browser, so the server needs
// no WebM/Opus decoder. Samples are kept at the audio hardware's own rate; the server
// resamples every clip to the model's rate with the same code that training used.

const WAV_HEADER_BYTES = 44;
const CHUNK_SAMPLES = 4096; // samples per message from the audio thread (~85 ms at 48 kHz)
const FALLBACK_BUFFER = 4096; // ScriptProcessor buffer size, samples

// The raw voice is what the network was trained on: no echo cancelling, noise suppression
// or automatic gain, which would reshape the very spectrum the histogram measures.
const MIC_CONSTRAINTS = {
  audio: {
    channelCount: 1,
    echoCancellation: false,
    noiseSuppression: false,
    autoGainControl: false,
  },
};

// Runs on the audio thread: copies each 128-sample render quantum of channel 0 into a
// buffer and posts it to the page in chunks; told "flush", it posts what it holds, then
// "flushed". Its output stays silent.
const TAP_PROCESSOR = `
class VoiceidTap extends AudioWorkletProcessor {
  constructor() {
    super();
    this.buffer = new Float32Array(${CHUNK_SAMPLES});
    this.filled = 0;
    this.port.onmessage = () => {
      this.flush();
      this.port.postMessage("flushed");
    };
  }
  flush() {
    if (this.filled > 0) this.port.postMessage(this.buffer.slice(0, this.filled));
    this.filled = 0;
  }
  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (channel) {
      let offset = 0;
      while (offset < channel.length) {
        const n = Math.min(channel.length - offset, this.buffer.length - this.filled);
        this.buffer.set(channel.subarray(offset, offset + n), this.filled);
        this.filled += n;
        offset += n;
        if (this.filled === this.buffer.length) this.flush();
      }
    }
    return true;
  }
}
registerProcessor("voiceid-tap", VoiceidTap);
`;

/** Whether this browser can record at all (getUserMedia needs https or localhost). */
export function canRecord() {
  return Boolean(
    navigator.mediaDevices && navigator.mediaDevices.getUserMedia && window.AudioContext,
  );
}

/**
 * One recording from the default microphone.
 *
 * `onChunk(samples)` receives each Float32Array of new samples as it arrives, for a level meter
 * or a live stream; with `keep: false` nothing else is kept, so a recording of any length holds
 * no memory (and `stop` returns no WAV).
 */
export class Recording {
  #context;
  #stream;
  #node;
  #chunks = [];
  #onChunk;
  #keep;
  #starting = Promise.resolve();
  #flushed = () => {};

  constructor({ onChunk = () => {}, keep = true } = {}) {
    this.#onChunk = onChunk;
    this.#keep = keep;
  }

  /** The microphone's sample rate, Hz, once `start` has resolved. */
  get sampleRate() {
    return this.#context.sampleRate;
  }

  /** Asks for the microphone and starts capturing; rejects with the browser's DOMException. */
  start() {
    this.#starting = this.#open();
    return this.#starting;
  }

  async #open() {
    // Made before the first await, while the click still counts as a user gesture.
    this.#context = new AudioContext();
    try {
      this.#stream = await navigator.mediaDevices.getUserMedia(MIC_CONSTRAINTS);
      const source = this.#context.createMediaStreamSource(this.#stream);
      this.#node = await this.#tapNode();
      source.connect(this.#node);
      this.#node.connect(this.#context.destination);
      await this.#context.resume();
    } catch (error) {
      this.#release();
      throw error;
    }
  }

  /**
   * Stops capturing and releases the microphone; resolves to `{wav: Blob, seconds, peak}`, `peak`
   * being the largest absolute sample (0 from a muted microphone).
   */
  async stop() {
    await this.#starting.catch(() => {}); // a failed start has already released everything
    if (this.#node && this.#node.port) {
      // Collect the audio thread's partly filled buffer; a stalled thread gets 250 ms.
      const flushed = new Promise((resolve) => {
        this.#flushed = resolve;
        setTimeout(resolve, 250);
      });
      this.#node.port.postMessage("flush");
      await flushed;
    }
    const sampleRate = this.#context.sampleRate;
    this.#release();
    const samples = concatenate(this.#chunks);
    return {
      wav: new Blob([encodeWav(samples, sampleRate)], { type: "audio/wav" }),
      seconds: samples.length / sampleRate,
      peak: peakOf(samples),
    };
  }

  async #tapNode() {
    const take = (samples) => {
      if (this.#keep) this.#chunks.push(samples);
      this.#onChunk(samples);
    };
    if (this.#context.audioWorklet) {
      const url = URL.createObjectURL(new Blob([TAP_PROCESSOR], { type: "text/javascript" }));
      try {
        await this.#context.audioWorklet.addModule(url);
      } finally {
        URL.revokeObjectURL(url);
      }
      const node = new AudioWorkletNode(this.#context, "voiceid-tap", {
        numberOfInputs: 1,
        numberOfOutputs: 1,
        channelCount: 1,
        channelCountMode: "explicit",
      });
      node.port.onmessage = ({ data }) => (data === "flushed" ? this.#flushed() : take(data));
      return node;
    }
    // Older browsers: the deprecated ScriptProcessorNode does the same on the main thread.
    const node = this.#context.createScriptProcessor(FALLBACK_BUFFER, 1, 1);
    node.onaudioprocess = (event) => take(event.inputBuffer.getChannelData(0).slice());
    return node;
  }

  #release() {
    if (this.#node) this.#node.disconnect();
    if (this.#stream) this.#stream.getTracks().forEach((track) => track.stop());
    if (this.#context && this.#context.state !== "closed") this.#context.close();
  }
}

/** The largest absolute value of `samples` (0 for none). */
export function peakOf(samples) {
  let peak = 0;
  for (const sample of samples) peak = Math.max(peak, Math.abs(sample));
  return peak;
}

/** Joins Float32Array chunks into one. */
function concatenate(chunks) {
  const out = new Float32Array(chunks.reduce((n, chunk) => n + chunk.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

/**
 * A mono 16-bit PCM WAV file of `samples` (floats in [-1, 1], clipped beyond) at `sampleRate` Hz.
 * Returns an ArrayBuffer of 44 + 2 * samples.length bytes.
 */
export function encodeWav(samples, sampleRate) {
  const bytesPerSample = 2;
  const dataBytes = samples.length * bytesPerSample;
  const buffer = new ArrayBuffer(WAV_HEADER_BYTES + dataBytes);
  const view = new DataView(buffer);
  const ascii = (offset, text) => {
    for (let i = 0; i < text.length; i += 1) view.setUint8(offset + i, text.charCodeAt(i));
  };
  ascii(0, "RIFF");
  view.setUint32(4, WAV_HEADER_BYTES - 8 + dataBytes, true);
  ascii(8, "WAVE");
  ascii(12, "fmt ");
  view.setUint32(16, 16, true); // size of the fmt chunk
  view.setUint16(20, 1, true); // PCM
  view.setUint16(22, 1, true); // mono
  view.setUint32(24, sampleRate, true);
  view.setUint32(28, sampleRate * bytesPerSample, true); // bytes per second
  view.setUint16(32, bytesPerSample, true); // block align
  view.setUint16(34, 8 * bytesPerSample, true); // bits per sample
  ascii(36, "data");
  view.setUint32(40, dataBytes, true);
  for (let i = 0; i < samples.length; i += 1) {
    const s = Math.max(-1, Math.min(1, samples[i]));
    view.setInt16(WAV_HEADER_BYTES + i * bytesPerSample, s < 0 ? s * 0x8000 : s * 0x7fff, true);
  }
  return buffer;
}
