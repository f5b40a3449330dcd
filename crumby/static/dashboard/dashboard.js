/* Crumby dashboard pages: the date range and the filters (kept in the URL), the headline
 * strip, and loading every report from the JSON API without reloading the page.
 *
 * Filters: clicking a row of a breakdown (its report's `row_filter` metadata says which
 * filters a row stands for) adds them to the URL with pushState and reloads every card,
 * so the back button undoes a filter; the active ones show as removable chips.
 */
(function () {
  "use strict";

  var R = window.CrumbyRender;
  var DAY = 86400000;
  var ISO = /^\d{4}-\d{2}-\d{2}$/;
  var LIVE_MS = 3000; // how often the live cards reload while the page is visible
  // the dashboard's cards show a top 6 (5 on a phone); a report's own page shows all
  var DASHBOARD_ROWS = window.matchMedia && window.matchMedia("(max-width: 600px)").matches ? 5 : 6;
  var BAR_LIST_CHARTS = ["bar", "pie", "table"]; // rankings: drawn on the dashboard as bar lists
  var REPORT_PAGE_BARS = 20; // ...but draws at most 20 bars above its whole table
  var HEADLINE = [
    { column: "visitors", label: "Visitors" },
    { column: "views", label: "Page views" },
    { column: "sessions", label: "Sessions" },
    { column: "bounce_rate", label: "Bounce rate", lowerIsBetter: true },
    { column: "avg_duration", label: "Avg. visit duration" },
  ];

  // ---- the range ----------------------------------------------------------

  function isoDay(date) { return date.toISOString().slice(0, 10); }
  function parseDay(s) { return new Date(s + "T00:00:00Z"); }
  /** The page's element that carries the site's facts (data-today, data-timezone). */
  function siteInfo() {
    return document.getElementById("dashboard") || document.getElementById("report-page") || document.body;
  }
  /** The site's local today, as the server computed it for this page; else the browser's UTC date. */
  function todayUtc() { return siteInfo().getAttribute("data-today") || isoDay(new Date()); }
  function zoneLabel() { return siteInfo().getAttribute("data-timezone") || "UTC"; }

  /** The range the URL asks for: {days} or {from, to}; default the last 30 days. */
  function rangeFromUrl() {
    var p = new URLSearchParams(window.location.search);
    var from = p.get("from"), to = p.get("to");
    if (from && to) return { from: from, to: to };
    var days = p.get("days");
    if (days && /^\d+$/.test(days) && +days > 0) return { days: +days };
    return { days: 30 };
  }

  /** Explicit from/to dates (UTC) for a range, as every API call sends them. */
  function resolve(range) {
    if (range.from) return { from: range.from, to: range.to };
    var to = todayUtc();
    return { from: isoDay(new Date(parseDay(to).getTime() - (range.days - 1) * DAY)), to: to };
  }

  function rangeQuery(range) {
    return range.from ? "from=" + encodeURIComponent(range.from) + "&to=" + encodeURIComponent(range.to) : "days=" + range.days;
  }

  // ---- the filters ---------------------------------------------------------

  /** [[name, label], ...] in the API's order (the server's list). */
  function filterNames() {
    try { return JSON.parse(siteInfo().getAttribute("data-filter-labels") || "[]"); } catch (e) { return []; }
  }

  /** The URL's filters as [[name, value], ...], in the API's order. */
  function filtersFromUrl() {
    var p = new URLSearchParams(window.location.search), found = [];
    filterNames().forEach(function (pair) {
      var value = p.get(pair[0]);
      if (value) found.push([pair[0], value]);
    });
    return found;
  }

  function filterQuery(filters) {
    return filters.map(function (f) { return f[0] + "=" + encodeURIComponent(f[1]); }).join("&");
  }

  /** The range's and the URL's filters' query text for an API call. */
  function apiQuery(resolved) {
    var fq = filterQuery(filtersFromUrl());
    return rangeQuery(resolved) + (fq ? "&" + fq : "");
  }

  /** Change the URL's filters (value null removes one) as a new history entry, then reload. */
  function setFilters(pairs) {
    var url = new URL(window.location.href);
    pairs.forEach(function (p) {
      if (p[1] === null) url.searchParams.delete(p[0]);
      else url.searchParams.set(p[0], p[1]);
    });
    if (url.search === window.location.search) return;
    window.history.pushState(null, "", url.pathname + url.search);
    if (reload) reload();
  }

  function renderChips(root, filters) {
    var box = document.getElementById("filters"), list = document.getElementById("filter-chips");
    root.classList.toggle("filtered", filters.length > 0);
    if (!box || !list) return;
    var labels = {};
    filterNames().forEach(function (pair) { labels[pair[0]] = pair[1]; });
    list.textContent = "";
    filters.forEach(function (f) {
      var chip = R.el("li", { class: "chip", "data-filter": f[0] });
      chip.appendChild(R.el("span", { class: "chip-name" }, labels[f[0]] || f[0]));
      chip.appendChild(R.el("span", { class: "chip-value" }, f[1]));
      var remove = R.el("button", {
        type: "button", class: "chip-remove", "aria-label": "Remove filter " + (labels[f[0]] || f[0]) + " " + f[1],
        title: "Remove this filter",
      }, "×");
      remove.addEventListener("click", function () { setFilters([[f[0], null]]); });
      chip.appendChild(remove);
      list.appendChild(chip);
    });
    box.hidden = !filters.length;
  }

  /** What a report's rows stand for: {name: column} from the section's data-row-filter. */
  function rowFilterOf(section) {
    var filter = {};
    (section.getAttribute("data-row-filter") || "").split(/\s+/).forEach(function (pair) {
      var at = pair.indexOf("=");
      if (at > 0) filter[pair.slice(0, at)] = pair.slice(at + 1);
    });
    return Object.keys(filter).length ? filter : null;
  }

  /** A click on a bar (or a country on the map) filters like a click on its table row. */
  function filterFromChart(section, report, filter) {
    var chart = section.querySelector(".chart");
    chart.onclick = function (event) {
      var target = event.target.closest ? event.target.closest("[data-row], path[data-code]") : null;
      if (!target) return;
      if (target.hasAttribute("data-code")) {
        if (filter.country) setFilters([["country", target.getAttribute("data-code")]]);
        return;
      }
      var row = (report.data || [])[+target.getAttribute("data-row")];
      if (row) setFilters(R.rowFilters(report.columns || [], row, filter));
    };
    chart.classList.add("filterable");
  }

  var reload = null;

  /** A map card's toggle between the map and the list of its countries (the list for keyboards). */
  function mapOrList(section) {
    var toggle = section.querySelector(".map-toggle");
    if (!toggle) {
      toggle = R.el("div", { class: "map-toggle", role: "group", "aria-label": "Show as" });
      ["map", "list"].forEach(function (view) {
        var button = R.el("button", { type: "button", "data-view": view }, view === "map" ? "Map" : "List");
        button.addEventListener("click", function () { showView(section, view); });
        toggle.appendChild(button);
      });
      section.querySelector(".report-links").prepend(toggle);
    }
    showView(section, section.getAttribute("data-view") || "map");
  }

  function showView(section, view) {
    section.setAttribute("data-view", view);
    section.querySelector(".chart").hidden = view !== "map";
    section.querySelector(".table").hidden = view !== "list";
    section.querySelectorAll(".map-toggle button").forEach(function (b) {
      b.setAttribute("aria-pressed", String(b.getAttribute("data-view") === view));
    });
  }

  /** What a card or the page shows: "from/to", and "?filters" when there are any. */
  function stateKey(resolved) {
    var fq = filterQuery(filtersFromUrl());
    return resolved.from + "/" + resolved.to + (fq ? "?" + fq : "");
  }

  function rowCount(n) { return n + (n === 1 ? " row" : " rows"); }
  function withQuery(url, query) { return url + (url.indexOf("?") >= 0 ? "&" : "?") + query; }

  function describe(resolved) {
    var opts = { day: "numeric", month: "short", year: "numeric", timeZone: "UTC" };
    var a = parseDay(resolved.from).toLocaleDateString(undefined, opts);
    if (resolved.from === resolved.to) return a + " (" + zoneLabel() + ")";
    return a + " – " + parseDay(resolved.to).toLocaleDateString(undefined, opts) + " (" + zoneLabel() + ")";
  }

  // ---- fetching -----------------------------------------------------------

  /** GET JSON; `fresh` skips the browser's HTTP cache (a live card's poll). */
  function getJson(url, fresh) {
    // no custom headers: the request must match the page's <link rel=preload> to reuse it
    var init = { credentials: "same-origin" };
    if (fresh) init.cache = "no-store";
    return fetch(url, init).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        if (!r.ok) {
          var err = new Error(body && body.error ? body.error : "HTTP " + r.status);
          err.status = r.status;
          throw err;
        }
        return body;
      });
    });
  }

  function setStatus(text, isError) {
    var status = document.getElementById("status");
    if (!status) return;
    status.textContent = text || "";
    status.classList.toggle("error", !!isError);
  }

  // ---- the range picker ---------------------------------------------------

  function initPicker(onChange) {
    var picker = document.getElementById("range-picker");
    if (!picker) return;
    var form = picker.querySelector("form");

    function show(range) {
      var resolved = resolve(range);
      picker.querySelectorAll("a[data-days]").forEach(function (a) {
        a.setAttribute("aria-current", !range.from && +a.getAttribute("data-days") === range.days ? "true" : "false");
      });
      form.elements.from.value = resolved.from;
      form.elements.to.value = resolved.to;
      var label = document.getElementById("range-label");
      if (label) label.textContent = ISO.test(resolved.from) && ISO.test(resolved.to) ? describe(resolved) : "";
    }

    function go(range) {
      var url = new URL(window.location.href);
      ["days", "from", "to"].forEach(function (k) { url.searchParams.delete(k); });
      if (range.from) { url.searchParams.set("from", range.from); url.searchParams.set("to", range.to); }
      else url.searchParams.set("days", String(range.days));
      window.history.pushState(null, "", url.pathname + url.search);
      show(range);
      onChange(range);
    }

    picker.addEventListener("click", function (event) {
      var link = event.target.closest("a[data-days]");
      if (!link) return;
      event.preventDefault();
      go({ days: +link.getAttribute("data-days") });
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var from = form.elements.from.value, to = form.elements.to.value;
      if (!ISO.test(from) || !ISO.test(to)) { setStatus("Choose both a start and an end date.", true); return; }
      if (from > to) { setStatus("The start date must not be after the end date.", true); return; }
      go({ from: from, to: to });
    });
    window.addEventListener("popstate", function () {
      var range = rangeFromUrl();
      show(range);
      onChange(range);
    });
    show(rangeFromUrl());
  }

  // ---- the headline strip ---------------------------------------------------

  /** A headline change as the API worked it out: percentage points for rates, else percent. */
  function changeText(change, metric) {
    if (!change) return { text: "", cls: "" };
    if (change.change === null) return { text: "new", cls: "" };
    var unit = change.unit === "pp" ? " pp" : "%";
    var value = change.change;
    if (value === 0) return { text: "±0" + unit, cls: "" };
    var better = metric.lowerIsBetter ? value < 0 : value > 0;
    var shown = Math.abs(value).toLocaleString(undefined, { maximumFractionDigits: 1 });
    return {
      text: (value > 0 ? "▲ +" : "▼ −") + shown + unit,
      cls: better ? "up" : "down",
    };
  }

  function rowObject(report) {
    var row = (report.data || [])[0] || [], obj = {};
    (report.columns || []).forEach(function (c, i) { obj[c] = row[i]; });
    return obj;
  }

  function renderHeadline(list, report) {
    var current = rowObject(report), prior = rowObject(report.previous || {});
    var changes = report.changes || {};
    list.textContent = "";
    HEADLINE.forEach(function (metric) {
      var item = R.el("li", { class: "kpi", "data-metric": metric.column });
      item.appendChild(R.el("span", { class: "kpi-label" }, metric.label));
      item.appendChild(R.el("span", { class: "kpi-value" }, R.formatValue(metric.column, current[metric.column])));
      var change = changeText(changes[metric.column], metric);
      var changed = item.appendChild(R.el("span", { class: "kpi-change " + change.cls }, change.text));
      // a phone keeps the change and leaves "vs. previous period" to screen readers
      if (change.text) changed.appendChild(R.el("span", { class: "kpi-vs" }, " vs. previous period"));
      // the period against the one before, as two thin bars
      var a = +current[metric.column] || 0, b = +prior[metric.column] || 0, max = Math.max(a, b) || 1;
      var svg = R.svgEl("svg", { viewBox: "0 0 100 8", preserveAspectRatio: "none", "aria-hidden": "true" });
      svg.appendChild(R.svgEl("rect", { class: "bar-before", x: 0, y: 0, height: 3, width: (b / max) * 100 }));
      svg.appendChild(R.svgEl("rect", { class: "bar-now", x: 0, y: 5, height: 3, width: (a / max) * 100 }));
      item.appendChild(svg);
      list.appendChild(item);
    });
  }

  function loadHeadline(root, resolved) {
    var list = document.getElementById("headline");
    if (!list) return Promise.resolve();
    // data-summary asks with compare=previous: both periods and their changes in one answer
    return getJson(withQuery(root.getAttribute("data-summary"), apiQuery(resolved))).then(function (report) {
      list.hidden = false;
      renderHeadline(list, report);
    }, function (err) {
      if (err.status === 404) { list.hidden = true; return; }
      throw err;
    });
  }

  // ---- the main chart: its buckets, the previous period, the running bucket ---------

  var INTERVALS = ["hour", "day", "week", "month"];
  var INTERVAL_LABELS = { hour: "Hours", day: "Days", week: "Weeks", month: "Months" };

  function rangeDays(resolved) {
    return Math.round((parseDay(resolved.to).getTime() - parseDay(resolved.from).getTime()) / DAY) + 1;
  }

  /** The buckets a range may be charted in, its default first: hours for up to two days,
   *  days for longer ranges, weeks and months offered for long ones. */
  function intervalsFor(resolved) {
    var n = rangeDays(resolved);
    if (n <= 2) return ["hour", "day"];
    if (n <= 7) return ["day", "hour"];
    if (n < 60) return ["day", "week"];
    return ["day", "week", "month"];
  }

  /** The URL's ?interval= when the range offers it, else the range's default. */
  function chosenInterval(resolved) {
    var offered = intervalsFor(resolved);
    var wanted = new URLSearchParams(window.location.search).get("interval");
    return offered.indexOf(wanted) >= 0 ? wanted : offered[0];
  }

  function previousLabel(resolved) {
    var n = rangeDays(resolved);
    return n === 1 ? "Previous day" : "Previous " + n + " days";
  }

  /** "Now" on the server's clock: the page's data-now moved on by the time since it loaded. */
  function serverNow() {
    var at = Date.parse(siteInfo().getAttribute("data-now") || "");
    return isNaN(at) ? Date.now() : at + Math.round(window.performance.now());
  }

  /** The bucket buttons above the main chart (a group of toggle buttons, for the keyboard). */
  function renderIntervalChoice(section, resolved) {
    var chart = section.querySelector(".chart");
    var box = section.querySelector(".chart-controls");
    if (!box) {
      box = R.el("div", { class: "chart-controls", role: "group", "aria-label": "Chart buckets" });
      chart.parentNode.insertBefore(box, chart);
    }
    box.textContent = "";
    var current = chosenInterval(resolved), offered = intervalsFor(resolved);
    INTERVALS.filter(function (name) { return offered.indexOf(name) >= 0; }).forEach(function (name) {
      var button = R.el("button", {
        type: "button", class: "interval", "data-interval": name, "aria-pressed": String(name === current),
      }, INTERVAL_LABELS[name]);
      button.addEventListener("click", function () {
        if (name === chosenInterval(resolve(rangeFromUrl()))) return;
        var url = new URL(window.location.href);
        url.searchParams.set("interval", name);
        window.history.pushState(null, "", url.pathname + url.search);
        if (reload) reload();
      });
      box.appendChild(button);
    });
  }

  // ---- reports ----------------------------------------------------------------

  /** The values of a card's own parameters (the funnel report's funnel), from its choices. */
  function cardParams(section) {
    var params = {};
    section.querySelectorAll("select.param-choice").forEach(function (select) {
      params[select.getAttribute("data-param")] = select.value;
    });
    return params;
  }

  function withParams(url, params) {
    var u = new URL(url, window.location.href);
    Object.keys(params).forEach(function (k) { u.searchParams.set(k, params[k]); });
    return u.pathname + u.search;
  }

  /** A card that needs a choice the site does not offer yet (no funnel): a note, no request. */
  function showIdle(section, resolved) {
    var chart = section.querySelector(".chart"), table = section.querySelector(".table");
    chart.textContent = "";
    table.textContent = "";
    var note = section.querySelector(".idle-note");
    R.renderChart({ columns: [], data: [], name: section.getAttribute("data-name") }, chart, {});
    table.appendChild(R.renderTable({ columns: [], data: [] }, 0));
    if (note) { // the note above says it once, with its link: the chart stays a blank picture of it
      var svg = chart.querySelector("svg");
      svg.setAttribute("aria-label", note.textContent.trim());
      svg.querySelector("text").textContent = "";
      svg.classList.add("idle");
    }
    section.setAttribute("data-loaded", stateKey(resolved));
    return Promise.resolve();
  }

  function loadReport(section, resolved, options) {
    var query = apiQuery(resolved);
    var link = section.querySelector(".report-page-link");
    if (link) {
      // keep ?site= (and anything else) and swap in the page's range and filters and the card's choices
      var href = new URL(withParams(link.getAttribute("href"), cardParams(section)), window.location.href), range = rangeFromUrl();
      ["days", "from", "to"].concat(filterNames().map(function (p) { return p[0]; })).forEach(function (k) {
        href.searchParams.delete(k);
      });
      if (range.from) { href.searchParams.set("from", range.from); href.searchParams.set("to", range.to); }
      else href.searchParams.set("days", String(range.days));
      filtersFromUrl().forEach(function (f) { href.searchParams.set(f[0], f[1]); });
      link.setAttribute("href", href.pathname + href.search);
    }
    if (section.getAttribute("data-idle") === "true") return showIdle(section, resolved);
    if (!options.live) section.classList.add("loading");
    var filter = rowFilterOf(section);
    var main = section.getAttribute("data-main") === "true";
    var url = withQuery(section.getAttribute("data-url"), query);
    var chartOptions = { limit: options.limit || REPORT_PAGE_BARS, worldUrl: options.worldUrl, today: todayUtc(), now: serverNow() };
    if (main) {
      var interval = chosenInterval(resolved);
      renderIntervalChoice(section, resolved);
      if (interval !== "day") url += "&interval=" + interval;
      chartOptions.zone = zoneLabel();
      section.setAttribute("data-interval", interval);
    }
    var action = filter ? {
      filter: filter, site: siteInfo().getAttribute("data-site"), apply: setFilters,
    } : null;
    return getJson(url, options.live).then(function (report) {
      if (section.getAttribute("data-generation") !== String(options.generation)) return;
      var chart = section.querySelector(".chart"), table = section.querySelector(".table");
      if (!report.chart && section.getAttribute("data-chart")) report.chart = section.getAttribute("data-chart");
      table.textContent = "";
      var type = R.chartType(report);
      if (options.limit && BAR_LIST_CHARTS.indexOf(type) >= 0) {
        // a ranking on the dashboard is one table whose rows are its bars (R.renderBarList):
        // the chart and the table at once, in the chart's place
        chart.textContent = "";
        chart.hidden = false;
        var list = R.renderBarList(report, options.limit, action);
        if (!(report.data || []).length) {
          R.renderChart(report, chart, {}); // "No data in this range.", said once: the empty table waits hidden
          list.hidden = true;
        }
        chart.setAttribute("data-chart", "bar-list");
        chart.appendChild(list);
        section.classList.remove("loading");
        section.setAttribute("data-loaded", stateKey(resolved));
        if (options.live) section.setAttribute("data-refreshed", String((+section.getAttribute("data-refreshed") || 0) + 1));
        return;
      }
      chart.hidden = false;
      if (options.limit && type === "map") {
        // the map, or the same countries as a ranked list: one of the two at a time
        table.appendChild(R.renderBarList(report, options.limit, action));
        mapOrList(section);
      } else if (options.limit && (type === "line" || type === "kpi")) {
        // a time series' table is long, and a row of figures' table repeats them: folded away, whole
        var details = R.el("details");
        details.appendChild(R.el("summary", null, "Table (" + rowCount((report.data || []).length) + ")"));
        details.appendChild(R.renderTable(report, 0, action));
        table.appendChild(details);
      } else {
        table.appendChild(R.renderTable(report, options.limit, action));
      }
      if (main && report.previous) chartOptions.previous = { label: previousLabel(resolved), data: report.previous.data };
      return R.renderChart(report, chart, chartOptions).then(function () {
        if (filter) filterFromChart(section, report, filter);
        section.classList.remove("loading");
        section.setAttribute("data-loaded", stateKey(resolved));
        if (options.live) section.setAttribute("data-refreshed", String((+section.getAttribute("data-refreshed") || 0) + 1));
      });
    }, function (err) {
      section.classList.remove("loading");
      var chart = section.querySelector(".chart");
      chart.textContent = "";
      chart.hidden = false;
      var message = R.el("p", { class: "error-text" });
      var login = document.body.getAttribute("data-login");
      if (err.status === 401 && login) {
        // the session expired while the page was open: say so and offer the way back
        message.appendChild(document.createTextNode("Your session has expired. "));
        var next = window.location.pathname + window.location.search;
        message.appendChild(R.el("a", { href: login + "?next=" + encodeURIComponent(next) }, "Log in again"));
        err = new Error("Your session has expired; log in again to see the private reports.");
      } else {
        message.textContent = "Could not load this report: " + err.message;
      }
      chart.appendChild(message);
      throw err;
    });
  }

  var generation = 0;

  function refresh(root, sections, range, limit) {
    var resolved = resolve(range);
    generation += 1;
    var current = generation;
    setStatus("Loading…");
    renderChips(root, filtersFromUrl());
    var jobs = sections.map(function (section) {
      section.setAttribute("data-generation", String(current));
      return loadReport(section, resolved, { generation: current, limit: limit, worldUrl: root.getAttribute("data-world") });
    });
    if (root.getAttribute("data-summary")) jobs.push(loadHeadline(root, resolved));
    var csv = document.getElementById("csv-link");
    if (csv) {
      // the main chart's own page downloads the buckets it shows
      var main = document.querySelector('#report[data-main="true"]');
      var interval = main ? chosenInterval(resolved) : "day";
      csv.setAttribute("href", withQuery(csv.getAttribute("data-base"), "format=csv&" + apiQuery(resolved) + (interval !== "day" ? "&interval=" + interval : "")));
    }
    return Promise.allSettled(jobs).then(function (results) {
      if (current !== generation) return;
      var failed = results.filter(function (r) { return r.status === "rejected"; });
      if (failed.length) setStatus(failed[0].reason.message, true);
      else setStatus("");
      root.setAttribute("data-ready", stateKey(resolved));
    });
  }

  /** Choosing another funnel (any card's own parameter) reloads that card alone. */
  function initParamChoices(sections, limit, root) {
    sections.forEach(function (section) {
      section.querySelectorAll("select.param-choice").forEach(function (select) {
        select.addEventListener("change", function () {
          var params = cardParams(section);
          section.setAttribute("data-url", withParams(section.getAttribute("data-url"), params));
          var csv = document.getElementById("csv-link");
          if (csv && section.id === "report") {
            csv.setAttribute("data-base", withParams(csv.getAttribute("data-base"), params));
            window.history.replaceState(null, "", withParams(window.location.href, params));
          }
          generation += 1;
          section.setAttribute("data-generation", String(generation));
          loadReport(section, resolve(rangeFromUrl()), { generation: generation, limit: limit, worldUrl: root.getAttribute("data-world") })
            .then(function () { setStatus(""); }, function (err) { setStatus(err.message, true); });
        });
      });
    });
  }

  function initDashboard(root) {
    // the server rendered one section per report, in metadata order
    var sections = Array.prototype.slice.call(document.querySelectorAll("#reports .report"));
    initParamChoices(sections, DASHBOARD_ROWS, root);
    if (document.querySelector('#reports .report[data-chart="map"]')) {
      R.preloadWorld(root.getAttribute("data-world")).catch(function () {}); // in parallel with the data
    }
    reload = function () { refresh(root, sections, rangeFromUrl(), DASHBOARD_ROWS); };
    initPicker(function (range) { refresh(root, sections, range, DASHBOARD_ROWS); });
    onSchemeChange(function () { refresh(root, sections, rangeFromUrl(), DASHBOARD_ROWS); });
    refresh(root, sections, rangeFromUrl(), DASHBOARD_ROWS);
    watchForFirstVisit(root, sections);
    keepLive(root, sections.filter(function (s) { return s.getAttribute("data-live") === "true"; }));
  }

  /**
   * Cards of the last minutes ("Right now", the pages viewed now) reload by themselves every
   * LIVE_MS while the page is visible, and at once when it becomes visible again. The API
   * keeps such answers at most 5 seconds (contract: a hit shows within 10), and the polls
   * skip the browser's cache, so a visit shows within LIVE_MS + 5 seconds.
   */
  function keepLive(root, live) {
    if (!live.length) return;
    var busy = false;
    function poll() {
      if (busy || document.visibilityState !== "visible") return;
      busy = true;
      var resolved = resolve(rangeFromUrl());
      Promise.allSettled(live.map(function (section) {
        // the current generation: a range or filter change meanwhile wins over this answer
        return loadReport(section, resolved, {
          generation: +section.getAttribute("data-generation") || 0, limit: DASHBOARD_ROWS,
          worldUrl: root.getAttribute("data-world"), live: true,
        });
      })).then(function () { busy = false; });
    }
    window.setInterval(poll, LIVE_MS);
    document.addEventListener("visibilitychange", poll);
  }

  /** A site without data shows how to start; the first page view turns it into the dashboard. */
  function watchForFirstVisit(root, sections) {
    var waiting = document.getElementById("waiting");
    var url = root.getAttribute("data-summary");
    if (!waiting || !url) return;
    var timer = window.setInterval(function () {
      getJson(withQuery(url, "days=2")).then(function (report) {
        var views = report.columns ? report.data[0][report.columns.indexOf("views")] : 0;
        if (!views) return;
        window.clearInterval(timer);
        waiting.hidden = true;
        refresh(root, sections, rangeFromUrl(), DASHBOARD_ROWS);
      }, function () {});
    }, 5000);
  }

  /** Charts take their colours from CSS when drawn: redraw when the system switches dark mode. */
  function onSchemeChange(redraw) {
    if (!window.matchMedia) return;
    var query = window.matchMedia("(prefers-color-scheme: dark)");
    if (query.addEventListener) query.addEventListener("change", redraw);
  }

  function initReportPage(root) {
    var section = document.getElementById("report");
    reload = function () { refresh(root, [section], rangeFromUrl(), 0); };
    initParamChoices([section], 0, root);
    initPicker(function (range) { refresh(root, [section], range, 0); });
    onSchemeChange(function () { refresh(root, [section], rangeFromUrl(), 0); });
    refresh(root, [section], rangeFromUrl(), 0);
  }

  /** Choosing another site in the site bar opens its dashboard (a "Go" button without JS). */
  function initSiteSwitcher() {
    var select = document.getElementById("site-switch");
    if (!select) return;
    select.addEventListener("change", function () { select.form.submit(); });
  }

  /** The server said the URL's range is bad (once, at the top): the page shows the default range. */
  function dropBadRange() {
    if (!document.getElementById("range-error")) return;
    var url = new URL(window.location.href);
    ["days", "from", "to", "t0", "t1"].forEach(function (k) { url.searchParams.delete(k); });
    window.history.replaceState(null, "", url.pathname + url.search + url.hash);
  }

  document.addEventListener("DOMContentLoaded", function () {
    dropBadRange();
    initSiteSwitcher();
    var dashboard = document.getElementById("dashboard");
    if (dashboard) initDashboard(dashboard);
    var report = document.getElementById("report-page");
    if (report) initReportPage(report);
  });
})();
