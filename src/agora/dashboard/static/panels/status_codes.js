// How many answers of each status code the range saw.
import { bars } from "../charts.js";

export function render(panel, snapshot) {
  if (!snapshot.rankings) return;
  const codes = snapshot.rankings.status_codes;
  bars(
    panel.querySelector("[data-chart]"),
    codes.map((entry) => String(entry.value)),
    codes.map((entry) => entry.count),
  );
}
