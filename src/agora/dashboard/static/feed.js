// The snapshot socket. Each message is a whole snapshot, so the page only ever draws the newest:
// while the browser is busy, the server overwrites what it has not sent yet. Closed with 4401
// (token expired), it asks the session for a fresh token before reconnecting.

import { openSocket } from "./auth.js";

const TOKEN_EXPIRED = 4401;
const POLICY_VIOLATION = 1008;

export class Feed {
  #socket = null;
  #range = "15m";
  #retry = null;

  constructor({ session, onSnapshot, onStatus }) {
    this.session = session;
    this.onSnapshot = onSnapshot;
    this.onStatus = onStatus;
  }

  open() {
    this.close();
    const token = this.session.accessToken;
    if (!token) return;
    const socket = openSocket("/ws/dashboard", new URLSearchParams({ range: this.#range }), token);
    this.#socket = socket;
    this.onStatus("connecting");
    socket.addEventListener("open", () => this.onStatus("live"));
    socket.addEventListener("message", (event) => this.onSnapshot(JSON.parse(event.data)));
    socket.addEventListener("close", (event) => this.#closed(socket, event.code));
  }

  close() {
    clearTimeout(this.#retry);
    const socket = this.#socket;
    this.#socket = null;
    if (socket) socket.close();
  }

  setRange(range) {
    this.#range = range;
    this.#send({ type: "range", range });
  }

  setToken(token) {
    this.#send({ type: "token", token });
  }

  #send(message) {
    if (this.#socket?.readyState === WebSocket.OPEN) this.#socket.send(JSON.stringify(message));
  }

  async #closed(socket, code) {
    if (socket !== this.#socket) return;
    this.#socket = null;
    this.onStatus("reconnecting");
    if (code === TOKEN_EXPIRED || code === POLICY_VIOLATION) {
      if (!(await this.session.refresh())) return;
    }
    this.#retry = setTimeout(() => this.open(), 1000);
  }
}
