// Live view: microphone -> AudioWorklet (16 kHz mono s16le, 1 s frames: one message a window, which costs the server least) -> Socket.IO
// `audio` events; `emotion`, `environment`, `lag` and `error` events drawn as they arrive.
import { AmbientTone, Particles, applyLight } from "./environment.js";
import { CLASSES, confidenceText, label, lineOptions, makeChart, probabilityDatasets, signed, vaDatasets } from "./charts.js";
import { refreshAccess } from "./api.js";
import { getSocket, subscribe } from "./socket.js";

const FORMAT = { encoding: "s16le", sample_rate: 16000, channels: 1 };
const MAX_POINTS = 120; // two minutes at one window per second

const $ = (id) => document.getElementById(id);

let state = null; // the running microphone: {stream, context, node, source, sessionId}
let shownSession = null; // the session whose events are drawn (stays after stop for late windows)
let probChart;
let vaChart;
let particles;
const tone = new AmbientTone();
let initialised = false;
let windows = 0;

function status(text) {
  $("live-status").textContent = text;
}

function showError(message) {
  const list = $("live-errors");
  const item = document.createElement("p");
  item.className = "error";
  item.textContent = message;
  list.prepend(item);
  while (list.children.length > 3) list.lastElementChild.remove();
}

function resetCharts() {
  probChart = makeChart($("live-prob-chart"), {
    type: "line",
    data: { labels: [], datasets: probabilityDatasets() },
    options: lineOptions({ min: 0, max: 1, xTitle: "seconds" }),
  });
  vaChart = makeChart($("live-va-chart"), {
    type: "line",
    data: { labels: [], datasets: vaDatasets() },
    options: lineOptions({ min: -1, max: 1, xTitle: "seconds" }),
  });
}

function push(chart, labelText, values) {
  chart.data.labels.push(labelText);
  chart.data.datasets.forEach((dataset, i) => dataset.data.push(values[i]));
  if (chart.data.labels.length > MAX_POINTS) {
    chart.data.labels.shift();
    chart.data.datasets.forEach((dataset) => dataset.data.shift());
  }
  chart.update();
}

function onEmotion(reading) {
  if (reading.session_id !== shownSession) return;
  windows += 1;
  $("live-windows").textContent = String(windows);
  const at = reading.window_end != null ? reading.window_end.toFixed(0) : String(windows);
  if (reading.silence) {
    push(probChart, at, CLASSES.map(() => null));
    push(vaChart, at, [null, null]);
    $("current-emotion").textContent = "Silence";
    $("current-emotion").dataset.emotion = "silence";
    $("current-emotion").dataset.uncertain = "false";
    $("current-uncertain").hidden = true;
    return;
  }
  push(probChart, at, CLASSES.map((name) => reading.probabilities[name]));
  push(vaChart, at, [reading.valence, reading.arousal]);
  $("current-emotion").textContent = `${label(reading.dominant)} · ${confidenceText(reading.confidence)}`;
  $("current-emotion").dataset.emotion = reading.dominant;
  // A low-confidence window is shown muted with a note, so a guess never reads as a finding.
  $("current-emotion").dataset.uncertain = String(Boolean(reading.uncertain));
  $("current-uncertain").hidden = !reading.uncertain;
  $("current-valence").textContent = signed(reading.valence);
  $("current-arousal").textContent = signed(reading.arousal);
}

function onEnvironment(response) {
  if (response.session_id !== shownSession) return;
  applyLight($("environment-panel"), response.lighting);
  $("current-light").textContent = response.lighting ? response.lighting.hex : "—";
  if (response.visual) {
    particles.set(response.visual);
    $("current-pattern").textContent = `${response.visual.type}, ${response.visual.particle_count} particles`;
  }
  if (response.audio) tone.set(response.audio);
}

function onLag(lag) {
  $("live-lag").textContent = `${lag.dropped_total} window${lag.dropped_total === 1 ? "" : "s"} skipped`;
  status(`The analysis is behind: ${lag.dropped} older window(s) skipped to stay live.`);
}

// The session a stream cut off by its token's expiry resumes with a renewed token, once the
// server's disconnect that follows the `error` has come.
let resuming = null;

function onError(error) {
  if (state && error.code === "token_expired") {
    resuming = state.sessionId;
    status("Renewing the sign-in…");
    return;
  }
  showError(`${error.message}${error.code ? ` (${error.code})` : ""}`);
}

async function resume(sessionId) {
  if (!(await refreshAccess())) throw new Error("Your sign-in has ended. Please sign in again.");
  const socket = getSocket();
  await connected(socket);
  const started = waitFor(socket, "started");
  socket.emit("start", { format: FORMAT, session_id: sessionId });
  await started;
  status("Listening (resumed with a renewed sign-in).");
}

