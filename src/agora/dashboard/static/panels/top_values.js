// The most frequent paths and client addresses over the range, with their counts.
import { fillRows } from "../dom.js";
import { number } from "../format.js";

function topList(field) {
  return (panel, snapshot) => {
    if (!snapshot.rankings) return;
    fillRows(panel.querySelector("[data-rows]"), snapshot.rankings[field], (entry) => [
      entry.value,
      number(entry.count),
    ]);
  };
}

export const renderPaths = topList("top_paths");
export const renderIps = topList("top_ips");
