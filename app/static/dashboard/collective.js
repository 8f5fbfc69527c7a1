// Collective view: the current snapshot and the last hour (REST), then live `collective` events.
import { api } from "./api.js";
import { AROUSAL_COLOUR, CLASSES, COLOURS, VALENCE_COLOUR, label, lineOptions, makeChart, percent, shareText, signed, timeLabel, TICK } from "./charts.js";
import { getSocket, subscribe } from "./socket.js";

const $ = (id) => document.getElementById(id);
const HISTORY_POINTS = 360;
let initialised = false;
let historyChart;
let distributionChart;
let updates = 0;

function render(snapshot) {
  $("collective-users").textContent = String(snapshot.active_users);
  $("collective-sessions").textContent = String(snapshot.active_sessions);
  $("collective-readings").textContent = String(snapshot.reading_count);
  $("collective-hidden").hidden = !snapshot.hidden;
  if (snapshot.hidden) {
    $("collective-dominant").textContent = snapshot.active_users ? "Too few people to show" : "Nobody is sharing right now";
  } else {
    $("collective-dominant").textContent = snapshot.dominant
      ? `${label(snapshot.dominant)} · ${shareText(snapshot.distribution[snapshot.dominant], "readings")}`
      : "Quiet";
  }
  $("collective-valence").textContent = signed(snapshot.mean_valence);
  $("collective-arousal").textContent = signed(snapshot.mean_arousal);
  const trend = snapshot.trend;
  $("collective-trend").textContent = trend ? `valence ${trend.direction} (${signed(trend.valence_delta)})` : "—";
  const distribution = snapshot.distribution || {};
  distributionChart.data.datasets[0].data = CLASSES.map((name) => distribution[name] || 0);
  distributionChart.update();
}

function addPoint(snapshot) {
  const data = historyChart.data;
  data.labels.push(timeLabel(snapshot.window_end || snapshot.created_at));
  data.datasets[0].data.push(snapshot.mean_valence);
  data.datasets[1].data.push(snapshot.mean_arousal);
  data.datasets[2].data.push(snapshot.active_users);
  while (data.labels.length > HISTORY_POINTS) {
    data.labels.shift();
    data.datasets.forEach((dataset) => dataset.data.shift());
  }
  historyChart.update();
}

function onCollective(snapshot) {
  updates += 1;
  $("view-collective").dataset.updates = String(updates);
  $("collective-status").textContent = `Live · updated ${timeLabel(snapshot.created_at)}`;
  render(snapshot);
  addPoint(snapshot);
}

function charts() {
  distributionChart = makeChart($("collective-distribution"), {
    type: "bar",
    data: {
      labels: CLASSES.map(label),
      datasets: [{ label: "Share", data: CLASSES.map(() => 0), backgroundColor: CLASSES.map((name) => COLOURS[name]) }],
    },
    options: {
      indexAxis: "y",
      plugins: { legend: { display: false }, tooltip: { callbacks: { label: (ctx) => shareText(ctx.parsed.x, "readings") } } },
      scales: { x: { min: 0, max: 1, ticks: { callback: (v) => percent(v), color: TICK } }, y: { ticks: { color: TICK } } },
    },
  });
  historyChart = makeChart($("collective-history"), {
    type: "line",
    data: {
      labels: [],
      datasets: [
        { label: "Mean valence", data: [], borderColor: VALENCE_COLOUR, backgroundColor: VALENCE_COLOUR, pointRadius: 0, tension: 0.25, spanGaps: true },
        { label: "Mean arousal", data: [], borderColor: AROUSAL_COLOUR, backgroundColor: AROUSAL_COLOUR, pointRadius: 0, borderDash: [6, 3], tension: 0.25, spanGaps: true },
        { label: "Active people", data: [], borderColor: TICK, backgroundColor: TICK, pointRadius: 0, stepped: true, yAxisID: "people" },
      ],
    },
    options: {
      ...lineOptions({ min: -1, max: 1 }),
      scales: {
        x: { ticks: { maxTicksLimit: 8, color: TICK } },
        y: { min: -1, max: 1, ticks: { color: TICK } },
        people: { position: "right", beginAtZero: true, grid: { drawOnChartArea: false }, ticks: { precision: 0, color: TICK } },
      },
    },
  });
}

export async function showCollective() {
  if (!initialised) {
    initialised = true;
    charts();
    const socket = getSocket();
    subscribe("collective", onCollective);
    const join = () => getSocket().emit("join", { room: "collective" });
    subscribe("connect", join);
    if (socket.connected) join();
    subscribe("joined", (data) => {
      if (data.room === "collective") $("collective-status").textContent = "Live · waiting for the next update";
    });
  }
  try {
    const [current, history] = await Promise.all([
      api("/api/collective/current"),
      api("/api/collective/history", { query: { hours: 1 } }),
    ]);
    historyChart.data.labels = [];
    historyChart.data.datasets.forEach((dataset) => {
      dataset.data = [];
    });
    history.snapshots.slice(-HISTORY_POINTS).forEach(addPoint);
    render(current);
  } catch (error) {
    if (error.status !== 401) $("collective-status").textContent = error.message;
  }
}
