// Charts drawn from data the page carries in a json_script block (no inline script, so the
// CSP stays strict). Each chart has a table beside it with the same numbers.
//   <canvas data-chart="bar" data-chart-data="id-of-json-script">
// The data: {labels: [...], series: [{label, values, axis?: "money"}]}.
document.addEventListener("DOMContentLoaded", () => {
  if (!window.Chart) return;
  const root = document.documentElement;
  const rtl = root.dir === "rtl";
  const locale = root.lang || "en";
  const colours = ["#0d6efd", "#fd7e14", "#198754", "#6f42c1"];
  for (const canvas of document.querySelectorAll("canvas[data-chart]")) {
    const source = document.getElementById(canvas.dataset.chartData);
    if (!source) continue;
    const data = JSON.parse(source.textContent);
    const money = data.series.some((s) => s.axis === "money");
    new window.Chart(canvas, {
      type: canvas.dataset.chart,
      data: {
        labels: data.labels,
        datasets: data.series.map((s, i) => ({
          label: s.label,
          data: s.values,
          type: s.axis === "money" ? "line" : undefined,
          yAxisID: s.axis === "money" ? "money" : "y",
          backgroundColor: colours[i % colours.length],
          borderColor: colours[i % colours.length],
          maxBarThickness: 48,
        })),
      },
      options: {
        locale,
        maintainAspectRatio: false,
        animation: false,
        plugins: { legend: { rtl, position: "bottom" }, tooltip: { rtl } },
        scales: {
          x: { reverse: rtl },
          y: { beginAtZero: true, position: rtl ? "right" : "left", ticks: { precision: 0 } },
          ...(money ? { money: { beginAtZero: true, position: rtl ? "left" : "right",
                                 grid: { drawOnChartArea: false } } } : {}),
        },
      },
    });
  }
});
