// Real-user monitoring: post this page's own timing to the API once (stored in ops.page_loads; the
// Operations page and the health score read it). Same-origin only.
//
// usable: when the page a person can use was on screen. The load event comes long before that on
// both kinds of dashboard: their parts arrive over a websocket afterwards.
// - Panel (drawn by Bokeh): every Bokeh document had drawn all its parts (its "idle"), the
//   first-paint copy of the numbers was gone and no loading overlay was left.
// - Voila: the notebook had run (Voila's spinner gone, its cells shown) and every output had drawn
//   (a widget's output stays an empty panel until the widget manager has drawn the widget). A
//   notebook without outputs is posted without it, at WAIT_MS.
(function () {
  var WAIT_MS = 60000; // a page not usable by then is posted without it
  // painted: when a dashboard's numbers were painted (elementtiming="kpi-tiles"), else the first
  // contentful paint (a page whose first part comes before its numbers paints that part first)
  var painted = null;
  try {
    new PerformanceObserver(function (list) {
      list.getEntries().forEach(function (e) {
        if (e.identifier === 'kpi-tiles' && painted === null) painted = e.renderTime || e.loadTime;
      });
    }).observe({type: 'element', buffered: true});
  } catch (e) { /* no element timing here: the first contentful paint */ }

  var sent = false;
  function send(usable) {
    var nav = performance.getEntriesByType('navigation')[0];
    if (sent || !nav || !nav.loadEventEnd) return;
    sent = true;
    var fcp = performance.getEntriesByName('first-contentful-paint')[0];
    fetch('/api/rum', {
      method: 'POST', credentials: 'same-origin', keepalive: true,
      headers: {'Content-Type': 'application/json'},
      body: JSON.stringify({
        page: location.pathname, ttfb_ms: nav.responseStart, dom_ms: nav.domContentLoadedEventEnd,
        load_ms: nav.loadEventEnd, painted_ms: painted !== null ? painted : (fcp ? fcp.startTime : null),
        usable_ms: usable
      })
    }).catch(function () {});
  }

  function drawnByBokeh() {
    return !!(window.Bokeh || document.querySelector('template#kpi-scripts, script[src*="/static/js/bokeh"]'));
  }

  function bokehUsable() {
    var docs = window.Bokeh && window.Bokeh.documents;
    if (!docs || !docs.length) return null;
    for (var i = 0; i < docs.length; i++) if (!docs[i].is_idle) return null;
    if (document.getElementById('kpi-first-paint')) return null;
    if (document.body.classList.contains('pn-loading') || document.querySelector('.pn-loading')) return null;
    return performance.now();
  }

  function voilaUsable() {
    var cells = document.getElementById('rendered_cells');
    if (document.getElementById('loading') || !cells || cells.style.display === 'none') return null;
    var outputs = cells.querySelectorAll('.jp-OutputArea-output');
    if (!outputs.length) return null; // the cells are shown a moment before their outputs
    for (var i = 0; i < outputs.length; i++) if (!outputs[i].children.length) return null;
    return performance.now();
  }

  function start() {
    var usable = drawnByBokeh() ? bokehUsable : document.getElementById('rendered_cells') ? voilaUsable : null;
    if (!usable) { send(null); return; }
    var timer = setInterval(function () {
      var at = usable();
      if (at !== null) { clearInterval(timer); send(at); }
      else if (performance.now() > WAIT_MS) { clearInterval(timer); send(null); }
    }, 50);
    // left before it was usable: what there is
    window.addEventListener('pagehide', function () { clearInterval(timer); send(null); });
  }

  if (document.readyState === 'complete') setTimeout(start, 0);
  else window.addEventListener('load', function () { setTimeout(start, 0); });
})();
