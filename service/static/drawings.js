// The two inline-SVG drawings: the clip's histogram and the network. Both are drawn at the
// pixel width they are shown at, so text stays readable from phone to desktop; colours come
// from classes styled in style.css ("push" is a positive signal, "hold" a negative one).

import { formatHz, formatHzTick, formatPercent } from "./format.js";

const SVG_NS = "http://www.w3.org/2000/svg";
const Z_FULL = 2; // a standardised input this far from the training mean gets full colour
const TICK_HZ = [100, 200, 500, 1000, 2000, 5000]; // frequencies marked on the axes, Hz
const SPEAKER_COLOURS = 6; // style.css defines .speaker-0 to .speaker-5

/** The colour class of the label at `index` in the model's label order. */
export function speakerClass(index) {
  return `speaker-${index % SPEAKER_COLOURS}`;
}

/** A new SVG element with attributes, appended to `parent` when given. */
function svgElement(name, attributes = {}, parent = null) {
  const element = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  if (parent) parent.append(element);
  return element;
}

/** A new SVG <text> element holding `text`. */
function svgText(attributes, text, parent) {
  const element = svgElement("text", attributes, parent);
  element.textContent = text;
  return element;
}

function addTitle(element, text) {
  svgElement("title", {}, element).textContent = text;
}

function resetSvg(svg, width, height, label) {
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.setAttribute("aria-label", label);
}

/** "push" or "hold" by the sign of `value`, and an opacity in [0.25, 1] by its size. */
function signedShade(value, full) {
  return {
    class: value >= 0 ? "push" : "hold",
    "fill-opacity": (0.25 + 0.75 * Math.min(Math.abs(value) / full, 1)).toFixed(3),
  };
}

/**
 * Where frequency `hz` falls among the increasing `bandCentres`, as a fractional band index
 * interpolated on a log scale, or null outside them.
 */
function bandPosition(bandCentres, hz) {
  const upper = bandCentres.findIndex((centre) => centre >= hz);
  if (upper < 0 || (upper === 0 && bandCentres[0] > hz)) return null;
  if (upper === 0) return 0;
  const [low, high] = [bandCentres[upper - 1], bandCentres[upper]];
  return upper - 1 + Math.log(hz / low) / Math.log(high / low);
}

/** Round frequencies within the bands and their positions `at(index)`, at least `gap` px apart. */
function frequencyTicks(bandCentres, at, gap) {
  const ticks = [];
  for (const hz of TICK_HZ) {
    const index = bandPosition(bandCentres, hz);
    if (index === null) continue;
    const previous = ticks[ticks.length - 1];
    if (previous === undefined || at(index) - previous.position >= gap) {
      ticks.push({ hz, position: at(index) });
    }
  }
  return ticks;
}

const HISTOGRAM_HEIGHT = 230; // px, of the full drawing
const AXES_MARGIN = { top: 24, right: 6, bottom: 40, left: 38 }; // px, room for the axes
const THUMBNAIL_MARGIN = { top: 2, right: 1, bottom: 2, left: 1 }; // px

/** Where the bars of `histogram` (dB) go in a drawing `width` x `height` px. */
function histogramScale(histogram, width, height, margin) {
  const low = Math.floor(Math.min(...histogram) / 10) * 10;
  const high = Math.ceil(Math.max(...histogram) / 10) * 10;
  const plotWidth = width - margin.left - margin.right;
  const plotHeight = height - margin.top - margin.bottom;
  const slot = plotWidth / histogram.length;
  return {
    low,
    high,
    slot,
    plotWidth,
    xOf: (i) => margin.left + (i + 0.5) * slot,
    yOf: (db) => margin.top + ((high - db) / Math.max(high - low, 1)) * plotHeight,
  };
}

