// Real-user monitoring: once this page has loaded, post its own navigation timing to the API
// (stored in ops.page_loads; the Operations page and the health score read it). Same-origin only.
(function () {
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
  function send() {
    var nav = performance.getEntriesByType('navigation')[0];
    if (!nav || !nav.loadEventEnd) return;
    var fcp = performance.getEntriesByName('first-contentful-paint')[0];
    fetch('/api/rum', {
      method: 'POST', credentials: 'same-origin', keepalive: true,
      headers: {'Content-Type': 'application/json'},
      body: JSON.stringify({
        page: location.pathname, ttfb_ms: nav.responseStart, dom_ms: nav.domContentLoadedEventEnd,
        load_ms: nav.loadEventEnd, painted_ms: painted !== null ? painted : (fcp ? fcp.startTime : null)
      })
    }).catch(function () {});
  }
  if (document.readyState === 'complete') setTimeout(send, 0);
  else window.addEventListener('load', function () { setTimeout(send, 0); });
})();
