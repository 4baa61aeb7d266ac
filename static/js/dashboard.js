// Dashboard behaviour: Plotly charts from JSON the server rendered, the session waterfall,
// copy buttons, confirmations, the project switcher. No inline scripts: data comes from
// <script type="application/json"> blocks (escaped by Django's json_script).
(function () {
  "use strict";

  var CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["lasso2d", "select2d"] };

  function plotOverview() {
    var node = document.getElementById("figures");
    if (!node || !window.Plotly) return;
    var figures = JSON.parse(node.textContent);
    Object.keys(figures).forEach(function (id) {
      var el = document.getElementById(id);
      if (el) window.Plotly.newPlot(el, figures[id].data, figures[id].layout, CONFIG);
    });
  }

  function plotWaterfall() {
    var el = document.getElementById("waterfall");
    if (!el || !window.Plotly) return;
    fetch(el.dataset.src, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(function (fig) {
        el.innerHTML = "";
        return window.Plotly.newPlot(el, fig.data, fig.layout, CONFIG).then(function () {
          el.dataset.ready = "1";
          el.dataset.traces = String(fig.data.length);
          var note = document.getElementById("waterfall-note");
          if (note) {
            var text = fig.events.toLocaleString() + " events";
            if (fig.large) text += " (WebGL: zoom in to read individual events)";
            if (fig.truncated) text += ": the first ones only";
            note.textContent = text + ". Drag to zoom, double-click to reset, click a bar to open the event.";
          }
          el.on("plotly_click", function (ev) {
            var point = ev.points && ev.points[0];
            var id = point && point.customdata && point.customdata[3];
            if (id) {
              window.location.href = el.dataset.focusBase + "?focus=" + encodeURIComponent(id) + "#event-" + id;
            }
          });
        });
      })
      .catch(function (err) {
        el.textContent = "The timeline could not be loaded (" + err.message + ").";
      });
  }

  function wireCopyButtons() {
    document.querySelectorAll("[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        // The source is an input (the new key) or any element (a code snippet).
        var source = document.querySelector(button.dataset.copy);
        if (!source) return;
        var isField = source.tagName === "INPUT" || source.tagName === "TEXTAREA";
        var text = isField ? source.value : source.textContent;
        if (isField) {
          source.select();
        } else {
          var range = document.createRange();
          range.selectNodeContents(source);
          window.getSelection().removeAllRanges();
          window.getSelection().addRange(range);
        }
        var done = function () { button.textContent = "Copied"; };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(text).then(done, function () { document.execCommand("copy"); done(); });
        } else {
          document.execCommand("copy");
          done();
        }
      });
    });
  }

  function wireConfirms() {
    document.querySelectorAll("[data-confirm]").forEach(function (button) {
      button.addEventListener("click", function (ev) {
        if (!window.confirm(button.dataset.confirm)) ev.preventDefault();
      });
    });
  }

  function wireSwitcher() {
    document.querySelectorAll("form[data-autosubmit] select").forEach(function (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    wireSwitcher();
    wireCopyButtons();
    wireConfirms();
    plotOverview();
    plotWaterfall();
  });
})();