function drawDbGrid(svg, scale, width, margin) {
  const { low, high, yOf } = scale;
  const step = (high - low) / 10 > 6 ? 20 : 10;
  const grid = svgElement("g", { class: "axis" }, svg);
  for (let db = low; db <= high; db += step) {
    svgElement(
      "line",
      { x1: margin.left, x2: width - margin.right, y1: yOf(db), y2: yOf(db), class: "grid" },
      grid,
    );
    svgText({ x: margin.left - 6, y: yOf(db) + 4, "text-anchor": "end" }, db, grid);
  }
  svgText({ x: margin.left - 6, y: 10, "text-anchor": "end", class: "unit" }, "dB", grid);
}

/** One bar per band; shaded by the standardised `inputs` when given, else plain. */
function drawBars(svg, scale, histogram, inputs, centres) {
  const { low, slot, xOf, yOf } = scale;
  const bars = svgElement("g", { class: "bars" }, svg);
  histogram.forEach((db, i) => {
    const bar = svgElement(
      "rect",
      {
        x: (xOf(i) - slot * 0.4).toFixed(2),
        width: (slot * 0.8).toFixed(2),
        y: yOf(db).toFixed(2),
        height: Math.max(yOf(low) - yOf(db), 1).toFixed(2),
        rx: Math.min(2, slot * 0.2).toFixed(2),
        ...(inputs ? signedShade(inputs[i], Z_FULL) : { class: "level" }),
      },
      bars,
    );
    const compared = inputs
      ? `, ${inputs[i] >= 0 ? "louder" : "quieter"} than the average training clip`
      : "";
    addTitle(bar, `${formatHz(centres[i])}: ${db.toFixed(1)} dB${compared}`);
  });
}

function drawFrequencyAxis(svg, scale, centres, width, height, margin) {
  const { low, plotWidth, xOf, yOf } = scale;
  const axis = svgElement("g", { class: "axis" }, svg);
  svgElement(
    "line",
    { x1: margin.left, x2: width - margin.right, y1: yOf(low), y2: yOf(low), class: "baseline" },
    axis,
  );
  for (const { hz, position: x } of frequencyTicks(centres, xOf, 30)) {
    svgElement("line", { x1: x, x2: x, y1: yOf(low), y2: yOf(low) + 5, class: "baseline" }, axis);
    svgText({ x, y: yOf(low) + 18, "text-anchor": "middle" }, formatHzTick(hz), axis);
  }
  const caption = { x: margin.left + plotWidth / 2, y: height - 4, "text-anchor": "middle" };
  svgText({ ...caption, class: "unit" }, "frequency (Hz): low pitches left, high right", axis);
}

/**
 * The clip's histogram as bars, low frequencies left; each bar shaded by the band's
 * standardised input (how far from the average training clip it is) when `explain.inputs`
 * is given, else in one colour.
 *
 * `explain` is the `explain` object of a /predict answer, or `{histogram, band_centres_hz}`.
 * `thumbnail` draws the bars alone, `height` px high, for a small card.
 */
export function drawHistogram(svg, width, explain, { thumbnail = false, height = 0 } = {}) {
  const { histogram, inputs = null, band_centres_hz: centres } = explain;
  const tall = height || HISTOGRAM_HEIGHT;
  const margin = thumbnail ? THUMBNAIL_MARGIN : AXES_MARGIN;
  const scale = histogramScale(histogram, width, tall, margin);
  const loudest = histogram.indexOf(Math.max(...histogram));
  resetSvg(
    svg,
    width,
    tall,
    `Histogram of ${histogram.length} frequency bands from ${formatHz(centres[0])} to ` +
      `${formatHz(centres[centres.length - 1])}; the loudest band is ` +
      `${formatHz(centres[loudest])} at ${histogram[loudest].toFixed(0)} dB.`,
  );
  if (!thumbnail) drawDbGrid(svg, scale, width, margin);
  drawBars(svg, scale, histogram, inputs, centres);
  if (!thumbnail) drawFrequencyAxis(svg, scale, centres, width, tall, margin);
}

const HIDDEN_STEP = 40; // px between hidden neurons' centres at the closest: 17 px rings apart

/**
 * Pixel positions of the nodes of a `sizes = [inputs, hidden, outputs]` network. The hidden
 * column holds as many neurons as fit legibly: all of them, or `hidden.length < sizes[1]`.
 */
