// The model's versions (GET /models), each but the served one with a button that serves it
// (POST /models/{version}/activate): rolling back or forward. And the voices (GET /speakers):
// the speaker store's, which can be deleted, and the served model's.

import { api, speakerPath } from "./api.js";
import { $, button, element, messages } from "./dom.js";
import {
  formatPercent,
  formatSeconds,
  isolate,
  isolateRightToLeft,
  listInWords,
} from "./format.js";
import { SPEAKER_REMOVED, STORE_CHANGED } from "./teach.js";

const ui = {
  versions: $("versions-list"),
  speakers: $("speakers-list"),
  speakersEmpty: $("speakers-empty"),
};
const { say, showError, clear: clearMessages } = messages(
  $("versions-status"),
  $("versions-error"),
);

const state = {
  hooks: null, // from app.js
  focusVersion: null, // the version whose item takes the focus once listed (it was activated)
};

function failed(error, what, retry) {
  state.hooks.reportFailure(error, { what, retry, showError });
}

// ---- versions ------------------------------------------------------------------------------

function versionFacts(version) {
  const facts = [`knows ${listInWords(version.labels)}`];
  if (version.created) {
    const how = version.source === "trained" ? "trained here" : "configured";
    facts.unshift(`${how}, ${new Date(version.created).toLocaleString()}`);
  }
  const accuracy = version.metrics && version.metrics.val_accuracy;
  if (typeof accuracy === "number") facts.push(`validation accuracy ${formatPercent(accuracy)}`);
  return facts.join(" · ");
}

function versionItem(version) {
  const item = element("li", `version${version.active ? " active" : ""}`);
  item.tabIndex = -1; // focused once activated, since its button goes
  item.dataset.version = version.version;
  const head = element("p", "version-head");
  // Isolated: the version after it would join a right-to-left name's run.
  const name = element("strong", "", isolate(version.name));
  head.append(name, " ", element("code", "", version.version));
  if (version.active) head.append(" ", element("span", "badge", "serving"));
  item.append(head, element("p", "version-facts", versionFacts(version)));
  if (version.problem) {
    // Damaged on disk since it was made: activating it would be refused with these words.
    const problem = `Does not load: ${isolateRightToLeft(version.problem)}`;
    item.append(element("p", "version-problem", problem));
  } else if (!version.active) {
    const label = `Activate version ${version.version} (${isolate(version.name)})`;
    item.append(button("Activate", "button secondary small", () => activate(version), label));
  }
  return item;
}

async function loadVersions() {
  let versions;
  try {
    ({ versions } = await api("/models"));
  } catch (error) {
    failed(error, "list the model's versions", loadVersions);
    return;
  }
  ui.versions.replaceChildren(...versions.map(versionItem));
  const focus = ui.versions.querySelector(`[data-version="${state.focusVersion}"]`);
  if (focus) focus.focus();
  state.focusVersion = null;
}

async function activate(version) {
  clearMessages();
  say(`Activating version ${version.version}…`);
  let entry;
  try {
    entry = await api(`/models/${encodeURIComponent(version.version)}/activate`, {
      method: "POST",
    });
  } catch (error) {
    say("");
    failed(error, `activate version ${version.version}`, () => activate(version));
    return;
  }
  state.hooks.keyWorked(ui.versions);
  say(`Now serving version ${entry.version}, which knows: ${listInWords(entry.labels)}.`);
  state.focusVersion = entry.version;
  state.hooks.reloadModel(); // which lists the versions again
}

// ---- voices --------------------------------------------------------------------------------

function speakerFacts(speaker) {
  const facts = [speaker.in_model ? "known to the served model" : "not in the served model"];
  if (speaker.in_store) {
    const takes = `${speaker.clips} ${speaker.clips === 1 ? "take" : "takes"}`;
    facts.unshift(`${takes}, ${formatSeconds(speaker.seconds)}`);
  }
  return facts.join(" · ");
}

function speakerItem(speaker) {
  const item = element("li", "speaker");
  const text = element("p", "speaker-text");
  // Isolated: the count of takes after it would join a right-to-left name's run.
  text.append(element("strong", "", isolate(speaker.name)), " ", speakerFacts(speaker));
  item.append(text);
  if (speaker.in_store) {
    const label = `Delete ${isolate(speaker.name)}'s takes`;
    item.append(button("Delete", "button secondary small", () => deleteSpeaker(speaker), label));
  }
  return item;
}

async function loadSpeakers() {
  let speakers;
  try {
    ({ speakers } = await api("/speakers"));
  } catch (error) {
    failed(error, "list the voices", loadSpeakers);
    return;
  }
  ui.speakers.replaceChildren(...speakers.map(speakerItem));
  ui.speakersEmpty.hidden = speakers.length > 0;
}

async function deleteSpeaker(speaker) {
  const { clips } = speaker;
  const name = isolate(speaker.name); // in sentences only: the path takes speaker.name
  if (!window.confirm(`Delete all ${clips} takes of ${name}?`)) return;
  clearMessages();
  try {
    await api(speakerPath(speaker.name), { method: "DELETE" });
  } catch (error) {
    failed(error, `delete ${name}`, () => deleteSpeaker(speaker));
    return;
  }
  const forget = speaker.in_model ? ` Train again for a model that no longer knows ${name}.` : "";
  say(`Deleted the takes of ${name}.${forget}`);
  ui.speakers.closest("section").querySelector("h2").focus(); // the item's button has gone
  document.dispatchEvent(new CustomEvent(SPEAKER_REMOVED, { detail: speaker.name }));
  loadSpeakers();
}

// ---- start ---------------------------------------------------------------------------------

/** Lists versions and voices with each model loaded, and voices again as takes change. */
export function startVersions(hooks) {
  state.hooks = hooks;
  hooks.onModelLoaded(() => {
    loadVersions();
    loadSpeakers();
  });
  document.addEventListener(STORE_CHANGED, loadSpeakers);
}
