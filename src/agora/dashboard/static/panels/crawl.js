// The crawler now: pages/s overall, and per host (busiest first) URLs queued and leased, pages
// fetched, errors and the next allowed start.
import { fillRows, setMetric, t } from "../dom.js";
import { number, time } from "../format.js";

export function render(panel, snapshot) {
  const crawl = snapshot.crawl;
  if (!crawl) return;
  setMetric(panel, "crawl_pages_per_second", number(crawl.pages_per_second));
  const total = panel.querySelector("[data-hosts-total]");
  total.textContent = number(crawl.hosts_total);
  const now = Date.parse(snapshot.at);
  fillRows(panel.querySelector("[data-rows]"), crawl.hosts, (host) => [
    host.host,
    number(host.queued),
    number(host.leased),
    number(host.fetched),
    number(host.errors),
    nextStart(host.next_allowed_start_at, now),
  ]);
}

function nextStart(at, now) {
  if (at === null) return "–";
  return Date.parse(at) > now ? time(at) : t("now");
}