function networkLayout(sizes, width) {
  const [nIn, nHidden, nOut] = sizes;
  const top = 44; // room for the column titles
  const rowGap = 8;
  const plotHeight = (nIn - 1) * rowGap;
  const height = top + plotHeight + 16;
  const column = (n, x, gap) => {
    const step = n > 1 ? Math.min(gap, plotHeight / (n - 1)) : 0;
    const start = top + (plotHeight - step * (n - 1)) / 2;
    return Array.from({ length: n }, (_, i) => ({ x, y: start + i * step }));
  };
  const xIn = 54;
  const xOut = width - 104; // room for "Name 99.999%" on the right
  const hiddenRoom = Math.floor(plotHeight / HIDDEN_STEP) + 1;
  return {
    width,
    height,
    titleY: 18,
    inputs: column(nIn, xIn, rowGap),
    hidden: column(Math.min(nHidden, hiddenRoom), (xIn + xOut) / 2, 72),
    outputs: column(nOut, xOut, 120),
  };
}

/**
 * The hidden neurons a drawing with room for `room` of them shows, in their own order: all of
 * them when they fit, else those carrying the most signal to the outputs (the sum of their
 * outgoing weights' sizes, times their activation `hidden[j]` after a clip).
 *
 * `w2` is the output kernel (hidden × outputs); `hidden` the activations, or null.
 */
export function shownHidden(w2, hidden, room) {
  const all = w2.map((_, j) => j);
  if (all.length <= room) return all;
  const signal = (j) => w2[j].reduce((sum, w) => sum + Math.abs(w), 0) * (hidden ? hidden[j] : 1);
  const strongest = [...all].sort((a, b) => signal(b) - signal(a) || a - b).slice(0, room);
  return strongest.sort((a, b) => a - b);
}

/**
 * Lines from every node of `from` to every node of `to`, coloured by the sign of
 * `strength(i, j)` and sized by its share of the strongest; `idle` lines are fainter.
 */
function drawConnections(parent, from, to, strength, idle) {
  const edges = [];
  from.forEach((a, i) => to.forEach((b, j) => edges.push({ a, b, s: strength(i, j) })));
  const strongest = Math.max(...edges.map((e) => Math.abs(e.s)), 1e-12);
  edges.sort((e, f) => Math.abs(e.s) - Math.abs(f.s)); // strongest drawn last, on top
  for (const { a, b, s } of edges) {
    const share = Math.abs(s) / strongest;
    svgElement(
      "line",
      {
        x1: a.x,
        y1: a.y,
        x2: b.x,
        y2: b.y,
        class: `edge ${s >= 0 ? "push" : "hold"}`,
        "stroke-width": (0.4 + 3.2 * share).toFixed(2),
        "stroke-opacity": ((idle ? 0.04 : 0.06) + (idle ? 0.3 : 0.85) * share).toFixed(3),
      },
      parent,
    );
  }
}

/** What the network drawing shows, in words, for screen readers. */
function networkDescription(model, sizes, shown, hidden, scores) {
  const [nIn, nHidden, nOut] = sizes;
  const drawn =
    shown.length < nHidden ? ` (the ${shown.length} carrying the most signal are drawn)` : "";
  if (!hidden) {
    return (
      `Network diagram: ${nIn} inputs, ${nHidden} hidden neurons${drawn} and ${nOut} outputs ` +
      `(${model.labels.join(", ")}), showing the learned weights before any clip.`
    );
  }
  const outputs = model.labels.map((label, k) => `${label} ${formatPercent(scores[k])}`);
  const activations = shown.map((j) => (drawn ? `neuron ${j + 1} ` : "") + hidden[j].toFixed(2));
  return (
    `Network diagram: ${nIn} inputs, ${nHidden} hidden neurons${drawn} with activations ` +
    `${activations.join(", ")}, and ${nOut} outputs: ${outputs.join(", ")}.`
  );
}

