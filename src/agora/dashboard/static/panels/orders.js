// Orders placed in the last minute, and per bucket across the range.
import { lines } from "../charts.js";
import { setMetric } from "../dom.js";
import { number } from "../format.js";

export function render(panel, snapshot) {
  const commerce = snapshot.commerce;
  setMetric(panel, "orders_per_minute", number(commerce.orders_per_minute));
  lines(panel.querySelector("[data-chart]"), snapshot, { orders: commerce.orders_series });
}
