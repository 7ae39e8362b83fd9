// How numbers and measures are written on the page.

import { capitalise } from "./dom.js";

/**
 * A score in [0, 1] as a percentage, with enough digits to tell 99.98% from 99.99%:
 * three decimals within 1% of either end, one elsewhere.
 */
export function formatPercent(p) {
  if (p <= 0) return "0%";
  if (p >= 1) return "100%";
  const digits = p < 0.01 || p > 0.99 ? 3 : 1;
  return `${(100 * p).toFixed(digits)}%`;
}

/** A frequency as "80 Hz", "1.2 kHz" or "7 kHz". */
export function formatHz(hz) {
  if (hz < 1000) return `${Math.round(hz)} Hz`;
  return `${(hz / 1000).toFixed(1).replace(/\.0$/, "")} kHz`;
}

/** A frequency as a short axis tick: "80", "250", "1k", "2.5k". */
export function formatHzTick(hz) {
  if (hz < 1000) return `${Math.round(hz)}`;
  return `${(hz / 1000).toFixed(1).replace(/\.0$/, "")}k`;
}

// The three reasons for "unknown" in a few words (docs/quality.md).
export const UNKNOWN_IN_SHORT = {
  far: "too far from every voice this model knows",
  unsure: "it sounds between voices",
  poor_recording: "the recording is too poor to judge",
};

// The scripts written right to left, whose letters a name may hold.
const RIGHT_TO_LEFT_SCRIPTS = [
  "Hebrew",
  "Arabic",
  "Syriac",
  "Thaana",
  "Nko",
  "Samaritan",
  "Mandaic",
  "Adlam",
];
const RTL_LETTERS = RIGHT_TO_LEFT_SCRIPTS.map((script) => `\\p{Script=${script}}`).join("");
const RIGHT_TO_LEFT = new RegExp(`[${RTL_LETTERS}]`, "u");
// What `isolateRightToLeft` wraps in a server's text: a part in quotes (the server quotes the
// names it gives as Python does, 'עדה 2'), or else a stretch from a right-to-left letter through
// the letters of such scripts, marks, digits, spaces and "-_." after it, ending on no space or
// punctuation.
const RTL_NAME_CHARS = `${RTL_LETTERS}\\p{M}\\p{Nd}`;
const SERVER_NAME = new RegExp(
  `'([^'\\n]*)'|"([^"\\n]*)"|[${RTL_LETTERS}](?:[${RTL_NAME_CHARS} ._-]*[${RTL_NAME_CHARS}])?`,
  "gu",
);

/**
 * A name (a voice's, a file's) to set inside an English sentence: one with right-to-left
 * letters is wrapped in Unicode's first-strong isolate (U+2068 ... U+2069), so that its digits
 * and the sentence's punctuation keep their places: "0 takes of עדה 2: 5 more", not
 * "0 takes of 5 :2 עדה more".
 */
export function isolate(name) {
  return RIGHT_TO_LEFT.test(name) ? `\u2068${name}\u2069` : name;
}

/**
 * A server's text (an error's `detail`, a refused take's reason, a job's `detail`, a version's
 * `problem`...) to show on the page, each name in it that holds right-to-left letters isolated
 * as `isolate` isolates the page's own names: otherwise the punctuation and digits next to such
 * a name join its right-to-left run and jump sides ("'עדה', 'דוד'" shows its comma on the
 * wrong side of a quote, and "'2 עדה'" its digit on the other side of the name than elsewhere on
 * the page). A quoted name is isolated whole; right-to-left writing outside quotes, from its
 * first letter to its last letter or digit. The server's words stay plain for its other clients.
 */
export function isolateRightToLeft(text) {
  return text.replace(SERVER_NAME, (match, single, double) => {
    if (single !== undefined) return `'${isolate(single)}'`;
    if (double !== undefined) return `"${isolate(double)}"`;
    return isolate(match);
  });
}

/** "A", "A and B", "A, B and C". */
export function inWords(parts) {
  if (parts.length <= 1) return parts.join("");
  return `${parts.slice(0, -1).join(", ")} and ${parts[parts.length - 1]}`;
}

/** `inWords` of names, each isolated. */
export function listInWords(names) {
  return inWords(names.map(isolate));
}

/** A length of audio as "1.2 s" (or "1 min 5 s" from a minute up). */
export function formatSeconds(seconds) {
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

const SILENT_BACKGROUND_DB = 120; // speech this far above its background: none was recorded

/**
 * What a clip's `quality` (from /predict or an enrolment answer) says, in plain words: one
 * sentence per issue with what would help, or that the recording sounds clean. `[]` without one.
 * `cause` is a /predict answer's `unknown_cause`: a clip refused for a sign of its recording (a
 * telephone code, an echoing room), which is no issue, says that sign, never that it is clean.
 */
export function qualityInWords(quality, cause = null) {
  if (!quality) return [];
  const found = quality.issues.length === 0 && cause ? [cause] : quality.issues;
  if (found.length === 0) {
    // A clip under half a second is not judged for noise: its background, measured on so few
    // frames, is the quietest part of the voice, and may read as loud as the speech.
    // Past what any microphone and converter reach, the background is digital silence: no
    // recording is 145 dB above its own hiss.
    const snr = Math.round(quality.snr_db);
    const background =
      snr > SILENT_BACKGROUND_DB
        ? ", over digital silence"
        : snr > 0
          ? `, ${snr} dB above the background`
          : "";
    return [`The recording sounds clean: ${quality.speech_s.toFixed(1)} s of speech${background}.`];
  }
  return found.map((issue) => {
    const [problem, advice] = [issue.problem, issue.advice].map(isolateRightToLeft);
    return `${capitalise(problem)}: ${advice}.`;
  });
}

/**
 * What the server's check of a voice's takes (`takes` in a speaker or enrolment answer) says, in
 * plain words: a sentence for takes that differ as much as different voices do, one for takes
 * all from one sitting, then what would help. `[]` when neither applies, or without a check.
 */
export function takesInWords(takes) {
  if (!takes || !(takes.inconsistent || takes.one_sitting)) return [];
  const sentences = [];
  if (takes.inconsistent)
    sentences.push(
      "Your takes differ from one another about as much as two different voices do: " +
        "say the same words, the same way, in each take, and delete any take that is not you.",
    );
  if (takes.one_sitting) {
    const minutes = Math.max(1, Math.round(takes.minutes));
    sentences.push(
      `All ${takes.takes} takes come from one sitting (within ${minutes} ` +
        `${minutes === 1 ? "minute" : "minutes"}, at the same level and background): the model ` +
        "would know your voice only as it sounds right now.",
    );
  }
  sentences.push(
    "Record a few more takes later, at another time or in another room, to have your voice " +
      "named wherever you are.",
  );
  return sentences;
}
