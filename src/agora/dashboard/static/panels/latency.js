// Latency percentiles of the last minute, and p50/p95/p99 per bucket across the range.
import { lines } from "../charts.js";
import { setMetric } from "../dom.js";
import { number } from "../format.js";

export function render(panel, snapshot) {
  const logs = snapshot.logs;
  if (!logs) return;
  for (const name of ["p50", "p95", "p99"]) setMetric(panel, `${name}_ms`, number(logs[name]));
  const series = logs.series;
  lines(panel.querySelector("[data-chart]"), snapshot, {
    p50: series.p50,
    p95: series.p95,
    p99: series.p99,
  });
}
