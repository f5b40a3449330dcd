/* Crumby dashboard: turn a report's JSON ({columns, data, chart}) into a chart and a table.
 *
 * Everything a visitor sent arrives here as data and is inserted with textContent
 * (or as SVG <text>/<title> content), never as HTML. Only http(s) URLs become links.
 */
(function () {
  "use strict";

  var SVG = "http://www.w3.org/2000/svg";
  var DATE_NAMES = ["date", "day", "hour", "week", "month"];
  var ISO_DATE = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    if (attrs) Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function svgEl(tag, attrs, text) {
    var node = document.createElementNS(SVG, tag);
    if (attrs) Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  /** A URL that may become a link: absolute http(s) only, never javascript: or data:. */
  function safeHttpUrl(value) {
    if (typeof value !== "string" || !/^https?:\/\//i.test(value)) return null;
    try {
      var url = new URL(value);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  function isNumber(v) { return typeof v === "number" && isFinite(v); }

  function isDateColumn(name, data, index) {
    if (DATE_NAMES.indexOf(String(name).toLowerCase()) >= 0) return true;
    var seen = 0;
    for (var i = 0; i < data.length && seen < 5; i++) {
      var v = data[i][index];
      if (v === null || v === undefined) continue;
      if (typeof v !== "string" || !ISO_DATE.test(v)) return false;
      seen++;
    }
    return seen > 0;
  }

  function numericColumns(columns, data) {
    var result = [];
    columns.forEach(function (name, i) {
      var any = false, all = true;
      data.forEach(function (row) {
        var v = row[i];
        if (v === null || v === undefined) return;
        if (isNumber(v)) any = true; else all = false;
      });
      if (any && all) result.push(i);
    });
    return result;
  }

  /** The chart for a report: its metadata, else inferred from its columns (INTERFACES.md). */
  function chartType(report) {
    var known = ["line", "bar", "pie", "map", "table", "kpi", "funnel"];
    if (report.chart && known.indexOf(report.chart) >= 0) return report.chart;
    var cols = report.columns || [], data = report.data || [];
    if (cols.length && isDateColumn(cols[0], data, 0)) return "line";
    if (cols.some(function (c) { return String(c).toLowerCase() === "country"; })) return "map";
    var nums = numericColumns(cols, data);
    if (cols.length === 2 && nums.length === 1 && nums[0] === 1) return "bar";
    return "table";
  }

  // ---- formatting ---------------------------------------------------------

  function formatNumber(v) {
    if (!isNumber(v)) return v === null || v === undefined ? "" : String(v);
    var digits = Number.isInteger(v) ? 0 : Math.abs(v) < 10 ? 2 : 1;
    return v.toLocaleString(undefined, { maximumFractionDigits: digits });
  }

  function formatDuration(seconds) {
    if (!isNumber(seconds)) return "";
    var s = Math.round(seconds), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    var rest = String(s % 60).padStart(2, "0");
    return h ? h + ":" + String(m).padStart(2, "0") + ":" + rest : m + ":" + rest;
  }

  function formatPercent(v) {
    return isNumber(v) ? (v * 100).toLocaleString(undefined, { maximumFractionDigits: 1 }) + "%" : "";
  }

  /** A value formatted by what its column name says it holds. */
  function formatValue(column, v) {
    var name = String(column).toLowerCase();
    if (isNumber(v) && /(rate|ratio|share)$/.test(name) && v >= 0 && v <= 1) return formatPercent(v);
    if (isNumber(v) && /duration|seconds/.test(name)) return formatDuration(v);
    return formatNumber(v);
  }

  /** Column names people read: a few spelled out, the rest with spaces and a capital. */
  var COLUMN_NAMES = {
    os: "OS", utm_source: "UTM source", utm_medium: "UTM medium", utm_campaign: "UTM campaign",
    doc_path: "Page", cid: "Visitor", avg_time: "Avg. time", avg_duration: "Avg. duration",
    users: "Visitors",
  };

  function humanColumn(name) {
    var key = String(name).toLowerCase();
    if (COLUMN_NAMES[key]) return COLUMN_NAMES[key];
    var s = String(name).replace(/_/g, " ");
    return s.charAt(0).toUpperCase() + s.slice(1);
  }

  // ---- names people read: countries and languages, from the browser's own data -------

  function displayNames(type) {
    try {
      return new Intl.DisplayNames([navigator.language || "en"], { type: type, fallback: "none" });
    } catch (e) {
      return null;
    }
  }
  var REGIONS = displayNames("region"), LANGUAGES = displayNames("language");

  /** "DE" -> "Germany"; a code the browser does not know stays as it is. (No flag emoji:
   * without an emoji font, as on many Linux desktops and on Windows, they show as boxes.) */
  function countryName(code) {
    if (typeof code !== "string" || !/^[A-Za-z]{2}$/.test(code)) return null;
    var upper = code.toUpperCase(), name = null;
    try { name = REGIONS && REGIONS.of(upper); } catch (e) { name = null; }
    return name || null;
  }

  /** "en-us" -> "English (United States)"; a tag the browser does not know stays as it is. */
  function languageName(tag) {
    if (typeof tag !== "string" || !/^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$/.test(tag)) return null;
    try { return (LANGUAGES && LANGUAGES.of(tag)) || null; } catch (e) { return null; }
  }

  var NAMERS = { country: countryName, language: languageName };

  /** What a cell shows: a readable name for codes (the code in its tooltip), else the value formatted. */
  function displayValue(column, v) {
    var namer = NAMERS[String(column).toLowerCase()];
    var name = namer ? namer(v) : null;
    return name || formatValue(column, v);
  }

  // ---- the table ----------------------------------------------------------

  function cell(column, value, numeric) {
    var td = el("td", numeric ? { class: "num" } : null);
    var href = safeHttpUrl(value);
    if (href) {
      var a = el("a", { href: href, rel: "noopener noreferrer nofollow", target: "_blank" }, value);
      td.appendChild(a);
    } else {
      td.textContent = displayValue(column, value);
      if (NAMERS[String(column).toLowerCase()] && td.textContent !== String(value)) td.title = String(value);
    }
    return td;
  }

  /** The filter value of a shown value: a missing one ("", null, "(unknown)") is "(none)". */
  function filterValue(v) {
    return v === null || v === undefined || v === "" || v === "(unknown)" ? "(none)" : String(v);
  }

  /** The [name, value] filters a row stands for, by `filter` ({name: column}). */
  function rowFilters(cols, row, filter) {
    var pairs = [];
    Object.keys(filter || {}).forEach(function (name) {
      var i = cols.indexOf(filter[name]);
      if (i >= 0) pairs.push([name, filterValue(row[i])]);
    });
    return pairs;
  }

  /**
   * A row whose report says what it stands for (`action.filter`, {name: column}) applies
   * those filters when clicked (`action.apply(pairs)`): its first such cell becomes a
   * button (for the keyboard), and a page path keeps a small link to the page itself.
   */
  function makeFilterable(tr, cols, row, action, cellOf) {
    var pairs = rowFilters(cols, row, action.filter);
    if (!pairs.length) return;
    cellOf = cellOf || function (i) { return tr.children[i]; };
    var td = cellOf(cols.indexOf(action.filter[pairs[0][0]]));
    if (!td) return;
    var text = td.textContent;
    td.textContent = "";
    var label = pairs.map(function (p) { return p[1]; }).join(" · ");
    td.appendChild(el("button", { type: "button", class: "row-filter", title: "Show only " + label }, text));
    pairs.forEach(function (p) {
      var value = row[cols.indexOf(action.filter[p[0]])];
      if ((p[0] === "page" || p[0] === "entry_page") && action.site && /^\//.test(String(value))) {
        var href = safeHttpUrl("https://" + action.site + value);
        if (!href) return;
        var link = el("a", {
          class: "external", href: href, target: "_blank", rel: "noopener noreferrer nofollow",
          title: "Open " + value, "aria-label": "Open " + value + " on " + action.site,
        }); // its arrow is drawn by CSS, so the cell's text stays the page alone
        var target = cellOf(cols.indexOf(action.filter[p[0]]));
        if (target) target.closest("td").appendChild(link);
      }
    });
    tr.classList.add("filterable");
    tr.addEventListener("click", function (event) {
      if (event.target.closest && event.target.closest("a")) return; // the page link opens the page
      action.apply(pairs);
    });
  }

  /** A table of the report's rows (the first `limit`, or all); rows filter with `action`. */
  function renderTable(report, limit, action) {
    var cols = report.columns || [], data = report.data || [];
    var nums = numericColumns(cols, data);
    var table = el("table", { class: "data" });
    var shown = limit ? data.slice(0, limit) : data;
    if (limit && data.length > limit) {
      table.appendChild(el("caption", null, "Top " + limit + " of " + data.length + " rows"));
    }
    var head = el("tr");
    cols.forEach(function (c, i) {
      head.appendChild(el("th", nums.indexOf(i) >= 0 ? { class: "num", scope: "col" } : { scope: "col" }, humanColumn(c)));
    });
    table.appendChild(el("thead")).appendChild(head);
    var body = table.appendChild(el("tbody"));
    shown.forEach(function (row) {
      var tr = el("tr");
      cols.forEach(function (c, i) { tr.appendChild(cell(c, row[i], nums.indexOf(i) >= 0)); });
      if (action && action.filter) makeFilterable(tr, cols, row, action);
      body.appendChild(tr);
    });
    if (!data.length) {
      var tr = el("tr"), td = el("td", { colspan: String(Math.max(cols.length, 1)) }, "No data in this range.");
      tr.appendChild(td);
      body.appendChild(tr);
    }
    var wrap = el("div", { class: "table-wrap" });
    wrap.appendChild(table);
    return wrap;
  }

  /**
   * The dashboard's card for a ranking: one table whose rows are the bars. Each row's first
   * cell holds an SVG bar as long as the row's first number against the top row's, under
   * the row's name (names of several text columns are joined: "Windows · Chrome"); the
   * numbers stay in their own columns. A chart and its table in one, so nothing is shown twice.
   */
  function renderBarList(report, limit, action) {
    var cols = report.columns || [], data = report.data || [];
    var nums = numericColumns(cols, data);
    var labels = [], titles = [];
    cols.forEach(function (c, i) {
      if (nums.indexOf(i) >= 0) return;
      // a page's title names it in the tooltip; the row shows its path
      if (String(c).toLowerCase() === "title" && labels.length) titles.push(i); else labels.push(i);
    });
    var vi = nums[0];
    var shown = data.map(function (r, i) { return { row: r, index: i }; });
    if (vi !== undefined) shown.sort(function (a, b) { return (b.row[vi] || 0) - (a.row[vi] || 0) || a.index - b.index; });
    if (limit) shown = shown.slice(0, limit);
    var max = vi === undefined ? 0 : shown.reduce(function (m, r) { return Math.max(m, isNumber(r.row[vi]) ? r.row[vi] : 0); }, 0);
    var table = el("table", { class: "data barlist" });
    if (limit && data.length > limit) table.setAttribute("data-more", String(data.length - limit));
    var head = el("tr");
    head.appendChild(el("th", { scope: "col" }, labels.map(function (i) { return humanColumn(cols[i]); }).join(" · ") || "#"));
    nums.forEach(function (i) { head.appendChild(el("th", { class: "num", scope: "col" }, humanColumn(cols[i]))); });
    table.appendChild(el("thead")).appendChild(head);
    var body = table.appendChild(el("tbody"));
    shown.forEach(function (item) {
      var r = item.row, tr = el("tr", { "data-row": String(item.index) });
      var th = el("td", { class: "bar-cell" });
      var value = vi === undefined || !isNumber(r[vi]) ? 0 : r[vi];
      var bar = svgEl("svg", { class: "row-bar", viewBox: "0 0 100 10", preserveAspectRatio: "none", "aria-hidden": "true", focusable: "false" });
      bar.appendChild(svgEl("rect", { x: 0, y: 0, height: 10, width: max ? Math.max(0.5, (value / max) * 100).toFixed(2) : 0 }));
      th.appendChild(bar);
      var text = labels.map(function (i) {
        var v = r[i];
        return v === null || v === undefined || v === "" ? "(none)" : displayValue(cols[i], v);
      }).join(" · ") || "#" + (item.index + 1);
      var name = el("span", { class: "bar-label" }, text);
      var hints = labels.filter(function (i) { return NAMERS[String(cols[i]).toLowerCase()]; }).concat(titles);
      hints = hints.map(function (i) { return r[i]; }).filter(function (v) { return v !== null && v !== undefined && v !== ""; });
      if (hints.length) name.title = hints.join(" · ");
      th.appendChild(name);
      tr.appendChild(th);
      nums.forEach(function (i) { tr.appendChild(el("td", { class: "num" }, formatValue(cols[i], r[i]))); });
      if (action && action.filter) {
        makeFilterable(tr, cols, r, action, function (i) { return labels.indexOf(i) >= 0 ? name : null; });
      }
      body.appendChild(tr);
    });
    if (!data.length) {
      var tr = el("tr"), td = el("td", { colspan: String(Math.max(nums.length + 1, 1)), class: "empty" }, "No data in this range.");
      tr.appendChild(td);
      body.appendChild(tr);
    }
    var wrap = el("div", { class: "table-wrap" });
    wrap.appendChild(table);
    return wrap;
  }

  // ---- charts -------------------------------------------------------------

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
  }

  function labelIndex(cols, nums) {
    for (var i = 0; i < cols.length; i++) if (nums.indexOf(i) < 0) return i;
    return -1;
  }

  function labelText(v) { return v === null || v === undefined || v === "" ? "(none)" : String(v); }

  /** A ranked horizontal bar list, largest first. */
  function renderBars(report, container, limit) {
    var cols = report.columns, data = report.data;
    var nums = numericColumns(cols, data);
    var li = labelIndex(cols, nums), vi = nums[0];
    if (vi === undefined) return renderNote(container, data.length + " rows");
    var rows = data.map(function (r, i) {
      return { label: li >= 0 ? labelText(r[li]) : "#" + (i + 1), value: isNumber(r[vi]) ? r[vi] : 0, index: i };
    }).sort(function (a, b) { return b.value - a.value; });
    if (limit) rows = rows.slice(0, limit);
    var max = rows.reduce(function (m, r) { return Math.max(m, r.value); }, 0) || 1;
    // drawn at the container's own width, so labels keep their size on a phone
    var rowH = 30, width = Math.max(Math.round(container.clientWidth || 600), 260);
    var svg = svgEl("svg", {
      class: "bars", viewBox: "0 0 " + width + " " + Math.max(rows.length * rowH, rowH),
      role: "img", "aria-label": (report.title || report.name || "") + ": ranked by " + cols[vi],
    });
    rows.forEach(function (r, i) {
      var y = i * rowH, g = svgEl("g", { "data-row": r.index });
      g.appendChild(svgEl("title", null, r.label + ": " + formatValue(cols[vi], r.value)));
      g.appendChild(svgEl("rect", { class: "track", x: 0, y: y + 2, width: width, height: rowH - 4, rx: 4 }));
      g.appendChild(svgEl("rect", { class: "bar", x: 0, y: y + 2, width: Math.max(2, (r.value / max) * width), height: rowH - 4, rx: 4, "fill-opacity": 0.35 }));
      // keep clear of the number on the right: about 7.2 px per character at 13 px
      var room = Math.max(8, Math.floor((width - 24 - 8 * formatValue(cols[vi], r.value).length) / 7.2));
      var label = r.label.length > room ? r.label.slice(0, room - 1) + "…" : r.label;
      g.appendChild(svgEl("text", { x: 8, y: y + rowH / 2 + 5 }, label));
      g.appendChild(svgEl("text", { class: "value", x: width - 8, y: y + rowH / 2 + 5, "text-anchor": "end" }, formatValue(cols[vi], r.value)));
      svg.appendChild(g);
    });
    container.appendChild(svg);
    return svg;
  }

  /**
   * A funnel: one bar per step in the rows' order (never re-sorted), as wide as the step's
   * visitors against step 1's, with its share of step 1 and the visitors lost since the step before.
   */
  function renderFunnel(report, container) {
    var cols = report.columns.map(function (c) { return String(c).toLowerCase(); }), data = report.data;
    var at = function (name, fallback) { var i = cols.indexOf(name); return i >= 0 ? i : fallback; };
    var si = at("step", 0), gi = at("goal", 1), vi = at("visitors", 2), ri = at("conversion_rate", -1), di = at("dropoff", -1);
    var max = data.reduce(function (m, r) { return Math.max(m, isNumber(r[vi]) ? r[vi] : 0); }, 0) || 1;
    var rowH = 46, width = Math.max(Math.round(container.clientWidth || 600), 260);
    var svg = svgEl("svg", {
      class: "bars funnel-chart", viewBox: "0 0 " + width + " " + Math.max(data.length * rowH, rowH),
      role: "img", "aria-label": (report.title || report.name || "Funnel") + ": visitors per step",
    });
    data.forEach(function (r, i) {
      var y = i * rowH, g = svgEl("g", { "data-step": String(r[si]) });
      var visitors = isNumber(r[vi]) ? r[vi] : 0;
      var share = ri >= 0 && isNumber(r[ri]) ? formatPercent(r[ri]) : "";
      var label = r[si] + ". " + labelText(r[gi]);
      var value = formatNumber(visitors) + (share ? " · " + share : "");
      g.appendChild(svgEl("title", null, label + ": " + value));
      g.appendChild(svgEl("rect", { class: "track", x: 0, y: y + 2, width: width, height: 26, rx: 4 }));
      g.appendChild(svgEl("rect", { class: "bar", x: 0, y: y + 2, width: Math.max(2, (visitors / max) * width), height: 26, rx: 4, "fill-opacity": 0.35 }));
      g.appendChild(svgEl("text", { class: "step-label", x: 8, y: y + 20 }, label));
      g.appendChild(svgEl("text", { class: "value", x: width - 8, y: y + 20, "text-anchor": "end" }, value));
      if (i > 0 && di >= 0 && isNumber(r[di])) {
        g.appendChild(svgEl("text", { class: "step-note", x: 8, y: y + 42 }, "−" + formatNumber(r[di]) + " since step " + data[i - 1][si]));
      }
      svg.appendChild(g);
    });
    container.appendChild(svg);
    return svg;
  }

  /** A donut for a few shares; the rest are summed into "Other". */
  function renderPie(report, container) {
    var cols = report.columns, data = report.data;
    var nums = numericColumns(cols, data), li = labelIndex(cols, nums), vi = nums[0];
    if (vi === undefined) return renderNote(container, data.length + " rows");
    var rows = data.map(function (r) { return { label: li >= 0 ? labelText(r[li]) : "", value: Math.max(0, r[vi] || 0) }; })
      .sort(function (a, b) { return b.value - a.value; });
    if (rows.length > 5) {
      var other = rows.slice(4).reduce(function (s, r) { return s + r.value; }, 0);
      rows = rows.slice(0, 4).concat([{ label: "Other", value: other }]);
    }
    var total = rows.reduce(function (s, r) { return s + r.value; }, 0);
    var svg = svgEl("svg", { class: "pie", viewBox: "-110 -110 220 220", role: "img", "aria-label": report.title || report.name || "" });
    var angle = -Math.PI / 2;
    rows.forEach(function (r, i) {
      if (!total || !r.value) return;
      var sweep = (r.value / total) * Math.PI * 2;
      var shape;
      if (sweep >= Math.PI * 2 - 1e-6) {
        shape = svgEl("circle", { r: 100, class: "slice-" + i });
      } else {
        var x0 = 100 * Math.cos(angle), y0 = 100 * Math.sin(angle);
        var x1 = 100 * Math.cos(angle + sweep), y1 = 100 * Math.sin(angle + sweep);
        shape = svgEl("path", {
          class: "slice-" + i,
          d: "M0,0L" + x0.toFixed(2) + "," + y0.toFixed(2) + "A100,100 0 " + (sweep > Math.PI ? 1 : 0) + " 1 " + x1.toFixed(2) + "," + y1.toFixed(2) + "Z",
        });
      }
      shape.appendChild(svgEl("title", null, r.label + ": " + formatValue(cols[vi], r.value)));
      svg.appendChild(shape);
      angle += sweep;
    });
    svg.appendChild(svgEl("circle", { class: "hole", r: 55 }));
    container.appendChild(svg);
    var legend = el("ul", { class: "legend" });
    rows.forEach(function (r, i) {
      var item = el("li");
      item.appendChild(el("span", { class: "swatch swatch-" + i, "aria-hidden": "true" }));
      item.appendChild(document.createTextNode(r.label + " " + (total ? Math.round((r.value / total) * 100) : 0) + "%"));
      legend.appendChild(item);
    });
    container.appendChild(legend);
    return svg;
  }

  var worldPromise = null;
  function loadWorld(url) {
    if (!worldPromise) {
      worldPromise = fetch(url).then(function (r) {
        if (!r.ok) throw new Error("world map: HTTP " + r.status);
        return r.json();
      });
    }
    return worldPromise;
  }

  /** A choropleth of the first number per ISO country code. */
  function renderMap(report, container, options) {
    var cols = report.columns, data = report.data;
    var ci = cols.map(function (c) { return String(c).toLowerCase(); }).indexOf("country");
    var nums = numericColumns(cols, data), vi = nums[0];
    var values = {}, max = 0;
    data.forEach(function (r) {
      var code = typeof r[ci] === "string" ? r[ci].toUpperCase() : null;
      if (!code || vi === undefined || !isNumber(r[vi])) return;
      values[code] = (values[code] || 0) + r[vi];
      max = Math.max(max, values[code]);
    });
    var svg = svgEl("svg", { class: "map", role: "img", "aria-label": (report.title || report.name || "") + " by country" });
    container.appendChild(svg);
    return loadWorld(options.worldUrl).then(function (world) {
      svg.setAttribute("viewBox", "0 0 " + world.width + " " + world.height);
      svg.appendChild(svgEl("path", { class: "sphere", d: world.outline }));
      world.countries.forEach(function (c) {
        var path = svgEl("path", { class: "land", d: c.d });
        var v = values[c.id];
        if (v) {
          path.setAttribute("data-code", c.id);
          // five shades on a square-root scale keep small countries visible next to the leader
          var shade = Math.min(5, 1 + Math.floor(Math.sqrt(v / (max || 1)) * 5));
          path.setAttribute("class", "land shade-" + shade);
          path.setAttribute("data-value", String(v));
        }
        path.appendChild(svgEl("title", null, c.name + ": " + (v ? formatValue(cols[vi], v) : "0")));
        svg.appendChild(path);
      });
      if (max) container.appendChild(mapLegend(cols[vi], max));
      return svg;
    });
  }

  /** The map's key: its five shades from the fewest to the most (the square-root scale's bounds). */
  function mapLegend(column, max) {
    var legend = el("div", { class: "map-legend" });
    legend.appendChild(el("span", null, humanColumn(column) + ": 1"));
    var key = svgEl("svg", { viewBox: "0 0 100 10", class: "map map-key", role: "img", "aria-label": "Five shades from 1 to " + formatNumber(max) });
    for (var i = 1; i <= 5; i++) key.appendChild(svgEl("rect", { class: "land shade-" + i, x: (i - 1) * 20, y: 0, width: 20, height: 10 }));
    legend.appendChild(key);
    legend.appendChild(el("span", null, formatNumber(max)));
    return legend;
  }

  /** What a column measures, so that counts, shares and durations get separate axes. */
  function kind(column) {
    var name = String(column).toLowerCase();
    if (/(rate|ratio|share)$/.test(name)) return "rate";
    if (/duration|seconds/.test(name)) return "duration";
    return "count";
  }

  /** The bucket a series' first column holds: hour, day, week or month. */
  function bucketOf(column, value) {
    var name = String(column).toLowerCase();
    if (name === "week" || name === "month" || name === "hour") return name;
    return String(value).length > 10 ? "hour" : "day";
  }

  function addDays(iso, n) {
    return new Date(Date.parse(iso + "T00:00:00Z") + n * 86400000).toISOString().slice(0, 10);
  }

  /**
   * Whether a bucket is over ("past"), still running ("partial": today, this hour, this
   * week or month) or still to come ("future"), by the site's local today and the
   * server's now (options.today, options.now in ms). Without them every bucket is past.
   */
  function bucketState(bucket, label, options) {
    if (bucket === "hour") {
      if (!options.now) return "past";
      var start = Date.parse(label);
      if (start > options.now) return "future";
      return options.now < start + 3600000 ? "partial" : "past";
    }
    var today = options.today, day = String(label).slice(0, 10);
    if (!today) return "past";
    if (day > today) return "future";
    if (bucket === "week") return addDays(day, 6) >= today ? "partial" : "past";
    if (bucket === "month") return day.slice(0, 7) === today.slice(0, 7) ? "partial" : "past";
    return day === today ? "partial" : "past";
  }

  var SO_FAR = { hour: "this hour so far", day: "today so far", week: "this week so far", month: "this month so far" };

  /**
   * A time series with uPlot: the date column on x, numeric columns as lines.
   * The first column's kind (count, rate, duration) gets the left axis, a second
   * kind the right one; a third kind stays in the table only.
   *
   * The bucket still running (today, this hour) is drawn apart, dotted with a hollow
   * point, and buckets still to come are left out, so that an unfinished day never
   * reads as a fall. ``options.previous`` ({label, data} with the same columns) adds
   * the previous period as dashed lines over the same buckets, named in the legend.
   * Hours are placed at their real instant and labelled in ``options.zone``.
   */
  function renderLine(report, container, options) {
    options = options || {};
    var cols = report.columns, data = report.data;
    var nums = numericColumns(cols, data).filter(function (i) { return i !== 0; });
    var kinds = [];
    nums.forEach(function (i) { if (kinds.indexOf(kind(cols[i])) < 0) kinds.push(kind(cols[i])); });
    kinds = kinds.slice(0, 2);
    nums = nums.filter(function (i) { return kinds.indexOf(kind(cols[i])) >= 0; });
    var bucket = bucketOf(cols[0], data.length ? data[0][0] : "");
    var hourly = bucket === "hour";
    var xs = data.map(function (r) {
      var s = String(r[0]);
      return Date.parse(s.length === 10 ? s + "T00:00:00Z" : s) / 1000;
    });
    var states = data.map(function (r) { return bucketState(bucket, r[0], options); });
    var partial = states.indexOf("partial");
    var series = [{}], aligned = [xs];
    var colours = ["--series-1", "--series-2", "--series-3", "--series-4"];
    var background = cssVar("--panel");
    function valueOf(i) { return function (u, v) { return v === null || v === undefined ? "–" : formatValue(cols[i], v); }; }
    nums.forEach(function (i, k) {
      series.push({
        label: humanColumn(cols[i]),
        scale: kind(cols[i]),
        stroke: cssVar(colours[k % colours.length]),
        width: 2,
        fill: k === 0 ? cssVar("--accent-soft") : undefined,
        points: { show: data.length < 60 },
        value: valueOf(i),
      });
      aligned.push(data.map(function (r, j) { return states[j] === "past" && isNumber(r[i]) ? r[i] : null; }));
    });
    if (options.previous && options.previous.data) {
      var before = options.previous.data;
      nums.forEach(function (i, k) {
        series.push({
          label: humanColumn(cols[i]) + " · " + options.previous.label,
          scale: kind(cols[i]),
          stroke: cssVar(colours[k % colours.length]),
          width: 1.5,
          dash: [6, 5],
          points: { show: false },
          value: valueOf(i),
        });
        aligned.push(data.map(function (r, j) { return before[j] && isNumber(before[j][i]) ? before[j][i] : null; }));
      });
    }
    if (partial >= 0) {
      nums.forEach(function (i, k) {
        var colour = cssVar(colours[k % colours.length]);
        series.push({
          label: humanColumn(cols[i]) + ", " + SO_FAR[bucket],
          scale: kind(cols[i]),
          stroke: colour,
          width: 2,
          dash: [2, 4],
          points: { show: true, size: 8, width: 2, stroke: colour, fill: background },
          value: valueOf(i),
        });
        // from the last finished bucket to the running one
        aligned.push(data.map(function (r, j) {
          var shown = j === partial || (j === partial - 1 && states[j] === "past");
          return shown && isNumber(r[i]) ? r[i] : null;
        }));
      });
    }
    var axisColour = cssVar("--muted"), grid = cssVar("--border");
    var tickFormat = {
      count: function (u, splits) { return splits.map(formatNumber); },
      rate: function (u, splits) { return splits.map(formatPercent); },
      duration: function (u, splits) { return splits.map(formatDuration); },
    };
    var axes = [{ stroke: axisColour, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } }];
    // days, weeks and months are ticked on whole days at least, never on hours in between
    if (!hourly) axes[0].incrs = [86400, 2 * 86400, 7 * 86400, 14 * 86400, 30 * 86400, 91 * 86400, 182 * 86400, 365 * 86400];
    // Given a single day (or hour), uPlot spreads the axis over years from it:
    // centre it in its own day (or hour) instead.
    var scales = {
      x: {
        time: true,
        range: function (u, min, max) {
          var pad = hourly ? 1800 : 43200;
          return xs.length === 1 ? [xs[0] - pad, xs[0] + pad] : [min, max];
        },
      },
    };
    kinds.forEach(function (k, n) {
      scales[k] = { auto: true, range: function (u, min, max) { return [0, max > 0 ? max * 1.08 : 1]; } };
      axes.push({
        scale: k, side: n === 0 ? 3 : 1, stroke: axisColour, values: tickFormat[k],
        grid: { show: n === 0, stroke: grid, width: 1 }, ticks: { stroke: grid }, size: 56,
      });
    });
    var zone = hourly && options.zone ? options.zone : "Etc/UTC";
    var width = Math.max(container.clientWidth || 0, 280);
    var opts = {
      width: width,
      height: Math.round(Math.min(300, Math.max(180, width * 0.4))),
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), zone); },
      series: series,
      scales: scales,
      axes: axes,
      // the legend names the series; the values at the cursor are in a tooltip by the cursor
      legend: { live: false },
      cursor: { points: { size: 6 } },
      plugins: [tooltip(function (idx) {
        return String(data[idx] ? data[idx][0] : "").replace("T", " ").replace(/:00(Z|[+-]\d\d:?\d\d)?$/, "");
      })],
    };
    if (!hourly) opts.series[0] = { value: bucket === "month" ? "{YYYY}-{MM}" : "{YYYY}-{MM}-{DD}" };
    else opts.series[0] = { value: "{YYYY}-{MM}-{DD} {HH}:00" };
    var plot;
    try {
      plot = new uPlot(opts, aligned, container);
    } catch (err) { // a zone the browser does not know: label hours in UTC
      if (zone === "Etc/UTC") throw err;
      container.textContent = "";
      opts.tzDate = function (ts) { return uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"); };
      plot = new uPlot(opts, aligned, container);
    }
    container.setAttribute("data-buckets", bucket);
    container.setAttribute("data-partial", partial >= 0 ? String(data[partial][0]) : "");
    container.setAttribute("data-previous", options.previous ? options.previous.label : "");
    if (window.ResizeObserver) {
      var observer = new ResizeObserver(function () {
        var w = Math.max(container.clientWidth, 280);
        if (Math.abs(w - plot.width) > 4) plot.setSize({ width: w, height: Math.round(Math.min(300, Math.max(180, w * 0.4))) });
      });
      observer.observe(container);
    }
    return plot.root.querySelector("canvas");
  }

  /**
   * A uPlot plugin: a box by the cursor with the bucket (``label(idx)``) and each series'
   * value there, built as text (no HTML), placed with CSSOM (allowed by the strict CSP).
   */
  function tooltip(label) {
    var box;
    return {
      hooks: {
        init: function (u) {
          box = el("div", { class: "chart-tooltip", role: "status" });
          box.hidden = true;
          u.over.appendChild(box);
        },
        setCursor: function (u) {
          var idx = u.cursor.idx;
          if (idx === null || idx === undefined || u.cursor.left < 0) { box.hidden = true; return; }
          box.textContent = "";
          box.appendChild(el("div", { class: "tooltip-title" }, label(idx)));
          var shown = 0;
          u.series.forEach(function (s, i) {
            if (i === 0 || !s.show) return;
            var v = u.data[i][idx];
            if (v === null || v === undefined) return;
            var line = el("div", { class: "tooltip-row" });
            var swatch = el("span", { class: "tooltip-swatch", "aria-hidden": "true" });
            swatch.style.background = typeof s.stroke === "function" ? s.stroke(u, i) : s.stroke;
            line.appendChild(swatch);
            line.appendChild(document.createTextNode(s.label + ": " + s.value(u, v, i, idx)));
            box.appendChild(line);
            shown++;
          });
          box.hidden = !shown;
          var left = u.cursor.left + 12, top = Math.max(0, u.cursor.top - 12);
          if (left + box.offsetWidth > u.over.clientWidth) left = Math.max(0, u.cursor.left - box.offsetWidth - 12);
          box.style.left = left + "px";
          box.style.top = top + "px";
        },
      },
    };
  }

  /** The first row's numbers as tiles drawn in one SVG. */
  function renderKpi(report, container) {
    var cols = report.columns, row = (report.data || [])[0] || [];
    var w = 160;
    var svg = svgEl("svg", {
      class: "kpi-chart", viewBox: "0 0 " + Math.max(cols.length, 1) * w + " 64",
      width: Math.max(cols.length, 1) * w, height: 64, role: "img", "aria-label": report.title || report.name || "",
    });
    cols.forEach(function (c, i) {
      svg.appendChild(svgEl("text", { class: "kpi-name", x: i * w + 4, y: 18 }, humanColumn(c)));
      svg.appendChild(svgEl("text", { class: "kpi-number", x: i * w + 4, y: 50 }, formatValue(c, row[i])));
    });
    container.appendChild(svg);
    return svg;
  }

  function renderNote(container, text) {
    // drawn at its own size (no viewBox), so the text reads the same in a narrow card
    var svg = svgEl("svg", { class: "note-chart", height: 28, role: "img", "aria-label": text });
    svg.appendChild(svgEl("text", { x: 4, y: 19 }, text));
    container.appendChild(svg);
    return svg;
  }

  /**
   * Draw a report's chart into `container` (emptied first). Returns a promise.
   * A "table" report with a label and a number still gets its bars, so every
   * report has a picture; one without numbers gets a one-line row count.
   */
  function renderChart(report, container, options) {
    options = options || {};
    container.textContent = "";
    var type = chartType(report);
    container.setAttribute("data-chart", type);
    var data = report.data || [];
    if (!data.length && type !== "map") {
      return Promise.resolve(renderNote(container, "No data in this range."));
    }
    try {
      if (type === "line") return Promise.resolve(renderLine(report, container, options));
      if (type === "map") return renderMap(report, container, options);
      if (type === "pie") return Promise.resolve(renderPie(report, container));
      if (type === "kpi") return Promise.resolve(renderKpi(report, container));
      if (type === "funnel") return Promise.resolve(renderFunnel(report, container));
      return Promise.resolve(renderBars(report, container, options.limit));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  window.CrumbyRender = {
    chartType: chartType,
    preloadWorld: loadWorld,
    renderChart: renderChart,
    renderTable: renderTable,
    renderBarList: renderBarList,
    displayValue: displayValue,
    rowFilters: rowFilters,
    formatValue: formatValue,
    humanColumn: humanColumn,
    safeHttpUrl: safeHttpUrl,
    el: el,
    svgEl: svgEl,
  };
})();
