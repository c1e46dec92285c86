// Share of requests answered 5xx over the last minute, and per bucket across the range.
import { lines } from "../charts.js";
import { setMetric } from "../dom.js";
import { ratio } from "../format.js";

export function render(panel, snapshot) {
  const logs = snapshot.logs;
  if (!logs) return;
  setMetric(panel, "error_rate", ratio(logs.error_rate));
  lines(panel.querySelector("[data-chart]"), snapshot, { "5xx": logs.series.error_rate });
}
