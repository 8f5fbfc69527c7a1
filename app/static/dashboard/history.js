// History view (sessions list, trends, distribution) and one session's breakdown.
import { api, downloadExport } from "./api.js";
import { explainedFact } from "./explain.js";
import {
  AROUSAL_COLOUR,
  CLASSES,
  VALENCE_COLOUR,
  dateTimeLabel,
  doughnut,
  label,
  lineOptions,
  makeChart,
  confidenceText,
  shareText,
  signed,
  timeLabel,
  TICK,
} from "./charts.js";

const $ = (id) => document.getElementById(id);
let initialised = false;
let sessionsCursor = null;
let readingsCursor = null;
let currentSessionId = null;
let shownSession = null;
let notify = () => {};
let navigate = () => {};
// A 401 has already sent the user to sign in, with its own message.
const report = (error, prefix = "") => {
  if (error.status !== 401) notify(prefix + error.message);
};

function cell(row, text, header = false) {
  const element = document.createElement(header ? "th" : "td");
  if (header) element.scope = "row";
  if (text instanceof Node) element.append(text);
  else element.textContent = text;
  row.append(element);
  return element;
}

function sessionName(session) {
  return session.name || `${label(session.source)} session`;
}

// ---------------------------------------------------------------- the list, trends, distribution

async function loadSessions(append) {
  const query = { limit: 20 };
  if (append && sessionsCursor) query.cursor = sessionsCursor;
  const page = await api("/api/sessions", { query });
  const body = $("sessions-table").querySelector("tbody");
  if (!append) body.replaceChildren();
  for (const session of page.items) {
    const row = document.createElement("tr");
    const link = document.createElement("a");
    link.href = `/history/${session.id}`;
    link.dataset.link = "";
    link.textContent = sessionName(session);
    cell(row, link, true);
    cell(row, dateTimeLabel(session.started_at));
    cell(row, label(session.source));
    cell(row, label(session.status));
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "button secondary small";
    remove.textContent = "Delete";
    remove.setAttribute("aria-label", `Delete session ${sessionName(session)}`);
    remove.addEventListener("click", () => deleteSession(session, row));
    cell(row, remove);
    row.dataset.sessionId = session.id;
    body.append(row);
  }
  sessionsCursor = page.next_cursor;
  $("sessions-more").hidden = !sessionsCursor;
  $("sessions-empty").hidden = body.children.length > 0;
}

/** Delete a session (with its readings) after the user confirms; true when it is gone. */
async function deleteSession(session, row) {
  if (!window.confirm(`Delete the session "${sessionName(session)}" and all its readings? This cannot be undone.`)) return false;
  try {
    await api(`/api/sessions/${session.id}`, { method: "DELETE" });
  } catch (error) {
    report(error, "Not deleted: ");
    return false;
  }
  notify(`Deleted "${sessionName(session)}".`, "info");
  if (row) {
    const body = row.parentElement;
    row.remove();
    $("sessions-empty").hidden = body.children.length > 0;
    loadTrends().catch((error) => report(error));
  }
  return true;
}

async function loadTrends() {
  const [hours, bucket] = $("history-range").value.split("|");
  const [trends, distribution] = await Promise.all([
    api("/api/readings/trends", { query: { hours, bucket } }),
    api("/api/readings/distribution", { query: { hours } }),
  ]);
  const points = trends.points;
  $("trend-empty").hidden = points.length > 0;
  const labels = points.map((point) => dateTimeLabel(point.start));
  makeChart($("trend-chart"), {
    type: "line",
    data: {
      labels,
      datasets: [
        { label: "Valence", data: points.map((p) => p.valence), borderColor: VALENCE_COLOUR, backgroundColor: VALENCE_COLOUR, tension: 0.25 },
        { label: "Arousal", data: points.map((p) => p.arousal), borderColor: AROUSAL_COLOUR, backgroundColor: AROUSAL_COLOUR, borderDash: [6, 3], tension: 0.25 },
        { label: "Intensity", data: points.map((p) => p.intensity), borderColor: TICK, backgroundColor: TICK, borderDash: [2, 3], tension: 0.25, hidden: true },
      ],
    },
    options: lineOptions({ min: -1, max: 1 }),
  });
  $("trend-chart").dataset.points = String(points.length);
  doughnut($("distribution-chart"), distribution.distribution);
  $("distribution-chart").dataset.total = String(distribution.total);
  const top = CLASSES.filter((name) => distribution.distribution[name] > 0).sort(
    (a, b) => distribution.distribution[b] - distribution.distribution[a],
  );
  $("distribution-summary").textContent = distribution.total
    ? `${distribution.total} readings; most often ${label(top[0])} (${shareText(distribution.distribution[top[0]], "readings")}).`
    : "No readings in this period yet.";
}

export async function showHistory() {
  if (!initialised) init();
  try {
    await Promise.all([loadSessions(false), loadTrends()]);
  } catch (error) {
    report(error);
  }
}

// ---------------------------------------------------------------- one session

async function loadReadings(append) {
  const query = { session_id: currentSessionId, limit: 50 };
  if (append && readingsCursor) query.cursor = readingsCursor;
  const page = await api("/api/readings/by_session", { query });
  const body = $("readings-table").querySelector("tbody");
  if (!append) body.replaceChildren();
  for (const reading of page.items) {
    const row = document.createElement("tr");
    cell(row, timeLabel(reading.timestamp), true);
    cell(row, reading.window_start == null ? "—" : `${reading.window_start.toFixed(1)}–${reading.window_end.toFixed(1)} s`);
    cell(row, reading.uncertain ? `${label(reading.dominant)} (uncertain)` : label(reading.dominant));
    if (reading.uncertain) row.classList.add("uncertain");
    cell(row, confidenceText(reading.confidence));
    cell(row, signed(reading.valence));
    cell(row, signed(reading.arousal));
    body.append(row);
  }
  readingsCursor = page.next_cursor;
  $("readings-more").hidden = !readingsCursor;
  $("readings-table").dataset.rows = String(body.children.length);
}

