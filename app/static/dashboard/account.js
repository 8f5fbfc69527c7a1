// Account view: the display name, the voice baseline the model adapts to (whether it exists,
// how much speech it has heard, the switch and its reset), the password, signing out
// everywhere, and deleting the account.
import { api, changePassword, deleteAccount, signOutEverywhere, updateUser } from "./api.js";

const $ = (id) => document.getElementById(id);
let initialised = false;
let leave = () => {};

function render(profile) {
  $("account-email").textContent = profile.email;
  if (document.activeElement !== $("account-name-input")) $("account-name-input").value = profile.display_name;
  const baseline = profile.voice_baseline;
  $("voice-status").textContent = baseline.exists
    ? `A voice baseline exists: ${baseline.speech_seconds.toFixed(1)} s of your speech, last updated ${new Date(baseline.updated_at).toLocaleString()}.`
    : "No voice baseline yet: it is learned from your next speech.";
  $("voice-panel").dataset.baseline = String(baseline.exists);
  $("adapt-voice").checked = profile.adapt_voice;
  $("adapt-voice").disabled = false;
  $("voice-reset").disabled = !baseline.exists;
}

function message(text) {
  $("account-message").textContent = text;
  $("account-message").hidden = !text;
}

async function run(action) {
  $("voice-error").textContent = "";
  try {
    render(await action());
  } catch (error) {
    $("voice-error").textContent = error.message;
  }
}

function fieldErrors(error) {
  const fields = error.details && error.details.fields && (error.details.fields.json || error.details.fields);
  if (!fields || typeof fields !== "object") return error.message;
  const parts = Object.entries(fields).map(([name, problems]) => `${name.replaceAll("_", " ")}: ${[].concat(problems).join(" ")}`);
  return parts.length ? parts.join(" ") : error.message;
}

/** Run `action` on the form's submit, its errors shown in the form. */
function onSubmit(form, action) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = form.querySelector("[data-form-error]");
    error.textContent = "";
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await action();
    } catch (problem) {
      if (problem.status !== 401 || form.id === "delete-form") error.textContent = fieldErrors(problem);
    } finally {
      button.disabled = false;
    }
  });
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
  onSubmit($("name-form"), async () => {
    const profile = await api("/api/auth/profile", { method: "PUT", body: { display_name: $("account-name-input").value.trim() } });
    updateUser(profile);
    render(profile);
    message("Display name saved.");
  });
  onSubmit($("password-form"), async () => {
    const profile = await changePassword($("current-password").value, $("new-password").value);
    $("password-form").reset();
    render(profile);
    message("Password changed. Every other device signed in to your account has been signed out.");
  });
  $("sign-out-everywhere").addEventListener("click", async () => {
    if (!window.confirm("Sign out on every device, this one included?")) return;
    $("everywhere-error").textContent = "";
    try {
      await signOutEverywhere();
      leave("You were signed out everywhere.");
    } catch (error) {
      $("everywhere-error").textContent = error.message;
    }
  });
  onSubmit($("delete-form"), async () => {
    if (!$("delete-confirm").checked) {
      throw Object.assign(new Error("Tick the box to confirm that everything is deleted."), { status: 0 });
    }
    if (!window.confirm("Delete your account and all its data now? This cannot be undone.")) return;
    await deleteAccount($("delete-password").value);
    leave("Your account and all its data have been deleted.");
  });
}

/** `onLeave(message)`: the app's way back to sign-in once this account is signed out or gone. */
export async function showAccount(onLeave) {
  leave = onLeave;
  if (!initialised) init();
  message("");
  await run(() => api("/api/auth/profile"));
}
