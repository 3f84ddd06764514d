// A dashboard page whose Panel worker went away (killed, restarted) reloads itself as soon as the
// front door answers again: the reload reaches a live worker, which the front door then pins this
// sign-in session to (kpi_lib/web/workers.py). Only the pages of the worker that went away notice;
// the others keep their sockets. Loaded first in <head>, before Panel opens its websocket.
(function () {
  var Native = window.WebSocket;
  var leaving = false;
  var recovering = false;
  window.addEventListener('pagehide', function () { leaving = true; });
  window.addEventListener('beforeunload', function () { leaving = true; });

  function reloadWhenUp() {
    fetch('/healthz', {cache: 'no-store', credentials: 'same-origin'})
      .then(function (r) { if (r.ok) location.reload(); else setTimeout(reloadWhenUp, 1000); })
      .catch(function () { setTimeout(reloadWhenUp, 1000); });
  }

  function lost(event) {
    // 4001: the front door saw the worker's connection drop (kpi_lib/web/proxy.py WORKER_GONE);
    // any other close (a normal end, a refusal) is left to Panel
    if (event.code !== 4001 || leaving || recovering) return;
    recovering = true;
    setTimeout(reloadWhenUp, 300);
  }

  window.WebSocket = class extends Native {
    constructor(url, protocols) {
      super(url, protocols);
      if (String(url).indexOf('/panel/') !== -1) this.addEventListener('close', lost);
    }
  };
})();
