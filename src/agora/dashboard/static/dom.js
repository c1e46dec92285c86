// Small DOM helpers. Text always goes in through textContent, never as HTML, so a log line or a
// path carrying markup is shown, not run.

export const messages = JSON.parse(document.getElementById("messages").textContent);

export function t(key) {
  return messages[key] ?? key;
}

export function element(tag, text, attributes = {}) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  return node;
}

// Replace a tbody's rows with one row per record, one cell per value.
export function fillRows(tbody, records, cells) {
  const rows = records.map((record) => {
    const row = element("tr");
    for (const value of cells(record)) row.append(element("td", value));
    return row;
  });
  if (rows.length === 0) {
    const empty = element("tr");
    empty.append(element("td", t("nothing_yet"), { class: "empty", colspan: "6" }));
    rows.push(empty);
  }
  tbody.replaceChildren(...rows);
}

export function setMetric(panel, name, text) {
  const node = panel.querySelector(`[data-metric="${name}"]`);
  if (node && node.textContent !== text) node.textContent = text;
}
