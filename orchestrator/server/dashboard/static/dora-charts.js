// The history page's small DORA charts: each element with data-chart (a title, a unit and uPlot's series
// [[x seconds…], [values…]], null where a part of the window had nothing to measure) becomes a uPlot line.
// The figure is written out beside the chart too; the chart only shows how it moved.
"use strict";

function drawDoraCharts() {
  if (typeof uPlot === "undefined") return;
  for (const element of document.querySelectorAll("[data-chart]")) {
    if (element.dataset.drawn) continue;
    const chart = JSON.parse(element.dataset.chart);
    const width = Math.max(160, Math.min(element.clientWidth || 240, 360));
    const options = {
      width: width,
      height: 90,
      legend: { show: false },
      cursor: { show: false },
      scales: { x: { time: true } },
      axes: [{ show: false }, { size: 44, stroke: "#4a5360" }],
      series: [{}, { label: chart.unit, stroke: "#0b5cad", width: 2, points: { show: true, size: 5 }, spanGaps: false }],
    };
    new uPlot(options, chart.series, element);
    element.dataset.drawn = "1";
  }
}

document.addEventListener("DOMContentLoaded", drawDoraCharts);
