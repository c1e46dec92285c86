// Paid revenue in the last minute per currency (never summed across currencies), and per bucket.
import { lines } from "../charts.js";
import { setMetric, t } from "../dom.js";
import { majorUnits, money } from "../format.js";

export function render(panel, snapshot) {
  const commerce = snapshot.commerce;
  const figures = commerce.revenue_per_minute.map((entry) => money(entry.amount, entry.currency));
  setMetric(panel, "revenue_per_minute", figures.length ? figures.join(" · ") : t("nothing_yet"));
  const series = Object.fromEntries(
    Object.entries(commerce.revenue_series).map(([currency, values]) => [
      currency,
      values.map((amount) => majorUnits(amount, currency)),
    ]),
  );
  lines(panel.querySelector("[data-chart]"), snapshot, series);
}
