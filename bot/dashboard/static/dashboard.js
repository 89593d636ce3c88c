// Fleetwarden's dashboard: live updates by server-sent events, charts by uPlot.
// Loaded from this server only (the page's CSP allows no inline script and no other origin).
"use strict";

(function () {
  const main = document.getElementById("live");
  const badge = document.getElementById("live-state");
  if (!main) return;

  function setState(state, text) {
    if (!badge) return;
    badge.dataset.state = state;
    badge.textContent = text;
    main.classList.toggle("stale", state !== "live");
  }

  function fmtTokens(v) {
    if (v == null) return "";
    const a = Math.abs(v);
    if (a >= 1e9) return (v / 1e9).toFixed(1) + "G";
    if (a >= 1e6) return (v / 1e6).toFixed(1) + "M";
    if (a >= 1e3) return (v / 1e3).toFixed(1) + "k";
    return String(Math.round(v));
  }

  function drawCharts() {
    if (typeof uPlot === "undefined") return;
    for (const el of main.querySelectorAll(".chart[data-chart]")) {
      const chart = JSON.parse(el.dataset.chart);
      const usd = el.dataset.unit === "usd";
      const fmt = usd ? (v) => (v == null ? "" : "$" + v.toFixed(2)) : fmtTokens;
      el.textContent = "";
      const width = Math.max(320, Math.min(el.clientWidth || 720, 1100));
      new uPlot({
        width: width,
        height: 220,
        series: [
          {},
          { label: "used", stroke: "#2563eb", width: 2, fill: "rgba(37,99,235,0.08)", value: (u, v) => fmt(v) },
          { label: "even spread", stroke: "#9ca3af", width: 1, dash: [6, 4], value: (u, v) => fmt(v) },
        ],
        axes: [{}, { values: (u, vals) => vals.map(fmt), size: 70 }],
        scales: { y: { range: [0, Math.max(chart.limit, ...chart.used.filter((v) => v != null)) * 1.05 || 1] } },
        spanGaps: true,
      }, [chart.x, chart.used, chart.even], el);
      el.dataset.drawn = "yes";
    }
  }

  function listen() {
    const topic = main.dataset.topic;
    const source = new EventSource("/events?topic=" + encodeURIComponent(topic));
    source.addEventListener("fragment", (event) => {
      main.innerHTML = event.data;
      drawCharts();
      setState("live", "live");
    });
    source.addEventListener("hello", () => setState("live", "live"));
    source.addEventListener("signedout", () => {
      source.close();
      window.location.reload();
    });
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        // Refused outright (signed out, or the server restarted without this session):
        // the page itself says why.
        setState("offline", "offline: reloading…");
        window.setTimeout(() => window.location.reload(), 3000);
        return;
      }
      setState("reconnecting", "reconnecting… (not live)");
    };
  }

  drawCharts();
  listen();
})();
