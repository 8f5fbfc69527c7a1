// The dashboard's entry module: client-side routing over the views of one document, the
// sign-in and sign-up forms, sign-out, and the way back to sign-in whenever a token is refused.
import { showAccount } from "./account.js";
import { confirmPasswordReset, currentUser, isSignedIn, onSignOut, requestPasswordReset, signIn, signOut, signUp } from "./api.js";
import { showCollective } from "./collective.js";
import { setNotifier, showHistory, showSession } from "./history.js";
import { initLive, liveRunning } from "./live.js";
import { explainAll } from "./explain.js";
import { closeSocket } from "./socket.js";
import { initUpload } from "./upload.js";

const $ = (id) => document.getElementById(id);
const PUBLIC = new Set(["login", "signup", "forgot-password", "reset-password"]);
const VIEWS = ["live", "upload", "history", "collective", "account", ...PUBLIC];
const TITLES = {
  live: "Live",
  upload: "Upload",
  history: "History",
  session: "Session",
  collective: "Collective",
  account: "Account",
  login: "Sign in",
  signup: "Sign up",
  "forgot-password": "Reset your password",
  "reset-password": "Choose a new password",
};

function notice(message, kind = "error") {
  const box = $("notice");
  box.textContent = message;
  box.dataset.kind = kind;
  box.hidden = !message;
  if (message && kind === "info") setTimeout(() => { if (box.textContent === message) box.hidden = true; }, 5000);
}

function route(pathname) {
  const parts = pathname.replace(/\/+$/, "").split("/").filter(Boolean);
  if (parts.length === 0) return { view: "live" };
  if (parts[0] === "history" && parts[1]) return { view: "session", sessionId: decodeURIComponent(parts[1]) };
  if (parts[0] === "profile") return { view: "account" };
  if (VIEWS.includes(parts[0])) return { view: parts[0] };
  return { view: "live" };
}

function safeNext(value) {
  // Only paths on this site, never another origin ("//evil" or "https://...").
  return typeof value === "string" && /^\/(?!\/)[\w\-/]*$/.test(value) && !value.startsWith("/login") ? value : "/live";
}

function show(view) {
  document.querySelectorAll(".view").forEach((section) => {
    section.hidden = section.id !== `view-${view}`;
  });
  document.querySelectorAll("[data-nav]").forEach((link) => {
    const current = link.dataset.nav === view || (view === "session" && link.dataset.nav === "history");
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  });
  document.body.dataset.view = view;
  document.body.classList.toggle("signed-in", isSignedIn());
  const user = currentUser();
  $("account-name").textContent = user ? user.display_name || user.email : "";
  document.title = `${TITLES[view] || "Mood Mirror"} · Mood Mirror`;
}

async function render({ focus = false } = {}) {
  let { view, sessionId } = route(location.pathname);
  if (!PUBLIC.has(view) && !isSignedIn()) {
    const next = location.pathname + location.search;
    history.replaceState(null, "", `/login?next=${encodeURIComponent(next)}`);
    view = "login";
  } else if (PUBLIC.has(view) && view !== "reset-password" && isSignedIn()) {
    history.replaceState(null, "", "/live");
    view = "live";
  }
  show(view);
  if (focus) {
    const heading = document.querySelector(`#view-${view} h1`);
    if (heading) {
      heading.tabIndex = -1;
      heading.focus();
    }
  }
  if (view === "live") initLive();
  else if (view === "upload") initUpload();
  else if (view === "history") await showHistory();
  else if (view === "session") await showSession(sessionId);
  else if (view === "collective") await showCollective();
  else if (view === "account") await showAccount(leave);
}

export function navigate(path) {
  if (path !== location.pathname + location.search) history.pushState(null, "", path);
  notice("");
  render({ focus: true });
}

/** Signed out on purpose (sign out, everywhere, account deleted): a fresh start at sign-in. */
function leave(message) {
  closeSocket();
  sessionStorage.setItem("moodmirror.farewell", message);
  // replace: Back must not return to a page of the account that was just left.
  location.replace("/login");
}

function formError(form, error) {
  const fields = error.details && error.details.fields && (error.details.fields.json || error.details.fields);
  let message = error.message;
  if (fields && typeof fields === "object") {
    const parts = Object.entries(fields).map(([name, problems]) => `${name.replace("_", " ")}: ${[].concat(problems).join(" ")}`);
    if (parts.length) message = parts.join(" ");
  }
  form.querySelector("[data-form-error]").textContent = message;
}

/** Run `action` on submit with the button disabled; its error is shown in the form. */
function onSubmit(id, action) {
  $(id).addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    form.querySelector("[data-form-error]").textContent = "";
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await action();
      form.reset();
    } catch (error) {
      formError(form, error);
    } finally {
      button.disabled = false;
    }
  });
}

function wireForms() {
  onSubmit("login-form", async () => {
    await signIn($("login-email").value.trim(), $("login-password").value);
    navigate(safeNext(new URLSearchParams(location.search).get("next")));
  });
  onSubmit("forgot-form", async () => {
    const answer = await requestPasswordReset($("forgot-email").value.trim());
    $("forgot-sent").textContent = answer.message;
  });
  onSubmit("reset-form", async () => {
    const token = new URLSearchParams(location.hash.slice(1)).get("token") || "";
    await confirmPasswordReset(token, $("reset-password").value);
    // The token must not linger in the address bar or the history.
    history.replaceState(null, "", "/reset-password");
    $("reset-done").textContent = "";
    sessionStorage.setItem("moodmirror.farewell", "Your password has been changed. Sign in with the new one.");
    location.replace("/login");
  });
  onSubmit("signup-form", async () => {
    await signUp($("signup-email").value.trim(), $("signup-password").value, $("signup-name").value.trim());
    navigate("/live");
  });
  $("sign-out").addEventListener("click", async () => {
    if (liveRunning() && !window.confirm("The microphone is on. Stop it and sign out?")) return;
    await signOut();
    // A full load drops every view's state, charts and the socket with it.
    leave("You are signed out.");
  });
}

function wireLinks() {
  document.addEventListener("click", (event) => {
    const link = event.target.closest("a[data-link]");
    if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const url = new URL(link.href, location.href);
    if (url.origin !== location.origin) return;
    event.preventDefault();
    navigate(url.pathname + url.search);
  });
  window.addEventListener("popstate", () => render({ focus: true }));
}

onSignOut((reason) => {
  closeSocket();
  const next = location.pathname.startsWith("/login") ? "/live" : location.pathname;
  history.pushState(null, "", `/login?next=${encodeURIComponent(next)}`);
  render({ focus: true });
  notice(reason);
});

setNotifier(notice, navigate);
explainAll();
wireForms();
wireLinks();
render();
const farewell = sessionStorage.getItem("moodmirror.farewell");
if (farewell) {
  sessionStorage.removeItem("moodmirror.farewell");
  notice(farewell, "info");
}
