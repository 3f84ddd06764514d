// Bokeh's and Panel's scripts, fetched and run without holding up the page (issue 18).
//
// The front door sends the page's first part before the session is built (web/page_shell.py); as
// plain script tags, ~3 MB of script would then have to run (~0.45 s even from the cache) before the
// browser showed anything that came after it: the tiles in the HTML included. So they are listed in
// a <template> and added here as ordered, non-blocking scripts: they are fetched at once and run in
// their order, while the rest of the page arrives and is painted. Bokeh's render script, which needs
// them, is in a <template> too and runs through ``kpiScriptsRun`` once they have all run.
(function () {
  var list = document.getElementById('kpi-scripts');
  var waiting = [];
  var done = false;
  var inline = [];
  window.kpiScriptsRun = function (fn) { if (done) fn(); else waiting.push(fn); };
  function run(code) {
    var el = document.createElement('script');
    el.text = code;
    document.head.appendChild(el); // an inline script runs as it is added
  }
  function finish() {
    if (done) return;
    done = true;
    inline.forEach(run);
    waiting.splice(0).forEach(function (fn) { fn(); });
  }
  var srcs = [];
  var tags = list ? list.content.querySelectorAll('script') : [];
  for (var i = 0; i < tags.length; i++) {
    var type = tags[i].getAttribute('type');
    if (type && type !== 'text/javascript') continue; // e.g. es-module-shims' options: not a script
    if (tags[i].hasAttribute('src')) srcs.push(tags[i].getAttribute('src'));
    else inline.push(tags[i].text);
  }
  var left = srcs.length;
  if (!left) { finish(); return; }
  srcs.forEach(function (src) {
    var el = document.createElement('script');
    el.src = src;
    el.async = false; // in their order, as soon as each is here, without blocking the HTML parser
    el.onload = el.onerror = function () { if (--left === 0) finish(); };
    document.head.appendChild(el);
  });
})();
