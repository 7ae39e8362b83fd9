// Talking to the server: JSON requests with the API key the page holds, and errors that carry
// the server's own words (its `detail`) and, where it sent one, the whole answer.

import { isolateRightToLeft } from "./format.js";

export const KEY_STORAGE = "voiceid.apiKey";
// What the person can do, after the server's words, where those leave it open.
const TOO_BIG =
  "a few seconds of speech are enough: choose a shorter clip, or a compressed one " +
  "(FLAC, OGG or MP3)";
const UNDECODABLE =
  "choose a recording in WAV, FLAC, OGG or MP3, or record one with the microphone";
export const UNREACHABLE = "check that it is still running, then try again";
const ADVICE = { 413: TOO_BIG, 415: UNDECODABLE };

export class HttpError extends Error {
  /** `status` 0 means the server could not be reached; `body` is the parsed answer, if any. */
  constructor(status, detail, body = null) {
    super(detail);
    this.status = status;
    this.body = body;
  }
}

/** The `detail` of an error answer as one line of text. */
function detailOf(body, response) {
  const detail = body && body.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail))
    return detail.map((item) => item.msg || JSON.stringify(item)).join("; ");
  return `the server answered ${response.status} ${response.statusText}`.trim();
}

async function errorOf(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: the status line says what happened
  }
  const detail = withAdvice(response.status, detailOf(body, response));
  return new HttpError(response.status, detail, body);
}

/**
 * The server's `detail` of a refusal with `status`, its right-to-left names isolated, then what
 * would help where it says not.
 */
export function withAdvice(status, detail) {
  const words = isolateRightToLeft(detail);
  return ADVICE[status] ? `${words}; ${ADVICE[status]}` : words;
}

/** The JSON answer to a request; rejects with an HttpError for a network failure or non-2xx. */
export async function requestJson(url, options = {}) {
  let response;
  try {
    response = await fetch(url, options);
  } catch (error) {
    throw new HttpError(0, `could not reach the server (${error.message}): ${UNREACHABLE}`);
  }
  if (!response.ok) throw await errorOf(response);
  return response.json();
}

export function storedKey() {
  return sessionStorage.getItem(KEY_STORAGE) || "";
}

/** The API key header, when the page has a key. */
export function keyHeaders() {
  const key = storedKey();
  return key ? { "X-API-Key": key } : {};
}

/** `requestJson` with the API key: `api("/models")`, `api(url, { method: "POST", body })`. */
export function api(url, { method = "GET", body = undefined } = {}) {
  return requestJson(url, { method, body, headers: keyHeaders() });
}

/** A path segment for a speaker's name (which may hold spaces and non-ASCII letters). */
export function speakerPath(name) {
  return `/speakers/${encodeURIComponent(name)}`;
}
