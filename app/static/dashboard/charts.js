// Chart.js helpers shared by the views (Chart.js is the vendored UMD build: window.Chart).

export const CLASSES = (document.body.dataset.classes || "neutral,calm,happy,sad,angry,fearful,disgust,surprised").split(",");

// Distinct, colour-blind-friendlier hues (Okabe-Ito based) for the eight classes.
export const COLOURS = {
  neutral: "#6b7280",
  calm: "#009e73",
  happy: "#e69f00",
  sad: "#0072b2",
  angry: "#d55e00",
  fearful: "#56b4e9",
  disgust: "#cc79a7",
  surprised: "#8a7a00",
  silence: "#c4c8cf",
};
// Chart text and lines follow the page's colour scheme (light or dark: dashboard.css).
const cssVar = (name, fallback) => getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
export const TICK = cssVar("--chart-text", "#374151");
export const VALENCE_COLOUR = "#7c3aed";
export const AROUSAL_COLOUR = "#d55e00";

export const label = (name) => (name ? name.charAt(0).toUpperCase() + name.slice(1) : "—");
export const percent = (value) => (value == null ? "—" : `${Math.round(value * 100)} %`);
// Two kinds of percentage, worded apart so they are never confused: how sure the model is of
// one window ("84 % sure"), and how often an emotion came out on top ("in 35 % of readings").
export const confidenceText = (value) => (value == null ? "—" : `${percent(value)} sure`);
export const shareText = (value, of = "windows") => (value == null ? "—" : `in ${percent(value)} of ${of}`);
export const signed = (value) => (value == null ? "—" : (value >= 0 ? "+" : "−") + Math.abs(value).toFixed(2));

const charts = new Map();

/** Create (or replace) the chart on a canvas. */
export function makeChart(canvas, config) {
  const Chart = window.Chart;
  const existing = Chart.getChart(canvas);
  if (existing) existing.destroy();
  config.options = {
    responsive: true,
    maintainAspectRatio: false,
    // Charts redraw every second with live data: animating each update only blurs what changed.
    animation: false,
    ...config.options,
  };
  config.options.plugins = { legend: { position: "bottom", labels: { boxWidth: 12, color: TICK } }, ...config.options.plugins };
  Chart.defaults.borderColor = cssVar("--chart-grid", "rgba(0, 0, 0, 0.1)");
  const chart = new Chart(canvas, config);
  charts.set(canvas.id, chart);
  return chart;
}

export function lineOptions({ min, max, xTitle, yTitle } = {}) {
  return {
    interaction: { mode: "nearest", intersect: false },
    scales: {
      x: { title: { display: Boolean(xTitle), text: xTitle }, ticks: { maxTicksLimit: 8, color: TICK } },
      y: { min, max, title: { display: Boolean(yTitle), text: yTitle }, ticks: { color: TICK } },
    },
  };
}

export function probabilityDatasets() {
  return CLASSES.map((name) => ({
    label: label(name),
    data: [],
    borderColor: COLOURS[name],
    backgroundColor: COLOURS[name],
    borderWidth: 2,
    pointRadius: 0,
    tension: 0.25,
    spanGaps: false,
  }));
}

export function vaDatasets() {
  return [
    { label: "Valence", data: [], borderColor: VALENCE_COLOUR, backgroundColor: VALENCE_COLOUR, borderWidth: 2, pointRadius: 0, tension: 0.25 },
    { label: "Arousal", data: [], borderColor: AROUSAL_COLOUR, backgroundColor: AROUSAL_COLOUR, borderWidth: 2, pointRadius: 0, tension: 0.25, borderDash: [6, 3] },
  ];
}

export function doughnut(canvas, distribution) {
  const names = CLASSES.filter((name) => (distribution || {})[name] > 0);
  return makeChart(canvas, {
    type: "doughnut",
    data: {
      labels: names.map(label),
      datasets: [{ data: names.map((name) => distribution[name]), backgroundColor: names.map((name) => COLOURS[name]), borderWidth: 1 }],
    },
    options: {
      plugins: {
        tooltip: { callbacks: { label: (ctx) => `${ctx.label}: ${shareText(ctx.parsed, "readings")}` } },
      },
    },
  });
}

export function timeLabel(iso) {
  const date = new Date(iso);
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export function dateTimeLabel(iso) {
  const date = new Date(iso);
  return date.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}
