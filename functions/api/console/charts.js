// Small charts drawn by hand: SVG column charts, HTML bar lists and a stacked bar. No library, no canvas: the
// charts scale with the page, are readable by screen readers (titles, a table-like list) and print.

import { h, label, num, pct, s } from "./ui.js";

/**
 * Vertical columns. data: [{label, value, title?, className?}]. Options: height, marker {at (0..1 of the x axis),
 * text} drawn as a dashed vertical line (a threshold), caption.
 */
export function columnChart(data, { height = 180, marker, className, ariaLabel } = {}) {
  const width = 560;
  const pad = { top: 22, right: 8, bottom: 28, left: 36 };
  const innerW = width - pad.left - pad.right;
  const innerH = height - pad.top - pad.bottom;
  const max = Math.max(1, ...data.map((d) => d.value));
  const ticks = niceTicks(max);
  const top = ticks[ticks.length - 1];
  const step = innerW / Math.max(1, data.length);
  const barW = Math.min(64, Math.max(4, step * 0.72));
  const y = (v) => pad.top + innerH - (v / top) * innerH;
  const svg = s("svg", {
    class: ["chart", "chart-columns", className],
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label": ariaLabel || "chart",
    preserveAspectRatio: "xMidYMid meet",
  });
  for (const t of ticks) {
    svg.append(
      s("line", { class: "grid", x1: pad.left, x2: width - pad.right, y1: y(t), y2: y(t) }),
      s("text", { class: "tick", x: pad.left - 6, y: y(t) + 4, "text-anchor": "end" }, num(t)),
    );
  }
  data.forEach((d, i) => {
    const x = pad.left + i * step + (step - barW) / 2;
    const barH = Math.max(d.value > 0 ? 2 : 0, (d.value / top) * innerH);
    svg.append(
      s(
        "rect",
        { class: ["bar", d.className], x, y: pad.top + innerH - barH, width: barW, height: barH, rx: 3, dataset: { value: d.value } },
        s("title", {}, d.title || `${d.label}: ${num(d.value)}`),
      ),
      s("text", { class: "axis-label", x: x + barW / 2, y: height - 10, "text-anchor": "middle" }, d.label),
    );
    if (d.value > 0) {
      svg.append(s("text", { class: "bar-value", x: x + barW / 2, y: pad.top + innerH - barH - 4, "text-anchor": "middle" }, num(d.value)));
    }
  });
  if (marker) {
    const x = pad.left + marker.at * innerW;
    svg.append(
      s("line", { class: "marker", x1: x, x2: x, y1: pad.top - 16, y2: pad.top + innerH }),
      s("text", { class: "marker-label", x: x - 4, y: pad.top - 10, "text-anchor": "end" }, marker.text),
    );
  }
  return svg;
}

function niceTicks(max) {
  const rough = max / 4;
  const magnitude = 10 ** Math.floor(Math.log10(rough || 1));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((m) => m >= rough) || magnitude * 10;
  const stepInt = Math.max(1, Math.round(step));
  const ticks = [];
  for (let t = 0; t <= max + stepInt - 1; t += stepInt) ticks.push(t);
  if (ticks[ticks.length - 1] < max) ticks.push(ticks[ticks.length - 1] + stepInt);
  return ticks;
}

/**
 * Horizontal bars with their label and value: items [{label, value, share?, hint?}], longest first as given.
 * `format(item)` gives the value's text.
 */
export function barList(items, { className, format, max } = {}) {
  const top = max || Math.max(1, ...items.map((i) => i.value));
  return h(
    "ol",
    { class: ["bar-list", className] },
    items.map((item) =>
      h(
        "li",
        { class: "bar-row", title: item.hint || `${item.label}: ${num(item.value)}` },
        h("span", { class: "bar-label" }, item.label),
        h("span", { class: "bar-track" }, h("span", { class: "bar-fill", style: { width: `${(item.value / top) * 100}%` } })),
        h("span", { class: "bar-number" }, format ? format(item) : num(item.value)),
      ),
    ),
  );
}

/** One bar split by status, with a legend: segments [{key, value}], in order. */
export function stackedBar(segments, { className } = {}) {
  const total = segments.reduce((sum, seg) => sum + seg.value, 0);
  const bar = h("div", { class: "stacked", role: "img", "aria-label": segments.map((seg) => `${seg.key} ${seg.value}`).join(", ") });
  for (const seg of segments) {
    if (!seg.value) continue;
    bar.append(
      h("span", {
        class: ["stacked-part", `status-fill-${seg.key}`],
        style: { flexGrow: String(seg.value) },
        title: `${label(seg.key)}: ${num(seg.value)} (${pct(seg.value / total)})`,
        dataset: { status: seg.key },
      }),
    );
  }
  if (!total) bar.append(h("span", { class: "stacked-part stacked-empty" }));
  const legend = h(
    "ul",
    { class: "legend" },
    segments.map((seg) =>
      h(
        "li",
        { class: ["legend-item", !seg.value && "legend-zero"], dataset: { status: seg.key } },
        h("span", { class: ["swatch", `status-fill-${seg.key}`] }),
        h("span", { class: "legend-label" }, label(seg.key)),
        h("span", { class: "legend-value" }, num(seg.value)),
      ),
    ),
  );
  return h("div", { class: ["stacked-chart", className] }, bar, legend);
}
