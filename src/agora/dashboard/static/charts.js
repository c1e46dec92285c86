// Charts through the chart library the page loads from this server (window.Plotly). Each call
// redraws in place (Plotly.react), so a snapshot every second costs a diff, not a new chart.

const layout = {
  margin: { l: 36, r: 8, t: 4, b: 24 },
  height: 140,
  paper_bgcolor: "rgba(0,0,0,0)",
  plot_bgcolor: "rgba(0,0,0,0)",
  font: { size: 10, color: "#c9d1d9" },
  showlegend: false,
  xaxis: { type: "date", gridcolor: "#30363d" },
  yaxis: { gridcolor: "#30363d", rangemode: "tozero" },
};
const config = { displayModeBar: false, responsive: true, staticPlot: false };

// The bucket start times of a snapshot, as dates for the x axis.
export function times(snapshot, length) {
  return Array.from({ length }, (_, i) => new Date((snapshot.start + i * snapshot.step) * 1000));
}

export function lines(container, snapshot, named) {
  if (!window.Plotly || !container) return;
  const traces = Object.entries(named).map(([name, values]) => ({
    type: "scatter",
    mode: "lines",
    name,
    x: times(snapshot, values.length),
    y: values,
    line: { width: 1.5, shape: "hv" },
  }));
  window.Plotly.react(container, traces, { ...layout, showlegend: traces.length > 1 }, config);
}

export function bars(container, labels, values) {
  if (!window.Plotly || !container) return;
  const trace = { type: "bar", x: labels, y: values, marker: { color: "#58a6ff" } };
  window.Plotly.react(
    container,
    [trace],
    { ...layout, xaxis: { type: "category", gridcolor: "#30363d" } },
    config,
  );
}
