// Price watch now: pages priced below our variant (widest gap first) and the newest price changes.
import { fillRows, t } from "../dom.js";
import { money, time } from "../format.js";

export function render(panel, snapshot) {
  const watch = snapshot.pricewatch;
  if (!watch) return;
  fillRows(panel.querySelector("[data-undercuts]"), watch.undercuts, (undercut) => [
    undercut.page,
    money(undercut.our_price, undercut.currency),
    money(undercut.their_price, undercut.currency),
    money(undercut.gap, undercut.currency),
  ]);
  fillRows(panel.querySelector("[data-changes]"), watch.changes, (change) => [
    change.page,
    price(change.price, change.currency),
    price(change.previous, change.currency),
    change.in_stock === null ? "–" : t(change.in_stock ? "in_stock" : "out_of_stock"),
    time(change.at),
  ]);
}

function price(amount, currency) {
  return amount === null || currency === null ? "–" : money(amount, currency);
}
