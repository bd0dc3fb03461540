/* BranchBot console: CSRF header for htmx requests, and the dashboard's ECharts. */
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');
  document.addEventListener("htmx:configRequest", function (event) {
    if (meta && meta.content) { event.detail.headers["X-CSRF-Token"] = meta.content; }
  });
  document.addEventListener("click", function (event) {
    var target = event.target.closest("[data-confirm]");
    if (target && !window.confirm(target.getAttribute("data-confirm"))) { event.preventDefault(); }
  });

  var RED = "#c8161d", GOLD = "#d4a017", GREY = "#8c8c8c";
  var builders = {
    bars: function (d) {
      return {
        color: [RED, GOLD],
        tooltip: { trigger: "axis" },
        legend: { data: ["参与率（%）", "平均分"], top: 0 },
        grid: { left: 8, right: 8, top: 34, bottom: 8, containLabel: true },
        xAxis: { type: "category", data: d.names, axisLabel: { interval: 0, rotate: d.names.length > 4 ? 30 : 0 } },
        yAxis: [{ type: "value", max: 100, name: "%" }, { type: "value", name: "分" }],
        series: [
          { name: "参与率（%）", type: "bar", data: d.participation, label: { show: true, position: "top" } },
          { name: "平均分", type: "bar", yAxisIndex: 1, data: d.average }
        ]
      };
    },
    trend: function (d) {
      var names = d.series.map(function (s) { return s.name; });
      return {
        color: [RED, GREY],
        tooltip: { trigger: "axis" },
        legend: { data: names, top: 0 },
        grid: { left: 8, right: 16, top: 34, bottom: 8, containLabel: true },
        xAxis: { type: "category", data: d.months.map(function (m) { return m.slice(2).replace("-", "/"); }) },
        yAxis: { type: "value", max: 100, name: "%" },
        series: d.series.map(function (s) { return { name: s.name, type: "line", data: s.data, symbolSize: 6 }; })
      };
    },
    scores: function (d) {
      return {
        color: [RED],
        tooltip: { trigger: "axis" },
        grid: { left: 8, right: 30, top: 34, bottom: 8, containLabel: true },
        xAxis: { type: "category", data: d.scores, name: "分" },
        yAxis: { type: "value", minInterval: 1, name: "人" },
        series: [{ type: "bar", data: d.counts, label: { show: true, position: "top" } }]
      };
    }
  };

  function drawCharts() {
    var holder = document.getElementById("chart-data");
    if (!holder || !window.echarts) { return; }
    var data = JSON.parse(holder.textContent);
    var charts = [];
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var name = el.getAttribute("data-chart");
      if (!builders[name] || !data[name]) { return; }
      var chart = window.echarts.init(el, null, { renderer: "canvas" });
      var option = builders[name](data[name]);
      option.animationDuration = 300;
      chart.on("finished", function () { el.setAttribute("data-drawn", "1"); });
      chart.setOption(option);
      charts.push(chart);
    });
    window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
  }
  document.addEventListener("DOMContentLoaded", drawCharts);  // deferred scripts (echarts too) have all run by then
})();
