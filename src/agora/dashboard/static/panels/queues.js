// Work waiting: task queue, outbox backlog, flash-sale tickets, log ingest buffer.
import { fillRows, t } from "../dom.js";
import { number } from "../format.js";

export function render(panel, snapshot) {
  fillRows(panel.querySelector("[data-rows]"), snapshot.queues, (queue) => [
    queue.name,
    queue.depth === null ? t("unavailable") : number(queue.depth),
  ]);
}
