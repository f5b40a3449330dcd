/*
 * Crumby's tracker, readable source. `npm run build` minifies it with terser
 * into two builds under crumby/static/, which Crumby serves at the same paths:
 *
 * - cmb.js       (AUTO = false): page views, SPA navigations and cmb.event();
 * - cmb.auto.js  (AUTO = true): the same, plus automatic events: outbound link
 *                clicks, file downloads and, with data-404, a "404" event.
 *
 * `AUTO` is not a variable of the page: terser replaces it with a constant
 * (--define) and drops the code a build does not need. `npm run size` checks
 * each build against its budget in tracker/budgets.json.
 *
 * Embed: <script src="https://CRUMBY_HOST/cmb.js" defer></script>
 * It finds the server from its own src, records one visit per page view and
 * per single-page-app navigation, and exposes cmb.event(name, value).
 *
 * Rules: never throw into the page, never block rendering, one request per hit.
 * Every entry point is wrapped in try/catch; sending is fire-and-forget.
 * Written for browsers since 2016 (ES2015 arrows and spread; URL,
 * URLSearchParams, dataset, pushState): older ones record nothing.
 */
(function (win, doc) {
  try {
    // Calls queued by the stub before we loaded: window.cmb = {q: [[name, value], ...]}
    var queued = (win.cmb && win.cmb.q) || [];

    // Set while a classic script (defer and async included) first runs.
    var script = doc.currentScript;
    // The server is wherever the script came from, keeping any path prefix (the
    // directory of the URL: no file name, query or fragment). Without a
    // currentScript, or with no src (an inline copy), this throws: nothing to do.
    // (A URL object: `base + path` is its href followed by the path.)
    var base = new URL('.', script.src);
    var loc = location;
    var nav = navigator;
    var options = script.dataset;

    // data-respect-dnt, data-skip-localhost, data-no-cookie, data-no-spa (and in
    // cmb.auto.js data-404, data-no-outbound, data-no-downloads): present, empty
    // or "true" switches the option on; "false" leaves it off.
    var flag = (name) => /^(|true)$/.test(options[name]);

    // Opt-outs a site owner can switch on (see README "Embedding the tracker").
    var off =
      (flag('respectDnt') && (nav.doNotTrack == 1 || nav.globalPrivacyControl)) ||
      (flag('skipLocalhost') && /^(localhost|127\..*|\[::1]|)$/.test(loc.hostname));
    // First-party cookie `cid`: 128 random bits, about two years, SameSite=Lax.
    // Cookies disabled or blocked (reading them throws): send no cid, and the
    // server uses its daily id; a cookie that does not stick reads back as missing.
    // A visitor (the site owner, say) can exclude this browser with
    // localStorage.cmb_ignore = 'true' (storage that is blocked, and so cannot
    // hold it, throws or is null).
    var stored = () => (doc.cookie.match(/(^|; )cid=([^;]+)/) || [])[2];
    var cid;
    try {
      if (!off && !flag('noCookie')) {
        cid =
          stored() ||
          ((doc.cookie =
            'cid=' +
            crypto.getRandomValues(new Uint32Array(4)).join('-') +
            ';path=/;max-age=63072000;SameSite=Lax' +
            (loc.protocol == 'https:' ? ';Secure' : '')),
          stored());
      }
      off = off || localStorage.cmb_ignore == 'true';
    } catch (e) {}

    // Values are form-encoded by URLSearchParams. A value wrapped in an array
    // turns undefined and null into "" (which the server takes as missing), and
    // a lone surrogate becomes U+FFFD instead of throwing.
    var send = (path, data) => {
      // Everything a page hands us could throw: nothing escapes to the page.
      try {
        if (off) return;
        data.cid = [cid];
        data.dl = loc.href;
        data.dt = doc.title;
        // data-site="example.org" names the registered site when the page's host differs
        data.site = [options.site];
        var body = '' + new URLSearchParams(data);
        // sendBeacon queues a text/plain POST that survives page unload; if it is
        // missing or refuses (queue full), a 1x1 image GET carries the same fields.
        if (!(nav.sendBeacon && nav.sendBeacon(base + path, body))) {
          new Image().src = base + path + '?' + body;
        }
      } catch (e) {}
    };

    var referrer = doc.referrer;
    var path, href;

    var pageview = () => {
      path = loc.pathname;
      href = loc.href;
      send('visit', {
        de: doc.characterSet,
        dr: referrer,
        ul: nav.language,
        sd: screen.colorDepth + '-bit',
        sr: screen.width + 'x' + screen.height
      });
    };

    var event = (name, value) => send('event', { en: [name], ev: [value] });

    // Single-page apps: a new path through pushState, replaceState or the back
    // button is a page view; the page we leave becomes the referrer.
    var moved = () => {
      if (loc.pathname != path) {
        referrer = href;
        pageview();
      }
    };

    if (!flag('noSpa')) {
      // (pushState and replaceState return nothing)
      ['pushState', 'replaceState'].forEach((name) => {
        var original = history[name];
        history[name] = (...args) => {
          original.apply(history, args);
          moved();
        };
      });
      addEventListener('popstate', moved);
    }

    win.cmb = { event: event };
    pageview();
    queued.forEach((call) => event(...call));

    if (AUTO) {
      // data-404 on the script tag of the site's "not found" page.
      if (flag('404')) event('404', loc.href);

      // File types counted as downloads (the part of the path after its last
      // dot); data-downloads="pdf,zip,epub" replaces the list.
      var types = (
        options.downloads ||
        'pdf,doc,docx,xls,xlsx,ppt,pptx,odt,ods,odp,csv,txt,rtf,epub,zip,rar,7z,gz,tgz,xz,' +
          'dmg,exe,msi,pkg,deb,rpm,apk,iso,mp3,wav,flac,ogg,mp4,mov,avi,mkv,webm'
      )
        .toLowerCase()
        .split(/[\s,.]+/);

      // A click (or a middle click) on a link: a download is a link with a
      // `download` attribute or a file type above; an outbound link goes to
      // another host. The beacon leaves now; the navigation is not held up.
      var clicked = (e) => {
        try {
          var link = e.target.closest('a[href]');
          var url = link.href;
          if (e.button > 1) return;
          if (
            !flag('noDownloads') &&
            (link.hasAttribute('download') ||
              types.includes(link.pathname.toLowerCase().split('.').pop()))
          ) {
            event('download', url);
          } else if (!flag('noOutbound') && /^http/.test(url) && link.host != loc.host) {
            event('outbound', url);
          }
        } catch (e) {}
      };
      doc.addEventListener('click', clicked);
      doc.addEventListener('auxclick', clicked);
    }
  } catch (e) {}
})(window, document);