function drawInputs(svg, nodes, centres, inputs) {
  const group = svgElement("g", { class: "nodes inputs" }, svg);
  nodes.forEach(({ x, y }, i) => {
    const shade = inputs ? signedShade(inputs[i], Z_FULL) : { class: "idle" };
    const node = svgElement("circle", { cx: x, cy: y, r: 3.2, ...shade }, group);
    const value = inputs ? `: input ${inputs[i].toFixed(2)}` : "";
    addTitle(node, `${formatHz(centres[i])} band${value}`);
  });
  const [first, second] = nodes;
  const yOfBand = (index) => first.y + index * (second.y - first.y);
  for (const { hz, position: y } of frequencyTicks(centres, yOfBand, 18)) {
    const tick = { x1: first.x - 8, x2: first.x - 5, y1: y, y2: y, class: "baseline" };
    svgElement("line", tick, group);
    const label = { x: first.x - 11, y: y + 3.5, "text-anchor": "end", class: "tick" };
    svgText(label, formatHz(hz), group);
  }
}

function drawHidden(svg, nodes, shown, hidden) {
  const layer = svgElement("g", { class: "nodes hidden-layer" }, svg);
  nodes.forEach(({ x, y }, n) => {
    const j = shown[n];
    const group = svgElement("g", {}, layer);
    svgElement("circle", { cx: x, cy: y, r: 17, class: "ring" }, group);
    if (hidden) {
      const fill = { cx: x, cy: y, r: 17, class: "fill", "fill-opacity": hidden[j].toFixed(3) };
      svgElement("circle", fill, group);
      const label = {
        x,
        y: y + 4,
        "text-anchor": "middle",
        class: hidden[j] > 0.55 ? "on" : "off",
      };
      svgText(label, hidden[j].toFixed(2), group);
    }
    const value = hidden ? `: activation ${hidden[j].toFixed(3)}` : "";
    addTitle(group, `hidden neuron ${j + 1}${value}`);
  });
}

function drawOutputs(svg, nodes, labels, scores) {
  const layer = svgElement("g", { class: "nodes outputs" }, svg);
  const winner = scores ? scores.indexOf(Math.max(...scores)) : -1;
  // Many voices lie closer together than two 20 px rings: smaller rings then, 4 px apart.
  const r = nodes.length > 1 ? Math.min(20, (nodes[1].y - nodes[0].y - 4) / 2) : 20;
  nodes.forEach(({ x, y }, k) => {
    const classes = `${speakerClass(k)}${k === winner ? " winner" : ""}`;
    const group = svgElement("g", { class: classes }, layer);
    svgElement("circle", { cx: x, cy: y, r, class: "ring" }, group);
    if (scores) {
      const fill = { cx: x, cy: y, r, class: "fill", "fill-opacity": scores[k].toFixed(3) };
      svgElement("circle", fill, group);
      svgText({ x: x + 28, y: y - 2, class: "name" }, labels[k], group);
      svgText({ x: x + 28, y: y + 15, class: "score" }, formatPercent(scores[k]), group);
    } else {
      svgText({ x: x + 28, y: y + 5, class: "name" }, labels[k], group);
    }
    addTitle(group, scores ? `${labels[k]}: ${formatPercent(scores[k])}` : labels[k]);
  });
}

/**
 * The 60-H-N network: weights from `model` (a GET /model answer) and, after a clip, its
 * activations. Each line's colour and width show weight × activation of the node it leaves:
 * the share of the signal it carries for this clip. Without a clip the lines show the
 * weights alone, faintly. A hidden layer too wide to draw legibly shows the neurons that carry
 * the most signal (`shownHidden`), its title saying how many of how many.
 *
 * `answer` is a /predict answer with `explain`, or null.
 */