function onStopped(summary) {
  status(`Stopped. ${summary.windows} window(s) analysed. The session is in History.`);
  const link = document.createElement("a");
  link.href = `/history/${summary.session_id}`;
  link.dataset.link = "";
  link.textContent = " Open this session";
  $("live-status").append(link);
}

function onDisconnect() {
  if (state && resuming) {
    const sessionId = resuming;
    resuming = null;
    resume(sessionId).catch((error) => {
      showError(error.message);
      stopAudio();
      setButtons(false);
    });
    return;
  }
  if (state) {
    showError("The connection was lost; the session was ended. Start again when you are back online.");
    stopAudio();
    setButtons(false);
  }
}

function setButtons(running) {
  $("mic-start").disabled = running;
  $("mic-stop").disabled = !running;
  $("live-name").disabled = running;
}

function waitFor(socket, event, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off(event, handler);
      socket.off("error", failed);
      reject(new Error(`No answer from the server (${event})`));
    }, timeoutMs);
    const handler = (data) => {
      clearTimeout(timer);
      socket.off("error", failed);
      resolve(data);
    };
    const failed = (error) => {
      clearTimeout(timer);
      socket.off(event, handler);
      reject(new Error(error.message || "Refused"));
    };
    socket.once(event, handler);
    socket.once("error", failed);
  });
}

async function connected(socket) {
  if (socket.connected) return;
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("Cannot reach the server")), 10000);
    socket.once("connect", () => {
      clearTimeout(timer);
      resolve();
    });
    if (!socket.active) socket.connect();
  });
}

async function start() {
  $("live-errors").replaceChildren();
  setButtons(true);
  status("Asking for the microphone…");
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
  } catch (error) {
    setButtons(false);
    status("Microphone off.");
    showError(`The microphone is not available: ${error.message || error.name}`);
    return;
  }
  const context = new AudioContext();
  try {
    await context.audioWorklet.addModule(document.body.dataset.workletUrl);
    const socket = getSocket();
    await connected(socket);
    const name = $("live-name").value.trim();
    const started = waitFor(socket, "started");
    socket.emit("start", { format: FORMAT, ...(name ? { name } : {}) });
    const info = await started;
    const source = context.createMediaStreamSource(stream);
    const node = new AudioWorkletNode(context, "pcm-downsampler", { processorOptions: { frameMs: 1000 } });
    node.port.onmessage = (event) => {
      if (state && state.node === node && socket.connected) socket.emit("audio", event.data);
    };
    source.connect(node);
    // Nothing is played back: the node's output goes nowhere audible.
    state = { stream, context, node, source, sessionId: info.session_id };
    shownSession = info.session_id;
    windows = 0;
    $("live-windows").textContent = "0";
    $("live-lag").textContent = "none";
    $("environment-panel").dataset.sessionId = info.session_id;
    resetCharts();
    status(`Listening (${context.sampleRate} Hz → 16 kHz). The first emotion arrives after about a second.`);
  } catch (error) {
    stream.getTracks().forEach((track) => track.stop());
    context.close();
    setButtons(false);
    status("Microphone off.");
    showError(error.message);
  }
}

function stopAudio() {
  if (!state) return;
  const { stream, context, node, source } = state;
  state = null;
  source.disconnect();
  node.port.postMessage("stop");
  stream.getTracks().forEach((track) => track.stop());
  setTimeout(() => context.close(), 300);
}

async function stop() {
  if (!state) return;
  const socket = getSocket();
  const { node } = state;
  // Let the worklet's last partial frame reach the socket before `stop`.
  node.port.postMessage("flush");
  await new Promise((resolve) => setTimeout(resolve, 150));
  stopAudio();
  $("mic-stop").disabled = true;
  status("Stopping…");
  const stopped = waitFor(socket, "stopped");
  socket.emit("stop");
  try {
    onStopped(await stopped);
  } catch (error) {
    showError(error.message);
  }
  setButtons(false);
}

export function initLive() {
  if (initialised) return;
  initialised = true;
  particles = new Particles($("particles"));
  particles.set({});
  resetCharts();
  getSocket(); // connect now, so Start answers quickly
  subscribe("emotion", onEmotion);
  subscribe("environment", onEnvironment);
  subscribe("lag", onLag);
  subscribe("error", onError);
  subscribe("disconnect", onDisconnect);
  $("mic-start").addEventListener("click", start);
  $("mic-stop").addEventListener("click", stop);
  $("ambient-toggle").addEventListener("change", async (event) => {
    if (event.target.checked) await tone.enable();
    else tone.disable();
  });
}

export function liveRunning() {
  return Boolean(state);
}
