// Upload view: convert the file in the browser to 16 kHz mono (compress.js), send it with upload
// progress (XMLHttpRequest), poll the analysis job until it finishes, then show its breakdown,
// its timeline band and the list of past analyses.
import { api, uploadAudio } from "./api.js";
import { compressForUpload, durationText } from "./compress.js";
import {
  CLASSES,
  COLOURS,
  confidenceText,
  dateTimeLabel,
  label,
  lineOptions,
  makeChart,
  percent,
  probabilityDatasets,
  shareText,
  signed,
} from "./charts.js";
import { explainedFact } from "./explain.js";

const $ = (id) => document.getElementById(id);
const POLL_MS = 700;
const LIMITS = {
  mb: Number(document.body.dataset.maxUploadMb || 25),
  seconds: Number(document.body.dataset.maxAudioSeconds || 600),
};
let initialised = false;
let busy = false;

function progress(value, text) {
  $("upload-progress").value = value;
  $("upload-progress-label").textContent = text;
}

function formError(text) {
  $("upload-form").querySelector("[data-form-error]").textContent = text || "";
}

/** A sentence for what the server refused, for the answers a person can act on. */
function refusal(error) {
  if (error.status === 413) {
    return `This file is larger than the ${LIMITS.mb} MB the server accepts, and your browser could not convert it to something smaller. Save it as a shorter or compressed recording (for example FLAC or Opus) and try again.`;
  }
  if (error.code === "audio_too_long") return `The recording is longer than ${durationText(LIMITS.seconds)}, the most that can be analysed. Cut it into parts and upload each.`;
  return error.message;
}

function headline(result) {
  if (result.mixed) {
    const parts = CLASSES.filter((name) => result.distribution[name] > 0)
      .sort((a, b) => result.distribution[b] - result.distribution[a])
      .slice(0, 3)
      .map((name) => `${label(name)} ${percent(result.distribution[name])}`);
    return { text: "Mixed", note: `No emotion is on top in more than half of the windows: ${parts.join(", ")} of the windows.` };
  }
  return {
    text: `${label(result.top)} · ${shareText(result.distribution[result.top])}`,
    note: `${label(result.top)} is the top emotion in ${percent(result.distribution[result.top])} of the spoken windows.`,
  };
}

function showBreakdown(distribution) {
  const list = $("upload-breakdown");
  list.replaceChildren();
  CLASSES.filter((name) => distribution[name] > 0)
    .sort((a, b) => distribution[b] - distribution[a])
    .forEach((name) => {
      const item = document.createElement("li");
      item.dataset.emotion = name;
      const bar = document.createElement("span");
      bar.className = "breakdown-bar";
      bar.style.width = `${Math.max(2, distribution[name] * 100)}%`;
      bar.style.background = COLOURS[name];
      const text = document.createElement("span");
      text.textContent = `${label(name)}: ${shareText(distribution[name])}`;
      item.append(text, bar);
      list.append(item);
    });
}

function windowText(point) {
  const span = `${point.start.toFixed(0)}–${point.end.toFixed(0)} s`;
  if (point.silence) return `${span}: silence`;
  const top = CLASSES.filter((name) => point.probabilities[name] > 0.05)
    .sort((a, b) => point.probabilities[b] - point.probabilities[a])
    .map((name) => `${label(name)} ${percent(point.probabilities[name])}`);
  return `${span}: ${label(point.dominant)}, ${confidenceText(point.confidence)}${point.uncertain ? " (uncertain)" : ""}. Probabilities: ${top.join(", ")}.`;
}

function showBand(timeline) {
  const band = $("upload-band");
  band.replaceChildren();
  const used = new Set();
  timeline.forEach((point) => {
    const stripe = document.createElement("span");
    stripe.className = "band-stripe";
    stripe.setAttribute("role", "listitem");
    stripe.tabIndex = 0;
    const name = point.silence ? "silence" : point.dominant;
    used.add(name);
    stripe.style.background = COLOURS[name];
    stripe.dataset.emotion = name;
    if (point.uncertain) stripe.classList.add("uncertain");
    const text = windowText(point);
    stripe.title = text;
    stripe.setAttribute("aria-label", text);
    const show = () => {
      $("upload-band-detail").textContent = text;
    };
    stripe.addEventListener("mouseenter", show);
    stripe.addEventListener("focus", show);
    band.append(stripe);
  });
  $("upload-band-detail").textContent = "";
  $("upload-band-legend").replaceChildren(
    ...[...CLASSES, "silence"].filter((name) => used.has(name)).map((name) => {
      const key = document.createElement("span");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = COLOURS[name];
      key.append(swatch, label(name));
      return key;
    }),
  );
}

