// Sign-in for staff. Tokens live only in this module's memory (never in storage or cookies):
// a reload means signing in again. The access token is refreshed at 80 % of its lifetime; a
// customer account is told "staff only" and its tokens are dropped at once. Sockets carry the
// token in their offered subprotocols, never in the URL (which servers and proxies log).

const API = "/api/v1";
const STAFF_ROLES = new Set(["staff", "admin"]);

// A socket to this origin's `path?query`, authenticated by `token`: it offers "agora" (which the
// server selects) and "bearer.<token>".
export function openSocket(path, query, token) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const url = `${scheme}://${location.host}${path}?${query}`;
  return new WebSocket(url, ["agora", `bearer.${token}`]);
}

export class Session {
  #access = null;
  #refresh = null;
  #timer = null;

  constructor({ onToken, onEnded }) {
    this.onToken = onToken;
    this.onEnded = onEnded;
  }

  get accessToken() {
    return this.#access;
  }

  // Resolves to "ok", "failed" (wrong credentials) or "staff_only".
  async signIn(email, password) {
    const form = new URLSearchParams({ username: email, password });
    const answer = await fetch(`${API}/auth/token`, { method: "POST", body: form });
    if (!answer.ok) return "failed";
    const pair = await answer.json();
    const me = await fetch(`${API}/me`, {
      headers: { Authorization: `Bearer ${pair.access_token}` },
    });
    const user = me.ok ? await me.json() : null;
    if (!user || !STAFF_ROLES.has(user.role)) {
      await this.#revoke(pair.refresh_token);
      return "staff_only";
    }
    this.#keep(pair);
    return "ok";
  }

  async signOut() {
    const refresh = this.#refresh;
    this.#drop();
    if (refresh) await this.#revoke(refresh);
  }

  // Ask for a new pair now (also used when the feed reports its token expired).
  async refresh() {
    if (!this.#refresh) return false;
    const answer = await fetch(`${API}/auth/refresh`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token: this.#refresh }),
    });
    if (!answer.ok) {
      this.#drop();
      this.onEnded("session_expired");
      return false;
    }
    this.#keep(await answer.json());
    return true;
  }

  #keep(pair) {
    this.#access = pair.access_token;
    this.#refresh = pair.refresh_token;
    clearTimeout(this.#timer);
    const seconds = Math.max(5, pair.expires_in * 0.8);
    this.#timer = setTimeout(() => this.refresh(), seconds * 1000);
    this.onToken(this.#access);
  }

  #drop() {
    clearTimeout(this.#timer);
    this.#access = null;
    this.#refresh = null;
  }

  async #revoke(refreshToken) {
    await fetch(`${API}/auth/logout`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token: refreshToken }),
    });
  }
}
