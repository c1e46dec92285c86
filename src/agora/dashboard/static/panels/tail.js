// Live tail: the log platform's own socket (/ws/logs), filtered by a query in its language.
// Lines are prepended as they arrive; pausing closes the socket and resuming reopens it after the
// last line shown, so nothing stored meanwhile is missed. Clicking a line lists all its fields.
import { openSocket } from "../auth.js";
import { element, t } from "../dom.js";

const MAX_LINES = 200;
const SUMMARY = ["status", "method", "path", "duration_ms", "level", "message"];

export class Tail {
  #socket = null;
  #token = null;
  #after = null;
  #query = "";
  #paused = false;
  #retry = null;

  constructor(panel) {
    this.panel = panel;
    this.lines = panel.querySelector("[data-tail-lines]");
    this.fields = panel.querySelector("[data-tail-fields]");
    this.notice = panel.querySelector("[data-tail-notice]");
    this.pauseButton = panel.querySelector("[data-tail-pause]");
    panel.querySelector("[data-tail-query]").addEventListener("submit", (event) => {
      event.preventDefault();
      this.#apply(new FormData(event.target).get("q").trim());
    });
    this.pauseButton.addEventListener("click", () => this.#togglePause());
  }

  start(session) {
    this.#token = session.accessToken;
    this.#open();
  }

  stop() {
    this.#close();
    this.lines.replaceChildren();
    this.fields.hidden = true;
  }

  setToken(token) {
    this.#token = token;
  }

  async #apply(query) {
    const check = await fetch(`/api/v1/logs/search?${new URLSearchParams({ q: query, limit: 1 })}`, {
      headers: { Authorization: `Bearer ${this.#token}` },
    });
    if (check.status === 422) {
      this.notice.textContent = (await check.json()).detail;
      return;
    }
    this.#query = query;
    this.#after = null;
    this.lines.replaceChildren();
    this.fields.hidden = true;
    this.notice.textContent = "";
    this.#open();
  }

  #togglePause() {
    this.#paused = !this.#paused;
    this.pauseButton.textContent = t(this.#paused ? "resume" : "pause");
    this.pauseButton.setAttribute("aria-pressed", String(this.#paused));
    this.panel.dataset.paused = String(this.#paused);
    this.notice.textContent = this.#paused ? t("paused") : "";
    if (this.#paused) this.#close();
    else this.#open();
  }

  #open() {
    this.#close();
    if (!this.#token || this.#paused) return;
    const query = new URLSearchParams({ q: this.#query });
    if (this.#after) query.set("after", this.#after);
    const socket = openSocket("/ws/logs", query, this.#token);
    this.#socket = socket;
    delete this.panel.dataset.liveQuery;
    // Which query the open socket serves, for people (and tests) who script the page.
    socket.addEventListener("open", () => {
      if (socket === this.#socket) this.panel.dataset.liveQuery = query.get("q");
    });
    socket.addEventListener("message", (event) => this.#received(JSON.parse(event.data)));
    socket.addEventListener("close", () => {
      if (socket !== this.#socket) return;
      this.#socket = null;
      this.#retry = setTimeout(() => this.#open(), 1000);
    });
  }

  #close() {
    clearTimeout(this.#retry);
    const socket = this.#socket;
    this.#socket = null;
    if (socket) socket.close();
  }

  #received(message) {
    if (message.type === "line") {
      this.#after = message.id;
      this.#show(message.line);
    } else if (message.type === "dropped") {
      this.notice.textContent = `${message.count} ${t("dropped")}`;
    }
  }

  #show(line) {
    const text = [String(line.ts).slice(11, 23), ...SUMMARY.map((name) => line[name])]
      .filter((value) => value !== null && value !== undefined && value !== "")
      .join("  ");
    const item = element("li", text, { tabindex: "0", "data-line-id": String(line.id) });
    item.addEventListener("click", () => this.#details(item, line));
    item.addEventListener("keydown", (event) => event.key === "Enter" && this.#details(item, line));
    this.lines.prepend(item);
    while (this.lines.childElementCount > MAX_LINES) this.lines.lastElementChild.remove();
  }

  #details(item, line) {
    for (const other of this.lines.querySelectorAll("[aria-selected]")) {
      other.removeAttribute("aria-selected");
    }
    item.setAttribute("aria-selected", "true");
    const entries = Object.entries(line).flatMap(([name, value]) => [
      element("dt", name),
      element("dd", typeof value === "object" && value !== null ? JSON.stringify(value) : value),
    ]);
    this.fields.replaceChildren(...entries);
    this.fields.hidden = false;
  }
}