function showResult(job) {
  const result = job.result;
  const { overall, timeline, windows, silent_windows: silent } = result;
  $("upload-result").hidden = false;
  if (result.distribution) {
    const { text, note } = headline(result);
    $("upload-overall").textContent = text;
    $("upload-overall-note").textContent = note;
    showBreakdown(result.distribution);
  } else {
    // An analysis from before breakdowns were kept: only the mean of the probabilities exists.
    $("upload-overall").textContent = `${label(overall.dominant)} · ${confidenceText(overall.confidence)}`;
    $("upload-overall-note").textContent = "";
    $("upload-breakdown").replaceChildren();
  }
  $("upload-overall").dataset.mixed = String(Boolean(result.mixed));
  $("upload-overall").dataset.uncertain = String(Boolean(overall.uncertain));
  $("upload-uncertain").hidden = !overall.uncertain;
  $("upload-facts").replaceChildren(
    explainedFact("File", job.filename || "recording"),
    explainedFact("Duration", durationText(job.duration_s || 0)),
    explainedFact("Windows", `${windows} (${silent} silent)`, "windows"),
    explainedFact("Valence", signed(overall.valence), "valence"),
    explainedFact("Arousal", signed(overall.arousal), "arousal"),
  );
  const link = $("upload-session-link");
  link.hidden = !job.session_id;
  if (job.session_id) link.href = `/history/${job.session_id}`;
  showBand(timeline);
  const datasets = probabilityDatasets();
  timeline.forEach((point) => {
    CLASSES.forEach((name, i) => datasets[i].data.push(point.silence ? null : point.probabilities[name]));
  });
  makeChart($("upload-chart"), {
    type: "line",
    data: { labels: timeline.map((point) => `${point.start.toFixed(1)}`), datasets },
    options: lineOptions({ min: 0, max: 1, xTitle: "seconds into the recording", yTitle: "probability" }),
  });
  $("upload-chart").dataset.points = String(timeline.length);
}

async function poll(jobId) {
  for (;;) {
    const job = await api(`/api/analyze/${jobId}`);
    if (job.status === "finished") return job;
    if (job.status === "failed") {
      throw new Error(job.error ? job.error.message : "The analysis failed");
    }
    const share = job.progress || 0;
    progress(share, job.status === "queued" ? "Waiting for the analyser…" : `Analysing: ${Math.round(share * 100)} %`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

function resultText(job) {
  if (job.status === "failed") return `Failed: ${job.error ? job.error.message : "unknown reason"}`;
  if (job.status !== "finished") return label(job.status);
  const result = job.result || {};
  if (result.mixed) return "Mixed";
  if (result.top) return `${label(result.top)} · ${shareText(result.distribution[result.top])}`;
  return result.overall ? label(result.overall.dominant) : "—";
}

async function loadPast() {
  const page = await api("/api/results", { query: { limit: 20 } });
  const body = $("uploads-table").querySelector("tbody");
  body.replaceChildren();
  for (const job of page.items) {
    const row = document.createElement("tr");
    row.dataset.jobId = job.job_id;
    const name = document.createElement("th");
    name.scope = "row";
    if (job.session_id && job.status === "finished") {
      const link = document.createElement("a");
      link.href = `/history/${job.session_id}`;
      link.dataset.link = "";
      link.textContent = job.filename || "recording";
      name.append(link);
    } else {
      name.textContent = job.filename || "recording";
    }
    row.append(name);
    for (const text of [dateTimeLabel(job.created_at), job.duration_s == null ? "—" : durationText(job.duration_s), resultText(job)]) {
      const cell = document.createElement("td");
      cell.textContent = text;
      row.append(cell);
    }
    body.append(row);
  }
  $("uploads-empty").hidden = body.children.length > 0;
}

async function submit(event) {
  event.preventDefault();
  if (busy) return;
  const chosen = $("upload-file").files[0];
  formError("");
  if (!chosen) {
    formError("Choose an audio file first.");
    $("upload-file").focus();
    return;
  }
  busy = true;
  $("upload-submit").disabled = true;
  $("upload-result").hidden = true;
  try {
    progress(0, "Converting to 16 kHz mono in your browser…");
    const file = await compressForUpload(chosen, LIMITS.seconds);
    $("upload-form").dataset.sentBytes = String(file.size);
    progress(0, "Uploading: 0 %");
    const accepted = await uploadAudio(file, (share) => progress(share, `Uploading: ${Math.round(share * 100)} %`));
    progress(0, "Uploaded. Waiting for the analyser…");
    const job = await poll(accepted.job_id);
    progress(1, "Done: analysed.");
    showResult(job);
  } catch (error) {
    progress(0, "Not analysed");
    if (error.status !== 401) formError(refusal(error));
  } finally {
    busy = false;
    $("upload-submit").disabled = false;
    loadPast().catch(() => null);
  }
}

export async function initUpload() {
  if (!initialised) {
    initialised = true;
    $("upload-form").addEventListener("submit", submit);
  }
  try {
    await loadPast();
  } catch (error) {
    if (error.status !== 401) formError(error.message);
  }
}
