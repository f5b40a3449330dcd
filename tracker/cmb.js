/*
 * Crumby's tracker, readable source. `npm run build` minifies it with terser
 * into crumby/static/cmb.js, the file Crumby serves at /cmb.js.
 *
 * Embed: <script src="https://CRUMBY_HOST/cmb.js" defer></script>
 * It finds the server from its own src, records one visit per page view and
 * per single-page-app navigation, and exposes cmb.event(name, value).
 *
 * Rules: never throw into the page, never block rendering, one request per hit.
 * Every entry point is wrapped in try/catch; sending is fire-and-forget.
 */
(function (win, doc) {
  try {
    // Calls queued by the stub before we loaded: window.cmb = {q: [[name, value], ...]}
    var queued = (win.cmb && win.cmb.q) || [];

    // Set while a classic script (defer and async included) first runs.
    var script = doc.currentScript;
    var src = script && script.src;
    if (!src) return;
    // The server is wherever the script came from, keeping any path prefix.
    var base = src.split(/[?#]/)[0].replace(/[^/]*$/, '');
    var loc = win.location;
    var nav = navigator;

    // data-respect-dnt, data-skip-localhost, data-no-cookie, data-no-spa: present,
    // empty or "true" switches the option on; "false" leaves it off.
    function flag(name) {
      return /^(|true)$/.test(script.dataset[name]);
    }

    // Opt-outs a site owner can switch on (see README "Embedding the tracker").
    var off =
      (flag('respectDnt') && (nav.doNotTrack == '1' || nav.globalPrivacyControl)) ||
      (flag('skipLocalhost') && /^(localhost|127\..*|\[::1]|)$/.test(loc.hostname));
    // A visitor (the site owner, say) can exclude this browser with
    // localStorage.cmb_ignore = 'true'. Blocked storage throws: not ignored.
    try {
      off = off || win.localStorage.cmb_ignore == 'true';
    } catch (e) {}

    function visitorId() {
      // First-party cookie `cid`: 128 random bits, about two years, SameSite=Lax.
      // Cookies disabled or blocked: send no cid and the server uses its daily id.
      if (flag('noCookie')) return '';
      try {
        var found = doc.cookie.match(/(^|; )cid=([^;]+)/);
        if (found) return found[2];
        var id = '';
        var words = win.crypto.getRandomValues(new Uint32Array(4));
        for (var i = 0; i < 4; i++) id += words[i].toString(36);
        doc.cookie =
          'cid=' + id + ';path=/;max-age=63072000;SameSite=Lax' +
          (loc.protocol == 'https:' ? ';Secure' : '');
        return doc.cookie.indexOf('cid=' + id) < 0 ? '' : id;
      } catch (e) {
        return '';
      }
    }

    var cid = off ? '' : visitorId();

    function send(path, data) {
      // Everything a page hands us (an event name with a lone surrogate, say)
      // could throw: nothing escapes to the page.
      try {
        if (off) return;
        data.cid = cid;
        // data-site="example.org" names the registered site when the page's host differs
        data.site = script.dataset.site;
        var body = [];
        for (var key in data) {
          if (data[key] != null) body.push(key + '=' + encodeURIComponent(data[key]));
        }
        body = body.join('&');
        // sendBeacon queues a text/plain POST that survives page unload; if it is
        // missing or refuses (queue full), a 1x1 image GET carries the same fields.
        if (!(nav.sendBeacon && nav.sendBeacon(base + path, body))) {
          new Image().src = base + path + '?' + body;
        }
      } catch (e) {}
    }

    var referrer = doc.referrer;
    var path, href;

    function pageview() {
      path = loc.pathname;
      href = loc.href;
      var screen = win.screen || {};
      send('visit', {
        dl: href,
        dt: doc.title,
        de: doc.characterSet,
        dr: referrer,
        ul: nav.language,
        sd: screen.colorDepth && screen.colorDepth + '-bit',
        sr: screen.width && screen.width + 'x' + screen.height
      });
    }

    function event(name, value) {
      send('event', { en: name, ev: value, dl: loc.href, dt: doc.title });
    }

    // Single-page apps: a new path through pushState, replaceState or the back
    // button is a page view; the page we leave becomes the referrer.
    function moved() {
      if (loc.pathname != path) {
        referrer = href;
        pageview();
      }
    }

    var history = win.history;
    if (history && !flag('noSpa')) {
      ['pushState', 'replaceState'].forEach(function (name) {
        var original = history[name];
        if (!original) return;
        history[name] = function () {
          var result = original.apply(this, arguments);
          moved();
          return result;
        };
      });
      win.addEventListener('popstate', moved);
    }

    win.cmb = { event: event };
    pageview();
    for (var i = 0; i < queued.length; i++) event.apply(null, queued[i]);
  } catch (e) {}
})(window, document);
