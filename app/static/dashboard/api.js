// REST client: bearer tokens, one refresh on expiry, and a way out to sign-in on any other 401.
//
// Token storage: the access token (15 minutes) in sessionStorage, so a reload of this tab keeps
// the user signed in and nothing outlives the tab; the refresh token (30 days) only in this
// module's memory, never in any storage a later script could read back. After a reload the
// session lasts until the access token expires, then the user signs in again.

const ACCESS_KEY = "moodmirror.access";
const USER_KEY = "moodmirror.user";

let refreshToken = null;
let refreshing = null;
const listeners = new Set();

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `Request failed (${status})`);
    this.status = status;
    this.code = error.code || "http_" + status;
    this.details = error.details || {};
  }
}

export function accessToken() {
  return sessionStorage.getItem(ACCESS_KEY);
}

export function currentUser() {
  try {
    return JSON.parse(sessionStorage.getItem(USER_KEY) || "null");
  } catch {
    return null;
  }
}

export function isSignedIn() {
  return Boolean(accessToken());
}

export function onSignOut(listener) {
  listeners.add(listener);
}

function keepTokens(body) {
  sessionStorage.setItem(ACCESS_KEY, body.access_token);
  if (body.refresh_token) refreshToken = body.refresh_token;
  if (body.user) sessionStorage.setItem(USER_KEY, JSON.stringify(body.user));
}

function forgetTokens() {
  sessionStorage.removeItem(ACCESS_KEY);
  sessionStorage.removeItem(USER_KEY);
  refreshToken = null;
}

async function parse(response) {
  if (response.status === 204) return null;
  const type = response.headers.get("Content-Type") || "";
  return type.includes("json") ? response.json() : response.text();
}

/** A new access token from the refresh token; false when there is none or it is refused. */
export async function refreshAccess() {
  if (!refreshToken) return false;
  if (!refreshing) {
    refreshing = fetch("/api/auth/refresh", {
      method: "POST",
      headers: { Authorization: `Bearer ${refreshToken}`, Accept: "application/json" },
    })
      .then(async (response) => {
        if (!response.ok) return false;
        keepTokens(await response.json());
        return true;
      })
      .catch(() => false)
      .finally(() => {
        refreshing = null;
      });
  }
  return refreshing;
}

/** The user is no longer signed in: forget everything and tell the app (it shows sign-in). */
export function expireSession(reason = "Your session has ended. Please sign in again.") {
  forgetTokens();
  for (const listener of listeners) listener(reason);
}

/** fetch with the bearer token; refreshes once on 401, then gives up to sign-in. */
export async function authFetch(path, options = {}) {
  const send = () => {
    const headers = new Headers(options.headers || {});
    const token = accessToken();
    if (token) headers.set("Authorization", `Bearer ${token}`);
    if (!headers.has("Accept")) headers.set("Accept", "application/json");
    return fetch(path, { ...options, headers });
  };
  let response = await send();
  if (response.status === 401 && (await refreshAccess())) response = await send();
  if (response.status === 401) {
    expireSession();
    throw new ApiError(401, await parse(response).catch(() => null));
  }
  return response;
}

/** JSON request; throws ApiError on any non-2xx answer. */
export async function api(path, { method = "GET", body, query } = {}) {
  const url = query ? `${path}?${new URLSearchParams(query)}` : path;
  const options = { method };
  if (body !== undefined) {
    options.body = JSON.stringify(body);
    options.headers = { "Content-Type": "application/json" };
  }
  const response = await authFetch(url, options);
  const data = await parse(response);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

async function credentials(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(body),
  });
  const data = await parse(response);
  if (!response.ok) throw new ApiError(response.status, data);
  keepTokens(data);
  return data.user;
}

export const signIn = (email, password) => credentials("/api/auth/login", { email, password });

export function signUp(email, password, displayName) {
  const body = { email, password };
  if (displayName) body.display_name = displayName;
  return credentials("/api/auth/register", body);
}

/** Revoke both tokens on the server (best effort), then forget them here. */
export async function signOut() {
  const token = accessToken();
  if (token) {
    const body = refreshToken ? JSON.stringify({ refresh_token: refreshToken }) : undefined;
    await fetch("/api/auth/logout", {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, ...(body ? { "Content-Type": "application/json" } : {}) },
      body,
    }).catch(() => null);
  }
  forgetTokens();
}

/** Keep the signed-in user's shown details (the display name) up to date. */
export function updateUser(user) {
  const stored = currentUser() || {};
  sessionStorage.setItem(USER_KEY, JSON.stringify({ ...stored, display_name: user.display_name, email: user.email }));
}

/** Change the password: every earlier token is revoked; the answer carries this tab's new pair. */
export async function changePassword(current, next) {
  const profile = await api("/api/auth/profile", { method: "PUT", body: { current_password: current, new_password: next } });
  keepTokens(profile);
  return profile;
}

/** Revoke every token of the account (this tab's too), then forget them here. */
export async function signOutEverywhere() {
  await api("/api/auth/logout-all", { method: "POST" });
  forgetTokens();
}

/** Delete the account: a fresh sign-in with the password confirms it (the API needs a fresh token). */
export async function deleteAccount(password) {
  const user = currentUser();
  const response = await fetch("/api/auth/login", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({ email: user.email, password }),
  });
  const data = await parse(response);
  if (!response.ok) {
    throw new ApiError(response.status, response.status === 401 ? { error: { message: "The password is wrong." } } : data);
  }
  keepTokens(data);
  await api("/api/auth/profile", { method: "DELETE" });
  forgetTokens();
}

async function publicPost(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(body),
  });
  const data = await parse(response);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export const requestPasswordReset = (email) => publicPost("/api/auth/password-reset", { email });
export const confirmPasswordReset = (token, password) =>
  publicPost("/api/auth/password-reset/confirm", { token, new_password: password });

/** Download /api/export as a file: fetched with the bearer token, saved through a Blob URL. */
export async function downloadExport(format, filters = {}) {
  const response = await authFetch(`/api/export?${new URLSearchParams({ format, ...filters })}`, {
    headers: { Accept: format === "csv" ? "text/csv" : "application/json" },
  });
  if (!response.ok) throw new ApiError(response.status, await parse(response).catch(() => null));
  const blob = await response.blob();
  const disposition = response.headers.get("Content-Disposition") || "";
  const match = /filename="?([^";]+)"?/.exec(disposition);
  const name = match ? match[1] : `mood-mirror-readings.${format}`;
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  return { name, size: blob.size };
}

/** Upload with progress through XMLHttpRequest (fetch has no upload progress). */
export function uploadAudio(file, onProgress) {
  const send = () =>
    new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/api/analyze");
      xhr.setRequestHeader("Authorization", `Bearer ${accessToken()}`);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable) onProgress(event.loaded / event.total);
      });
      xhr.addEventListener("load", () => {
        let data = null;
        try {
          data = JSON.parse(xhr.responseText);
        } catch {
          /* not JSON */
        }
        resolve({ status: xhr.status, data });
      });
      xhr.addEventListener("error", () => reject(new ApiError(0, { error: { message: "The upload failed: network error" } })));
      const form = new FormData();
      form.append("file", file);
      xhr.send(form);
    });
  return (async () => {
    let result = await send();
    if (result.status === 401 && (await refreshAccess())) result = await send();
    if (result.status === 401) {
      expireSession();
      throw new ApiError(401, result.data);
    }
    if (result.status < 200 || result.status >= 300) throw new ApiError(result.status, result.data);
    return result.data;
  })();
}
