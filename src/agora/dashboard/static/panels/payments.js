// Payment callbacks received over the range, per provider and outcome.
import { fillRows } from "../dom.js";
import { number } from "../format.js";

export function render(panel, snapshot) {
  fillRows(panel.querySelector("[data-rows]"), snapshot.commerce.callbacks, (entry) => [
    entry.provider,
    entry.outcome,
    number(entry.count),
  ]);
}
