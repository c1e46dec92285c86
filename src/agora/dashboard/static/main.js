// Wires the page: sign-in, the snapshot feed, the range picker and one module per panel.
import { Session } from "./auth.js";
import { t } from "./dom.js";
import { Feed } from "./feed.js";
import * as alerts from "./panels/alerts.js";
import * as crawl from "./panels/crawl.js";
import * as errors from "./panels/errors.js";
import * as flashSales from "./panels/flash_sales.js";
import * as latency from "./panels/latency.js";
import * as orders from "./panels/orders.js";
import * as payments from "./panels/payments.js";
import * as pricewatch from "./panels/pricewatch.js";
import * as queues from "./panels/queues.js";
import * as requests from "./panels/requests.js";
import * as revenue from "./panels/revenue.js";
import * as routes from "./panels/routes.js";
import * as statusCodes from "./panels/status_codes.js";
import { Tail } from "./panels/tail.js";
import { renderIps, renderPaths } from "./panels/top_values.js";

const renderers = {
  requests: requests.render,
  errors: errors.render,
  latency: latency.render,
  orders: orders.render,
  revenue: revenue.render,
  flash_sales: flashSales.render,
  routes: routes.render,
  status_codes: statusCodes.render,
  top_paths: renderPaths,
  top_ips: renderIps,
  payments: payments.render,
  queues: queues.render,
  alerts: alerts.render,
  crawl: crawl.render,
  pricewatch: pricewatch.render,
};
// Panels with their own life besides the snapshot (sockets, controls).
const extensions = [new Tail(document.querySelector('[data-panel="tail"]'))];

const signInPanel = document.querySelector('[data-panel="signin"]');
const sessionBar = document.querySelector('[data-panel="session"]');
const board = document.querySelector("[data-board]");
const notice = signInPanel.querySelector("[data-notice]");
const status = sessionBar.querySelector("[data-status]");

const session = new Session({
  onToken: (token) => {
    feed.setToken(token);
    for (const extension of extensions) extension.setToken?.(token);
  },
  onEnded: (reason) => showSignIn(reason),
});
const feed = new Feed({
  session,
  onSnapshot: (snapshot) => requestAnimationFrame(() => draw(snapshot)),
  onStatus: (state) => {
    status.textContent = t(state);
    status.dataset.state = state;
  },
});

function draw(snapshot) {
  for (const [name, render] of Object.entries(renderers)) {
    const panel = board.querySelector(`[data-panel="${name}"]`);
    try {
      render(panel, snapshot);
    } catch (error) {
      console.warn(`panel ${name} could not draw`, error);
    }
  }
  for (const extension of extensions) extension.render?.(snapshot);
  board.dataset.range = snapshot.range;
}

function showBoard() {
  signInPanel.hidden = true;
  sessionBar.hidden = false;
  board.hidden = false;
  feed.open();
  for (const extension of extensions) extension.start?.(session);
}

function showSignIn(reason) {
  feed.close();
  for (const extension of extensions) extension.stop?.();
  board.hidden = true;
  sessionBar.hidden = true;
  signInPanel.hidden = false;
  notice.textContent = reason ? t(reason) : "";
  notice.dataset.reason = reason ?? "";
}

signInPanel.querySelector("[data-sign-in]").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const outcome = await session.signIn(form.get("username"), form.get("password"));
  if (outcome === "ok") {
    event.target.reset();
    notice.textContent = "";
    showBoard();
  } else {
    showSignIn(outcome === "staff_only" ? "staff_only" : "sign_in_failed");
  }
});

sessionBar.querySelector("[data-sign-out]").addEventListener("click", async () => {
  await session.signOut();
  showSignIn(null);
});

for (const button of sessionBar.querySelectorAll("[data-range]")) {
  button.addEventListener("click", () => {
    for (const other of sessionBar.querySelectorAll("[data-range]")) {
      other.setAttribute("aria-pressed", String(other === button));
    }
    feed.setRange(button.dataset.range);
  });
}
