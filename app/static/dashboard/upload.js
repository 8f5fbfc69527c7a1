// Upload view: send a file with upload progress (XMLHttpRequest), then poll the analysis job
// until it finishes, then draw its timeline.
import { api, uploadAudio } from "./api.js";
import { CLASSES, fact, label, lineOptions, makeChart, percent, probabilityDatasets, signed } from "./charts.js";

const $ = (id) => document.getElementById(id);
const POLL_MS = 700;
let initialised = false;
let busy = false;

function progress(value, text) {
  $("upload-progress").value = value;
  $("upload-progress-label").textContent = text;
}

function formError(text) {
  $("upload-form").querySelector("[data-form-error]").textContent = text || "";
}

function showResult(job) {
  const { overall, timeline, windows, silent_windows: silent } = job.result;
  $("upload-result").hidden = false;
  $("upload-overall").textContent = `${label(overall.dominant)} · ${percent(overall.confidence)}`;
  $("upload-overall").dataset.uncertain = String(Boolean(overall.uncertain));
  $("upload-uncertain").hidden = !overall.uncertain;
  $("upload-facts").replaceChildren(
    fact("File", job.filename || "recording"),
    fact("Duration", `${(job.duration_s || 0).toFixed(1)} s`),
    fact("Windows", `${windows} (${silent} silent)`),
    fact("Valence", signed(overall.valence)),
    fact("Arousal", signed(overall.arousal)),
  );
  const datasets = probabilityDatasets();
  timeline.forEach((point) => {
    CLASSES.forEach((name, i) => datasets[i].data.push(point.silence ? null : point.probabilities[name]));
  });
  const chart = makeChart($("upload-chart"), {
    type: "line",
    data: { labels: timeline.map((point) => `${point.start.toFixed(1)}`), datasets },
    options: lineOptions({ min: 0, max: 1, xTitle: "seconds into the recording" }),
  });
  $("upload-chart").dataset.points = String(timeline.length);
  return chart;
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

async function submit(event) {
  event.preventDefault();
  if (busy) return;
  const file = $("upload-file").files[0];
  formError("");
  if (!file) {
    formError("Choose an audio file first.");
    $("upload-file").focus();
    return;
  }
  busy = true;
  $("upload-submit").disabled = true;
  $("upload-result").hidden = true;
  try {
    progress(0, "Uploading: 0 %");
    const accepted = await uploadAudio(file, (share) => progress(share, `Uploading: ${Math.round(share * 100)} %`));
    progress(0, "Uploaded. Waiting for the analyser…");
    const job = await poll(accepted.job_id);
    progress(1, "Done: analysed.");
    showResult(job);
  } catch (error) {
    progress(0, "Not analysed");
    if (error.status !== 401) formError(error.message);
  } finally {
    busy = false;
    $("upload-submit").disabled = false;
  }
}

export function initUpload() {
  if (initialised) return;
  initialised = true;
  $("upload-form").addEventListener("submit", submit);
}
