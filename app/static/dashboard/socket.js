// One Socket.IO connection for the whole dashboard, authenticated with the access token.
// A refused connection (expired token) refreshes the token once and tries again; a second
// refusal signs the user out.
import { io } from "../vendor/socket.io-client/socket.io.esm.min.js";
import { accessToken, expireSession, refreshAccess } from "./api.js";

let socket = null;
const handlers = []; // [event, handler]: attached to every socket, including one made after a new sign-in

/** Listen to a server event on the current and any later connection. */
export function subscribe(event, handler) {
  handlers.push([event, handler]);
  if (socket) socket.on(event, handler);
}

export function getSocket() {
  if (socket) return socket;
  socket = io({
    // The token is read at each (re)connection, so a refreshed token is used.
    auth: (callback) => callback({ token: accessToken() }),
    transports: ["websocket", "polling"],
    reconnectionDelayMax: 5000,
  });
  for (const [event, handler] of handlers) socket.on(event, handler);
  let retried = false;
  socket.on("connect", () => {
    retried = false;
  });
  socket.on("connect_error", async (error) => {
    const code = error && error.data && error.data.code;
    if (!code) return; // a network problem: socket.io retries by itself
    if (!retried && (await refreshAccess())) {
      retried = true;
      socket.connect();
      return;
    }
    expireSession("Your session has ended. Please sign in again.");
  });
  return socket;
}

export function closeSocket() {
  if (socket) {
    socket.disconnect();
    socket = null;
  }
}
