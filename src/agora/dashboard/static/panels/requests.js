// Requests per second over the last minute, and per second across the chosen range.
import { lines } from "../charts.js";
import { setMetric } from "../dom.js";
import { number } from "../format.js";

export function render(panel, snapshot) {
  const logs = snapshot.logs;
  if (!logs) return;
  setMetric(panel, "requests_per_second", number(logs.requests_per_second));
  const perSecond = logs.series.requests.map((count) => count / snapshot.step);
  lines(panel.querySelector("[data-chart]"), snapshot, { "req/s": perSecond });
}
