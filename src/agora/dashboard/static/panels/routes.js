// Per-route request counts, error rates and latency percentiles over the range.
import { fillRows } from "../dom.js";
import { number, ratio } from "../format.js";

export function render(panel, snapshot) {
  if (!snapshot.logs) return;
  fillRows(panel.querySelector("[data-rows]"), snapshot.logs.routes, (route) => [
    route.route,
    number(route.count),
    ratio(route.error_rate),
    number(route.p50),
    number(route.p95),
    number(route.p99),
  ]);
}
