// The dashboard's own behaviour, kept small: the pages work as plain HTML forms and links, and htmx with its
// SSE extension keeps them current. No inline scripts (the Content-Security-Policy forbids them).
"use strict";

document.addEventListener("change", (event) => {
  // A filter applies as soon as it is chosen (the form's button does the same without scripts).
  const select = event.target.closest("select[data-autosubmit]");
  if (select && select.form) select.form.requestSubmit();
});

document.addEventListener("submit", (event) => {
  // A form that changes a rollout asks first: its data-confirm says what will happen.
  const question = event.target.getAttribute("data-confirm");
  if (question && !window.confirm(question)) event.preventDefault();
});

// --- charts (uPlot) --------------------------------------------------------------------------------------
// A region with data-live-charts="<url>" draws the charts that URL describes ({charts: [{id, title, kind,
// x, series: [{label, values}], threshold}]}) and draws them again whenever its live panel was refreshed.

const PALETTE = ["#0b5cad", "#b3261e", "#1e7d32", "#7b3fa0", "#9a6700", "#006d75"];
const plots = new Map();

function chartOptions(chart, width, span) {
  const stepped = chart.kind === "traffic" && uPlot.paths.stepped ? uPlot.paths.stepped({ align: 1 }) : undefined;
  const series = [{}];
  const clusters = [];
  chart.series.forEach((s) => {
    const cluster = s.label.split(" ")[0];
    if (!clusters.includes(cluster)) clusters.push(cluster);
    const colour = PALETTE[clusters.indexOf(cluster) % PALETTE.length];
    series.push({
      label: s.label,
      stroke: colour,
      width: 2,
      dash: s.label.endsWith(" stable") ? [4, 3] : undefined,
      spanGaps: true,
      points: { show: chart.kind !== "traffic" },
      paths: stepped,
    });
  });
  if (chart.threshold) {
    series.push({ label: `threshold ${chart.threshold.op} ${chart.threshold.value}`, stroke: "#333", width: 1, dash: [8, 5], points: { show: false } });
  }
  return {
    width: width,
    height: 220,
    series: series,
    scales: {
      // The deployment's whole span, read afresh at each redraw (span.now is updated with the data).
      x: { time: true, range: (u, min, max) => (span.now && span.now[1] > span.now[0] ? span.now : [min, max]) },
      y: chart.kind === "traffic" ? { range: [0, 100] } : {},
    },
    axes: [{}, {}],
  };
}

function chartData(chart) {
  const data = [chart.x, ...chart.series.map((s) => s.values)];
  if (chart.threshold) data.push(chart.x.map(() => chart.threshold.value));
  return data;
}

function chartBox(holder, chart) {
  let box = holder.querySelector(`[data-chart="${CSS.escape(chart.id)}"]`);
  if (!box) {
    box = document.createElement("figure");
    box.className = "chart";
    box.setAttribute("data-chart", chart.id);
    const caption = document.createElement("figcaption");
    caption.textContent = chart.title;
    box.appendChild(caption);
    holder.appendChild(box);
  }
  box.setAttribute("data-points", String(chart.x.length));
  return box;
}

function drawCharts(region) {
  const holder = region.querySelector("#charts");
  if (!holder || typeof uPlot === "undefined") return;
  fetch(region.getAttribute("data-live-charts"), { credentials: "same-origin" })
    .then((answer) => (answer.ok ? answer.json() : Promise.reject(answer.status)))
    .then((described) => {
      // Every figure first, so each is measured in its final grid column.
      const boxes = described.charts.map((chart) => chartBox(holder, chart));
      described.charts.forEach((chart, index) => {
        const box = boxes[index];
        const width = Math.max(240, box.clientWidth);
        const known = plots.get(chart.id);
        const shape = chart.series.length + (chart.threshold ? 1 : 0);
        if (known && known.shape === shape) {
          known.span.now = chart.span;
          known.plot.setData(chartData(chart));
          if (Math.abs(known.plot.width - width) > 1) known.plot.setSize({ width: width, height: 220 });
        } else {
          if (known) known.plot.destroy();
          const span = { now: chart.span };
          const plot = new uPlot(chartOptions(chart, width, span), chartData(chart), box);
          plot.root.setAttribute("role", "img");
          plot.root.setAttribute("aria-label", chart.title);
          plots.set(chart.id, { plot: plot, shape: shape, span: span });
        }
      });
    })
    .catch(() => {});  // the tables beside the charts say the same; the next change draws again
}

window.addEventListener("resize", () => {
  plots.forEach((known, id) => {
    const box = document.querySelector(`[data-chart="${CSS.escape(id)}"]`);
    if (box) known.plot.setSize({ width: Math.max(240, box.clientWidth), height: 220 });
  });
});

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-live-charts]").forEach(drawCharts);
});

document.addEventListener("htmx:afterSettle", (event) => {
  // Once per change: after the summary (the part that always changes with the charts) was fetched again.
  const region = event.target.id === "summary" ? event.target.closest("[data-live-charts]") : null;
  if (region) drawCharts(region);
});
