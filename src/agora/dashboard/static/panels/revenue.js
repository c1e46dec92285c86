// Paid revenue in the last minute per currency (never summed across currencies), and per bucket.
import { lines } from "../charts.js";
import { setMetric, t } from "../dom.js";
import { money } from "../format.js";

export function render(panel, snapshot) {
  const commerce = snapshot.commerce;
  const figures = commerce.revenue_per_minute.map((entry) => money(entry.amount, entry.currency));
  setMetric(panel, "revenue_per_minute", figures.length ? figures.join(" · ") : t("nothing_yet"));
  lines(panel.querySelector("[data-chart]"), snapshot, commerce.revenue_series);
}