export function drawNetwork(svg, width, model, answer) {
  const { hidden_kernel: w1, output_kernel: w2 } = model.weights;
  const sizes = [w1.length, w1[0].length, model.labels.length];
  const layout = networkLayout(sizes, width);
  const inputs = answer ? answer.explain.inputs : null;
  const hidden = answer ? answer.explain.hidden : null;
  const scores = answer ? model.labels.map((label) => answer.scores[label]) : null;
  const shown = shownHidden(w2, hidden, layout.hidden.length);
  const description = networkDescription(model, sizes, shown, hidden, scores);
  resetSvg(svg, layout.width, layout.height, description);

  const titles = svgElement("g", { class: "column-title" }, svg);
  const columns = [
    [layout.inputs, `${sizes[0]} inputs`],
    [layout.hidden, `${shown.length < sizes[1] ? `${shown.length} of ` : ""}${sizes[1]} hidden`],
    [layout.outputs, `${sizes[2]} outputs`],
  ];
  for (const [nodes, text] of columns) {
    const title = { x: nodes[0].x, y: layout.titleY, "text-anchor": "middle" };
    svgText(title, text, titles);
  }

  const edges = svgElement("g", { class: "edges" }, svg);
  const idle = !answer;
  const inputSignal = (i, n) => w1[i][shown[n]] * (inputs ? inputs[i] : 1);
  const hiddenSignal = (n, k) => w2[shown[n]][k] * (hidden ? hidden[shown[n]] : 1);
  drawConnections(edges, layout.inputs, layout.hidden, inputSignal, idle);
  drawConnections(edges, layout.hidden, layout.outputs, hiddenSignal, idle);

  drawInputs(svg, layout.inputs, model.band_centres_hz, inputs);
  drawHidden(svg, layout.hidden, shown, hidden);
  drawOutputs(svg, layout.outputs, model.labels, scores);
}

const TIMELINE_HEIGHT = 64; // px: the bar and its time axis

/** The class of one hop of a live timeline: its voice's colour, unknown, or silence. */
export function hopClass(hop, labels) {
  if (!hop.speech) return "hop silence";
  if (hop.unknown) return "hop unknown";
  const index = labels.indexOf(hop.speaker);
  return index >= 0 ? `hop ${speakerClass(index)}` : "hop unknown";
}

/**
 * The last `shownS` seconds of a live stream's `hops` (answers of /listen, oldest first) as a
 * bar scrolling left, one rectangle per hop from `t - hop / 2` to `t + hop / 2`, newest at the
 * right edge; each carries its `data-t` and `data-speaker` ("" for silence).
 */
export function drawTimeline(svg, width, hops, labels, shownS) {
  const barHeight = TIMELINE_HEIGHT - 22;
  const now = hops.length ? hops[hops.length - 1].t : 0;
  const hopS = hops.length > 1 ? hops[1].t - hops[0].t : 0.25;
  const x = (t) => width - ((now + hopS / 2 - t) / shownS) * width;
  const voices = new Set(hops.filter((h) => h.speech).map((h) => h.speaker));
  resetSvg(
    svg,
    width,
    TIMELINE_HEIGHT,
    `Who spoke in the last ${shownS} s: ${voices.size ? [...voices].join(", ") : "nobody yet"}.`,
  );
  svgElement("rect", { class: "timeline-track", x: 0, y: 0, width, height: barHeight }, svg);
  for (const hop of hops) {
    const left = Math.max(x(hop.t - hopS / 2), 0);
    const rect = svgElement(
      "rect",
      { class: hopClass(hop, labels), x: left, y: 0, width: Math.max(x(hop.t + hopS / 2) - left, 0),
        height: barHeight, "data-t": hop.t, "data-speaker": hop.speech ? hop.speaker : "" },
      svg,
    );
    addTitle(rect, `${hop.t.toFixed(2)} s: ${hop.speech ? hop.speaker : "silence"}`);
  }
  for (let ago = 0; ago <= shownS; ago += 10) {
    const tickX = Math.min(Math.max(width - (ago / shownS) * width, 12), width - 12);
    svgText({ x: tickX, y: TIMELINE_HEIGHT - 4, "text-anchor": "middle", class: "unit" },
      ago === 0 ? "now" : `${ago} s ago`, svg);
  }
}
