// Live flash sales: units sold, remaining and waiting in the ticket queue.
import { fillRows, setMetric } from "../dom.js";
import { number, time } from "../format.js";

export function render(panel, snapshot) {
  const commerce = snapshot.commerce;
  setMetric(panel, "flash_sale_remaining", number(commerce.flash_sale_remaining));
  fillRows(panel.querySelector("[data-rows]"), commerce.flash_sales, (sale) => [
    `${sale.id.slice(0, 8)} → ${time(sale.ends_at)}`,
    number(sale.sold),
    number(sale.remaining),
    number(sale.queued),
  ]);
}
