// Bar charts drawn as SVG by the console itself: valid and denied uses per time bucket, stacked.
import { h } from "./dom.js";

const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  for (const child of children) node.append(child);
  return node;
}

/** Counts `events` (key.used) into buckets of `bucketMs`, from the first to the last event's bucket. */
export function bucketUses(events, bucketMs, maxBuckets) {
  const uses = events.filter((e) => e.event.type === "key.used");
  if (uses.length === 0) return [];
  const times = uses.map((e) => Date.parse(e.event.time));
  const last = Math.floor(Math.max(...times) / bucketMs) * bucketMs;
  const first = Math.max(Math.floor(Math.min(...times) / bucketMs) * bucketMs, last - (maxBuckets - 1) * bucketMs);
  const buckets = [];
  for (let t = first; t <= last; t += bucketMs) buckets.push({ start: t, valid: 0, denied: 0 });
  uses.forEach((e, i) => {
    const index = Math.floor((times[i] - first) / bucketMs);
    if (index < 0) return;
    if (e.event.data.outcome === "valid") buckets[index].valid += 1;
    else buckets[index].denied += 1;
  });
  return buckets;
}

/** A stacked bar chart of buckets ({start, valid, denied}); `label` formats a bucket's start. */
export function usesChart(title, buckets, label) {
  const width = 720, height = 200, left = 40, bottom = 24, top = 10;
  const max = Math.max(1, ...buckets.map((b) => b.valid + b.denied));
  const slot = (width - left) / Math.max(buckets.length, 1);
  const y = (n) => top + (height - top - bottom) * (1 - n / max);
  const chart = svg("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title });
  chart.append(svg("title", {}, title));
  chart.append(svg("line", { class: "axis", x1: left, y1: y(0), x2: width, y2: y(0) }));
  chart.append(svg("text", { x: 4, y: y(max) + 4 }, String(max)));
  chart.append(svg("text", { x: 4, y: y(0) }, "0"));
  buckets.forEach((b, i) => {
    const x = left + i * slot + 1;
    const w = Math.min(48, Math.max(1, slot - 2));
    const tip = `${label(b.start)}: ${b.valid} valid, ${b.denied} denied`;
    chart.append(svg("rect", { class: "valid", x, y: y(b.valid), width: w, height: y(0) - y(b.valid) }, svg("title", {}, tip)));
    chart.append(svg("rect", { class: "denied", x, y: y(b.valid + b.denied), width: w, height: y(b.valid) - y(b.valid + b.denied) }, svg("title", {}, tip)));
  });
  const every = Math.ceil(buckets.length / 8);
  buckets.forEach((b, i) => {
    if (i % every === 0) chart.append(svg("text", { x: left + i * slot, y: height - 6 }, label(b.start)));
  });
  return h("figure", {}, chart,
    h("figcaption", { class: "legend" }, h("span", { class: "valid" }, "valid"), " ", h("span", { class: "denied" }, "denied")));
}

export const hourLabel = (t) => new Date(t).toISOString().slice(11, 13) + ":00";
export const minuteLabel = (t) => new Date(t).toISOString().slice(11, 16);
