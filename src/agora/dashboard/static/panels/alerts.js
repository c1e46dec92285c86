// Alerts: what fires now (with its value and since when), recent episodes, rules and their state.
import { element, fillRows, t } from "../dom.js";
import { number, time } from "../format.js";

export function render(panel, snapshot) {
  const alerts = snapshot.alerts;
  if (!alerts) return;
  const firing = alerts.firing.map((episode) =>
    element("li", `${episode.rule}: ${number(episode.value)} (${t("since")} ${time(episode.since)})`, {
      "data-alert": episode.rule,
    }),
  );
  panel.querySelector("[data-firing]").replaceChildren(...firing);
  panel.dataset.firing = String(firing.length);
  fillRows(panel.querySelector("[data-recent]"), alerts.recent, (episode) => [
    episode.rule,
    episode.status,
    number(episode.peak),
    time(episode.since),
  ]);
  fillRows(panel.querySelector("[data-rules]"), alerts.rules, (rule) => [
    rule.name,
    rule.condition,
    rule.state,
    number(rule.value),
  ]);
}