function timelineChart(analytics, insights, startedAt) {
  const t0 = new Date(startedAt).getTime();
  const seconds = (iso) => (new Date(iso).getTime() - t0) / 1000;
  const points = analytics.timeline.filter((p) => p.valence != null);
  const marker = (list, style, colour, name) => ({
    type: "scatter",
    label: name,
    data: list.map((m) => ({ x: seconds(m.timestamp), y: m.valence, dominant: m.dominant })),
    pointStyle: "triangle",
    rotation: style === "low" ? 180 : 0,
    pointRadius: 8,
    pointHoverRadius: 10,
    backgroundColor: colour,
    borderColor: "#111827",
    borderWidth: 1,
  });
  makeChart($("session-timeline"), {
    type: "line",
    data: {
      datasets: [
        { label: "Valence", data: points.map((p) => ({ x: seconds(p.timestamp), y: p.valence })), borderColor: VALENCE_COLOUR, backgroundColor: VALENCE_COLOUR, pointRadius: 2, tension: 0.25 },
        { label: "Arousal", data: points.map((p) => ({ x: seconds(p.timestamp), y: p.arousal })), borderColor: AROUSAL_COLOUR, backgroundColor: AROUSAL_COLOUR, pointRadius: 2, borderDash: [6, 3], tension: 0.25 },
        marker(insights.peaks || [], "peak", "#15803d", "Peaks"),
        marker(insights.lows || [], "low", "#b91c1c", "Lows"),
      ],
    },
    options: {
      ...lineOptions({ min: -1, max: 1 }),
      scales: {
        x: { type: "linear", title: { display: true, text: "seconds into the session" }, ticks: { color: TICK } },
        y: { min: -1, max: 1, ticks: { color: TICK } },
      },
      plugins: {
        tooltip: {
          callbacks: {
            label: (ctx) => `${ctx.dataset.label}: ${signed(ctx.parsed.y)}${ctx.raw.dominant ? ` (${label(ctx.raw.dominant)})` : ""}`,
          },
        },
      },
    },
  });
  $("session-timeline").dataset.points = String(points.length);
  $("session-timeline").dataset.peaks = String((insights.peaks || []).length);
}

export async function showSession(sessionId) {
  if (!initialised) init();
  currentSessionId = sessionId;
  $("session-title").textContent = "Session";
  $("session-meta").textContent = "Loading…";
  $("session-summary").textContent = "";
  $("session-facts").replaceChildren();
  $("readings-table").querySelector("tbody").replaceChildren();
  try {
    const [session, analytics, insights] = await Promise.all([
      api(`/api/sessions/${sessionId}`),
      api(`/api/sessions/${sessionId}/analytics`),
      api(`/api/sessions/${sessionId}/insights`),
    ]);
    $("session-title").textContent = sessionName(session);
    shownSession = session;
    $("session-meta").textContent = `${label(session.source)} · started ${dateTimeLabel(session.started_at)} · ${session.status}`;
    $("session-summary").textContent = insights.summary || "Not enough readings for insights yet.";
    $("session-facts").replaceChildren(
      explainedFact("Readings", `${analytics.reading_count} (${analytics.silent_windows} silent)`, "windows"),
      explainedFact("Duration", `${Math.round(analytics.duration_seconds)} s`, "duration"),
      explainedFact("Dominant", label(analytics.dominant_emotion), "dominant"),
      explainedFact("Mean valence", signed(analytics.valence && analytics.valence.mean), "valence"),
      explainedFact("Mean arousal", signed(analytics.arousal && analytics.arousal.mean), "arousal"),
      explainedFact("Volatility", insights.volatility_level
        ? `${label(insights.volatility_level)} (${insights.volatility.toFixed(2)})` : "—", "volatility"),
    );
    $("view-session").dataset.readings = String(analytics.reading_count);
    doughnut($("session-doughnut"), analytics.distribution);
    timelineChart(analytics, insights, session.started_at);
    await loadReadings(false);
  } catch (error) {
    if (error.status !== 401) $("session-meta").textContent = error.status === 404 ? "No such session." : error.message;
  }
}

// ---------------------------------------------------------------- wiring

function init() {
  initialised = true;
  $("history-range").addEventListener("change", () => loadTrends().catch((error) => report(error)));
  $("sessions-more").addEventListener("click", () => loadSessions(true).catch((error) => report(error)));
  $("session-delete").addEventListener("click", async () => {
    if (shownSession && (await deleteSession(shownSession, null))) navigate("/history");
  });
  $("readings-more").addEventListener("click", () => loadReadings(true).catch((error) => report(error)));
  document.querySelectorAll("[data-export]").forEach((button) => {
    button.addEventListener("click", async () => {
      const filters = "exportSession" in button.dataset && currentSessionId ? { session_id: currentSessionId } : {};
      button.disabled = true;
      try {
        const saved = await downloadExport(button.dataset.export, filters);
        notify(`Saved ${saved.name}.`, "info");
      } catch (error) {
        report(error, "Export failed: ");
      } finally {
        button.disabled = false;
      }
    });
  });
}

export function setNotifier(fn, navigator) {
  notify = fn;
  navigate = navigator;
}
