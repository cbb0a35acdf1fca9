// watchkeeper's dashboard charts: small, dependency-free SVG charts with hover details.
// Each element with data-chart="line" or data-chart="bars" reads its JSON from the
// <script type="application/json"> element named by data-source.
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var W = 760, H = 280, PAD = 44;

  function el(name, attrs, parent) {
    var node = document.createElementNS(NS, name);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (parent) { parent.appendChild(node); }
    return node;
  }
  function text(parent, x, y, value, cls, anchor) {
    var t = el("text", { x: x, y: y, "class": cls || "tick", "text-anchor": anchor || "start" }, parent);
    t.textContent = value;
    return t;
  }
  function fmt(v) {
    if (v === null || v === undefined) { return "–"; }
    var a = Math.abs(v);
    return a !== 0 && (a < 0.001 || a >= 100000) ? v.toExponential(2) : (+v.toPrecision(4)).toString();
  }

  function line(host, data) {
    var svg = el("svg", { viewBox: "0 0 " + W + " " + H, "class": "chart", role: "img" }, host);
    var all = [];
    data.series.forEach(function (s) { s.points.forEach(function (p) { all.push(p); }); });
    (data.thresholds || []).forEach(function (t) { all.push([null, t.value]); });
    if (!all.length) { text(svg, PAD, H / 2, "no data yet"); return; }
    var times = [], values = [];
    all.forEach(function (p) { if (p[0] !== null) { times.push(Date.parse(p[0])); } values.push(p[1]); });
    var t0 = Math.min.apply(null, times), t1 = Math.max.apply(null, times);
    var lo = Math.min.apply(null, values), hi = Math.max.apply(null, values);
    if (hi - lo < 1e-12) { lo -= 0.5; hi += 0.5; }
    var span = (t1 - t0) || 1;
    function x(t) { return PAD + (W - 2 * PAD) * (Date.parse(t) - t0) / span; }
    function y(v) { return H - PAD - (H - 2 * PAD) * (v - lo) / (hi - lo); }
    el("line", { x1: PAD, y1: H - PAD, x2: W - PAD, y2: H - PAD, "class": "axis" }, svg);
    text(svg, 4, y(hi) + 4, fmt(hi));
    text(svg, 4, y(lo) + 4, fmt(lo));
    text(svg, PAD, H - PAD + 16, new Date(t0).toISOString().slice(0, 10));
    text(svg, W - PAD, H - PAD + 16, new Date(t1).toISOString().slice(0, 10), "tick", "end");
    (data.thresholds || []).forEach(function (t) {
      el("line", { x1: PAD, y1: y(t.value), x2: W - PAD, y2: y(t.value), "class": "threshold" }, svg);
      text(svg, W - PAD, y(t.value) - 3, t.label, "tick", "end");
    });
    (data.markers || []).forEach(function (m) {
      if (Date.parse(m.t) < t0 || Date.parse(m.t) > t1) { return; }
      el("line", { x1: x(m.t), y1: PAD - 8, x2: x(m.t), y2: H - PAD, "class": "marker " + (m.cls || "") }, svg);
      text(svg, x(m.t) + 3, PAD - 10 + (m.row || 0) * 11, m.label, "tick");
    });
    var dots = [];
    data.series.forEach(function (s, i) {
      if (!s.points.length) { return; }
      el("polyline", {
        points: s.points.map(function (p) { return x(p[0]).toFixed(1) + "," + y(p[1]).toFixed(1); }).join(" "),
        "class": "line s" + i
      }, svg);
      s.points.forEach(function (p) {
        var dot = el("circle", { cx: x(p[0]), cy: y(p[1]), r: 2.5, "class": "dot s" + i + (p[2] ? " provisional" : "") }, svg);
        dots.push({ node: dot, name: s.name, p: p });
      });
      el("line", { x1: PAD + 170 * i, y1: 12, x2: PAD + 170 * i + 18, y2: 12, "class": "line s" + i }, svg);
      text(svg, PAD + 170 * i + 22, 16, s.name);
    });
    var tip = document.createElement("div");
    tip.className = "tip";
    host.appendChild(tip);
    svg.addEventListener("mousemove", function (ev) {
      var box = svg.getBoundingClientRect();
      var px = (ev.clientX - box.left) * W / box.width;
      var best = null;
      dots.forEach(function (d) {
        var dx = Math.abs(parseFloat(d.node.getAttribute("cx")) - px);
        if (best === null || dx < best.dx) { best = { dx: dx, d: d }; }
      });
      if (!best) { return; }
      var p = best.d.p;
      tip.textContent = best.d.name + ": " + fmt(p[1]) + " on " + p[0].slice(0, 16).replace("T", " ") + (p[2] ? " (provisional)" : "");
      tip.style.left = (ev.clientX - box.left + 12) + "px";
      tip.style.top = (ev.clientY - box.top - 10) + "px";
      tip.style.display = "block";
    });
    svg.addEventListener("mouseleave", function () { tip.style.display = "none"; });
  }

  function bars(host, data) {
    var svg = el("svg", { viewBox: "0 0 " + W + " " + H, "class": "chart", role: "img" }, host);
    var n = Math.max(data.labels.length, 1);
    var top = 1e-12;
    data.series.forEach(function (s) { s.values.forEach(function (v) { top = Math.max(top, v); }); });
    var band = (W - 2 * PAD) / n, k = data.series.length;
    el("line", { x1: PAD, y1: H - PAD, x2: W - PAD, y2: H - PAD, "class": "axis" }, svg);
    data.series.forEach(function (s, j) {
      s.values.forEach(function (v, i) {
        var h = (H - 2 * PAD) * v / top;
        var r = el("rect", {
          x: (PAD + i * band + j * band / k + 1).toFixed(1), y: (H - PAD - h).toFixed(1),
          width: Math.max(band / k - 2, 1).toFixed(1), height: h.toFixed(1), "class": "bar b" + j
        }, svg);
        el("title", {}, r).textContent = data.labels[i] + ": " + s.name + " " + (100 * v).toFixed(1) + "%";
      });
      el("rect", { x: W - 200 + 100 * j, y: 6, width: 12, height: 12, "class": "bar b" + j }, svg);
      text(svg, W - 184 + 100 * j, 16, s.name);
    });
    var every = Math.max(Math.ceil(n / 7), 1);
    data.labels.forEach(function (label, i) {
      if (i % every === 0) { text(svg, PAD + (i + 0.5) * band, H - PAD + 14, label.slice(0, 14), "tick", "middle"); }
    });
  }

  function draw() {
    document.querySelectorAll("[data-chart]").forEach(function (host) {
      var source = document.getElementById(host.getAttribute("data-source"));
      var data = JSON.parse(source.textContent);
      (host.getAttribute("data-chart") === "bars" ? bars : line)(host, data);
    });
    document.querySelectorAll("form[data-api]").forEach(function (form) {
      form.addEventListener("submit", function (ev) {
        ev.preventDefault();
        var body = {};
        new FormData(form).forEach(function (v, k) { body[k] = v; });
        // The session cookie counts for the API only beside this token (read from its
        // cookie, which a page of another site cannot read).
        var csrf = (document.cookie.match(/(?:^|; )wk_csrf=([^;]*)/) || [])[1] || "";
        fetch(form.getAttribute("data-api"), {
          method: "POST",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": decodeURIComponent(csrf) },
          credentials: "same-origin", body: JSON.stringify(body)
        }).then(function (r) {
          if (!r.ok) { return r.json().then(function (e) { throw new Error(e.error.message); }); }
          window.location.reload();
        }).catch(function (err) {
          var out = form.querySelector(".result");
          if (out) { out.textContent = err.message; }
        });
      });
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", draw); } else { draw(); }
})();
