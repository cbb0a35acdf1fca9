// watchkeeper's dashboard script: draws each chart from its Vega-Lite spec with vega-embed
// (vendored in the package under /assets/vega, never a CDN) and sends the pages' forms to
// the API. Each element with data-spec names the <script type="application/json"> element
// holding its spec; the spec is the same one the report renders to static SVG.
(function () {
  "use strict";
  window.watchkeeperViews = [];

  function draw() {
    document.querySelectorAll("[data-spec]").forEach(function (host) {
      var source = document.getElementById(host.getAttribute("data-spec"));
      var spec;
      try { spec = JSON.parse(source.textContent); } catch (err) {
        host.textContent = "the chart's data could not be read: " + err.message;
        return;  // the other charts and the page's forms go on
      }
      if (typeof vegaEmbed !== "function") {
        host.textContent = "the chart library did not load";
        return;
      }
      // As wide as the page allows (the axes and legend need about 140 px beside the plot).
      spec.width = Math.max(host.clientWidth - 140, 320);
      vegaEmbed(host, spec, { renderer: "svg", actions: false }).then(function (result) {
        window.watchkeeperViews.push(result.view);
        host.setAttribute("data-drawn", "true");
      }).catch(function (err) {
        host.textContent = "the chart could not be drawn: " + err.message;
      });
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
