// Profile view: the voice baseline the model adapts to (whether it exists, how much speech it
// has heard), the switch that turns adaptation on or off, and its reset.
import { api } from "./api.js";

const $ = (id) => document.getElementById(id);
let initialised = false;

function render(profile) {
  const baseline = profile.voice_baseline;
  $("voice-status").textContent = baseline.exists
    ? `A voice baseline exists: ${baseline.speech_seconds.toFixed(1)} s of your speech, last updated ${new Date(baseline.updated_at).toLocaleString()}.`
    : "No voice baseline yet: it is learned from your next speech.";
  $("voice-panel").dataset.baseline = String(baseline.exists);
  $("adapt-voice").checked = profile.adapt_voice;
  $("adapt-voice").disabled = false;
  $("voice-reset").disabled = !baseline.exists;
}

async function run(action) {
  $("voice-error").textContent = "";
  try {
    render(await action());
  } catch (error) {
    $("voice-error").textContent = error.message;
  }
}

function init() {
  initialised = true;
  $("adapt-voice").addEventListener("change", (event) =>
    run(() => api("/api/auth/profile", { method: "PUT", body: { adapt_voice: event.target.checked } })));
  $("voice-reset").addEventListener("click", () => {
    if (!window.confirm("Forget what the model has learned about your voice?")) return;
    run(async () => {
      await api("/api/auth/profile/voice-baseline", { method: "DELETE" });
      return api("/api/auth/profile");
    });
  });
}

export async function showProfile() {
  if (!initialised) init();
  await run(() => api("/api/auth/profile"));
}
