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
            var text = fig.events.toLocaleString() + (fig.events === 1 ? " event" : " events");
            if (fig.skewed) text += ", " + fig.skewed.toLocaleString() + " clock-skewed (stamped outside the session's start and end, the dotted lines)";
            if (fig.large) text += " (WebGL: zoom in to read individual events)";
            if (fig.truncated) text += ": the first ones only";
            note.textContent = text + ". Bars are drawn as long as the events lasted; instant events are ticks, errors red crosses. Drag to zoom, double-click to reset, click an event to select it in the trace.";
          }
          el.on("plotly_click", function (ev) {
            var point = ev.points && ev.points[0];
            var n = point && point.customdata && point.customdata[0];
            var id = n && fig.keys ? fig.keys[n - 1] : null;
            if (!id) return;
            if (window.agentopsTrace) {
              window.agentopsTrace.focus(id);
              document.getElementById("trace").scrollIntoView({ block: "start" });
            } else {
              window.location.href = el.dataset.focusBase + "?focus=" + encodeURIComponent(id) + "#trace";
            }
          });
        });
      })
      .catch(function (err) {
        el.textContent = "The timeline could not be loaded (" + err.message + ").";
      });
  }

  // --- Long content folded behind "show more" ------------------------------------------------

  function wireFolds(root) {
    root.querySelectorAll(".fold").forEach(function (el) {
      if (el.dataset.foldWired) return;
      el.dataset.foldWired = "1";
      el.classList.add("folded");
      var button = document.createElement("button");
      button.type = "button";
      button.className = "link fold-toggle";
      button.textContent = "show more";
      button.addEventListener("click", function () {
        var open = el.classList.toggle("folded") === false;
        button.textContent = open ? "show less" : "show more";
      });
      el.insertAdjacentElement("afterend", button);
    });
  }

  // --- The trace view: a tree loaded a page of rows at a time --------------------------------

  var KIND_LABELS = { llms: "LLM", tools: "Tool", actions: "Action", errors: "Error", apis: "API", agent: "Agent" };

  function durationText(ms) {
    if (ms === null || ms === undefined) return "instant";
    if (ms < 10) return ms.toFixed(1) + " ms";
    if (ms < 1000) return Math.round(ms) + " ms";
    if (ms < 120000) return (ms / 1000).toFixed(1) + " s";
    if (ms < 7200000) return (ms / 60000).toFixed(1) + " min";
    return (ms / 3600000).toFixed(1) + " h";
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function Trace(view) {
    this.view = view;
    this.tree = view.querySelector("#tree");
    this.detail = view.querySelector("#detail");
    this.src = view.dataset.tree;
    this.eventBase = view.dataset.eventBase;
    this.axis = null;
    this.selected = null;
  }

  Trace.prototype.fetch = function (params) {
    var url = this.src + (params ? "?" + params : "");
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    });
  };

  Trace.prototype.note = function (data) {
    this.axis = data.axis;
    var note = document.getElementById("trace-note");
    if (note) {
      var text = "Bars on one time axis of " + durationText(data.axis.length_ms) + ".";
      if (data.skewed) text += " " + data.skewed + " clock-skewed event" + (data.skewed === 1 ? "" : "s") + " (stamped outside the session) marked ⚠.";
      if (data.truncated) text += " Only the first events are in the tree.";
      note.textContent = text;
    }
    if (data.errors) this.errorStrip(data.errors);
  };

  Trace.prototype.errorStrip = function (errors) {
    var strip = document.getElementById("trace-errors");
    if (!strip) return;
    strip.innerHTML = "";
    if (!errors.length) { strip.hidden = true; return; }
    strip.hidden = false;
    strip.appendChild(el("span", "bad", errors.length + (errors.length === 1 ? " error: " : " errors: ")));
    var self = this;
    errors.forEach(function (e) {
      var b = el("button", "link error-link", "#" + e.n + (e.name ? " " + e.name : ""));
      b.type = "button";
      b.addEventListener("click", function () { self.focus(e.key); });
      strip.appendChild(b);
    });
  };

  Trace.prototype.row = function (r, depth, underAgent) {
    var self = this;
    var row = el("div", "trow kind-" + r.kind + (r.kind === "errors" ? " is-error" : "") + (r.errors && r.kind !== "errors" ? " has-errors" : ""));
    row.setAttribute("role", "treeitem");
    row.setAttribute("aria-level", String(depth + 1));
    row.tabIndex = -1;
    row.dataset.key = r.key;
    row.dataset.kind = r.kind;
    row.dataset.children = String(r.children);
    row.style.setProperty("--depth", depth);
    var toggle = el("button", "toggle", r.children ? "▸" : "");
    toggle.type = "button";
    toggle.tabIndex = -1;
    toggle.setAttribute("aria-label", r.children ? "Expand " + r.children + " children" : "No children");
    if (!r.children) toggle.disabled = true;
    if (r.children) row.setAttribute("aria-expanded", "false");
    toggle.addEventListener("click", function (ev) { ev.stopPropagation(); self.toggle(row); });
    var label = el("span", "tlabel");
    label.appendChild(toggle);
    label.appendChild(el("span", "etype " + r.kind, KIND_LABELS[r.kind] || r.kind));
    if (r.n) label.appendChild(el("span", "num muted", "#" + r.n));
    label.appendChild(el("span", "tname", r.name || "—"));
    // Under its agent's own row the agent's name would only repeat (and crowd the name out).
    if (r.agent && r.kind !== "agent" && !underAgent) label.appendChild(el("span", "tagent", r.agent));
    if (r.skewed) label.appendChild(el("span", "skew", "⚠")).title = "Clock-skewed: stamped outside the session's start and end";
    if (r.orphan) label.appendChild(el("span", "muted small", "(parent span missing)"));
    if (r.cut) label.appendChild(el("span", "muted small", "(parent loop cut)"));
    if (r.errors && r.kind !== "errors") label.appendChild(el("span", "errcount", r.errors + (r.errors === 1 ? " error" : " errors")));
    row.appendChild(label);
    var track = el("span", "track");
    var length = this.axis ? this.axis.length_ms : 1;
    var bar = el("span", r.dur === null ? "bar instant" : "bar");
    bar.style.left = Math.min(100, 100 * r.at / length) + "%";
    if (r.dur !== null) bar.style.width = Math.max(0, 100 * r.dur / length) + "%";
    track.appendChild(bar);
    track.title = durationText(r.dur) + " at +" + durationText(r.at).replace("instant", "0 ms");
    row.appendChild(track);
    row.appendChild(el("span", "tdur", durationText(r.dur)));
    row.appendChild(el("span", "ttokens", r.tokens ? r.tokens.toLocaleString() + " tok" : ""));
    var cost = r.cost === null ? (r.cost_unknown ? "unknown" : "") : "$" + Number(r.cost).toPrecision(3).replace(/\.?0+$/, "");
    if (r.cost !== null && r.cost_unknown) cost += " + unknown";
    row.appendChild(el("span", "tcost", cost));
    row.addEventListener("click", function () { self.select(row, true); });
    return row;
  };

  // Rows of one level into `box` (the tree or a row's children box), with paging buttons.
  Trace.prototype.fill = function (box, level, depth) {
    var self = this;
    box.innerHTML = "";
    box.setAttribute("role", "group");
    if (level.offset > 0) {
      var back = el("button", "link more", "Show the " + Math.min(level.offset, 200) + " earlier rows");
      back.type = "button";
      back.style.setProperty("--depth", depth);
      back.addEventListener("click", function () { self.page(box, level.parent, Math.max(0, level.offset - 200), depth); });
      box.appendChild(back);
    }
    var underAgent = String(level.parent || "").indexOf("agent:") === 0;
    level.rows.forEach(function (r) {
      box.appendChild(self.row(r, depth, underAgent));
    });
    var rest = level.total - level.offset - level.rows.length;
    if (rest > 0) {
      var more = el("button", "link more", "Show the next " + Math.min(rest, 200) + " of " + rest.toLocaleString() + " more rows");
      more.type = "button";
      more.style.setProperty("--depth", depth);
      more.addEventListener("click", function () { self.page(box, level.parent, level.offset + level.rows.length, depth); });
      box.appendChild(more);
    }
  };

  Trace.prototype.page = function (box, parent, offset, depth) {
    var self = this;
    var params = "offset=" + offset + (parent ? "&parent=" + encodeURIComponent(parent) : "");
    return this.fetch(params).then(function (data) {
      self.axis = data.axis;
      self.fill(box, data.levels[0], depth);
    });
  };

  Trace.prototype.childBox = function (row) {
    var next = row.nextElementSibling;
    if (next && next.classList.contains("tchildren") && next.dataset.parent === row.dataset.key) return next;
    var box = el("div", "tchildren");
    box.dataset.parent = row.dataset.key;
    row.insertAdjacentElement("afterend", box);
    return box;
  };

  Trace.prototype.toggle = function (row, open) {
    if (row.dataset.children === "0") return Promise.resolve();
    var expanded = row.getAttribute("aria-expanded") === "true";
    if (open === undefined) open = !expanded;
    var box = this.childBox(row);
    var toggle = row.querySelector(".toggle");
    row.setAttribute("aria-expanded", open ? "true" : "false");
    toggle.textContent = open ? "▾" : "▸";
    box.hidden = !open;
    if (open && !box.dataset.loaded) {
      box.dataset.loaded = "1";
      var depth = Number(row.style.getPropertyValue("--depth")) + 1;
      return this.page(box, row.dataset.key, 0, depth);
    }
    return Promise.resolve();
  };

  Trace.prototype.select = function (row, remember) {
    if (this.selected) this.selected.classList.remove("selected");
    this.selected = row;
    row.classList.add("selected");
    row.setAttribute("aria-selected", "true");
    var key = row.dataset.key;
    if (remember && window.history.replaceState) {
      var url = new URL(window.location.href);
      url.searchParams.set("focus", key);
      url.hash = "trace";
      window.history.replaceState(null, "", url.toString());
    }
    var detail = this.detail;
    if (row.dataset.kind === "agent") {
      detail.innerHTML = "";
      detail.appendChild(el("h3", null, "Agent " + row.querySelector(".tname").textContent));
      detail.appendChild(el("p", "muted", row.dataset.children + " events; " + row.querySelector(".tdur").textContent + " from its first event to its last."));
      return Promise.resolve();
    }
    detail.dataset.loading = key;
    return fetch(this.eventBase + encodeURIComponent(key) + "/", { credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.text();
      })
      .then(function (html) {
        if (detail.dataset.loading !== key) return;  // another row was selected meanwhile
        detail.innerHTML = html;  // rendered and escaped by the server (templates/dashboard/_event.html)
        wireFolds(detail);
        detail.querySelectorAll("[data-focus]").forEach(function (a) {
          a.addEventListener("click", function (ev) { ev.preventDefault(); window.agentopsTrace.focus(a.dataset.focus); });
        });
        detail.dataset.shown = key;
      })
      .catch(function (err) { detail.textContent = "The event could not be loaded (" + err.message + ")."; });
  };

  // Open the tree at one event: its ancestors expanded, it selected and scrolled to.
  Trace.prototype.focus = function (key) {
    var self = this;
    return this.fetch("focus=" + encodeURIComponent(key)).then(function (data) {
      self.note(data);
      var box = self.tree;
      var depth = 0;
      var row = null;
      data.levels.forEach(function (level, i) {
        self.fill(box, level, depth);
        var nextKey = i + 1 < data.levels.length ? data.levels[i + 1].parent : key;
        row = box.querySelector(':scope > .trow[data-key="' + nextKey + '"]');
        if (i + 1 < data.levels.length && row) {
          box = self.childBox(row);
          box.dataset.loaded = "1";
          row.setAttribute("aria-expanded", "true");
          row.querySelector(".toggle").textContent = "▾";
          depth += 1;
        }
      });
      if (row) {
        self.select(row, true);
        row.scrollIntoView({ block: "center" });
        self.tree.dataset.focused = key;
      }
    });
  };

  Trace.prototype.load = function () {
    var self = this;
    var focus = this.view.dataset.focus;
    var done = focus
      ? this.focus(focus).catch(function () {
          // A link to an event of another session (or one since deleted): say so, then show
          // the trace from its top rather than an empty box.
          return self.top().then(function () {
            self.detail.textContent = "The event this link points to is not in this session, so the trace opens at its top.";
            self.detail.dataset.focusMissing = focus;
          });
        })
      : this.top();
    return done.then(function () { self.tree.dataset.ready = "1"; });
  };

  Trace.prototype.top = function () {
    var self = this;
    return this.fetch("").then(function (data) {
      self.note(data);
      self.fill(self.tree, data.levels[0], 0);
    });
  };

  Trace.prototype.keys = function () {
    var self = this;
    this.tree.addEventListener("keydown", function (ev) {
      var row = self.selected;
      if (!row) return;
      var rows = Array.prototype.filter.call(self.tree.querySelectorAll(".trow"), function (r) { return r.offsetParent !== null; });
      var i = rows.indexOf(row);
      if (ev.key === "ArrowDown" && i + 1 < rows.length) { self.select(rows[i + 1], true); rows[i + 1].focus(); }
      else if (ev.key === "ArrowUp" && i > 0) { self.select(rows[i - 1], true); rows[i - 1].focus(); }
      else if (ev.key === "ArrowRight") self.toggle(row, true);
      else if (ev.key === "ArrowLeft") self.toggle(row, false);
      else return;
      ev.preventDefault();
    });
  };

  function startTrace() {
    var view = document.querySelector(".traceview");
    if (!view) return;
    var trace = new Trace(view);
    window.agentopsTrace = trace;
    trace.keys();
    trace.load().catch(function (err) {
      trace.tree.textContent = "The trace could not be loaded (" + err.message + ").";
    });
  }

  // --- A running session: elapsed time ticking, tree and timeline refreshed -----------------

  function watchRunning() {
    var head = document.getElementById("session-head");
    if (!head || head.dataset.running !== "1") return;
    var elapsedEl = document.getElementById("elapsed");
    var base = Number(elapsedEl.dataset.elapsed);
    var since = Date.now();
    var events = Number(head.dataset.events);
    var ticker = window.setInterval(function () {
      elapsedEl.textContent = durationText(1000 * (base + (Date.now() - since) / 1000));
    }, 1000);
    var poll = window.setInterval(function () {
      fetch(head.dataset.status, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (s) {
          if (!s) return;
          base = s.elapsed_s;
          since = Date.now();
          var total = document.getElementById("event-total");
          if (total) total.textContent = s.events.toLocaleString();
          var word = document.getElementById("event-word");
          if (word) word.textContent = s.events === 1 ? "event" : "events";
          var changed = s.events !== events;
          events = s.events;
          if (!s.running) {
            window.clearInterval(ticker);
            window.clearInterval(poll);
            head.dataset.running = "0";
            var label = document.querySelector("#duration-card .label");
            if (label) label.textContent = "Duration";
            elapsedEl.textContent = durationText(1000 * s.elapsed_s);
            changed = true;
          }
          if (changed) {
            if (window.agentopsTrace) {
              var selected = window.agentopsTrace.selected;
              if (selected) window.agentopsTrace.focus(selected.dataset.key);
              else window.agentopsTrace.top();
            }
            plotWaterfall();
          }
        })
        .catch(function () {});
    }, 5000);
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
    wireFolds(document);
    startTrace();
    watchRunning();
  });
})();
