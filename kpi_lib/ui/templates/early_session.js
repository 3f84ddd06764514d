// The page's session document, asked for before the page's scripts have run (issue 18).
//
// Bokeh opens the page's websocket and asks for its document only once Bokeh's and Panel's ~3 MB of
// script have run (~0.4 s even from the cache), and the server then serializes the document (~0.1 s)
// while the browser waits. The front door sends this script, and those scripts, before the worker
// has even built the session (web/page_shell.py), with a one-time key in ``data-early``: this opens
// the page's websocket at once with that key instead of the session's token (which does not exist
// yet); the front door holds it until the session is built, then connects it to that session and
// asks for the document (msgid kpi-early-pull) as soon as the server's ACK comes, without waiting
// for this page's main thread, busy with the scripts by then. When Bokeh's connection asks for
// this URL, it is handed this socket: it sees the socket open and the ACK, and the document it asks
// for is the one already here (the reply's reqid is made Bokeh's). Anything else gets a websocket of
// its own, and a socket nobody takes is closed: the page then loads as it did without this script.
(function () {
  var me = document.currentScript;
  var key = me && me.getAttribute('data-early');
  var Native = window.WebSocket; // recover.js's (and a test probe's) wrapper stays underneath
  if (!key || !Native) return;
  var loc = window.location;
  // Bokeh's own URL for this page's session (client/server.ts _get_ws_url, the page's query after ?)
  var url = (loc.protocol === 'https:' ? 'wss:' : 'ws:') + '//' + loc.host +
    loc.pathname.replace(/\/+$/, '') + '/ws' + (loc.search.length > 1 ? loc.search : '');
  var EARLY = 'kpi-early-pull';
  var ws;
  try {
    ws = new Native(url, ['bokeh', 'kpi-early.' + key]);
  } catch (e) {
    return;
  }
  ws.binaryType = 'arraybuffer';

  var queue = [];        // frames received and not yet handed to Bokeh: {data, msg}
  var msgs = 0;          // messages begun (the server's ACK is message 1)
  var left = 0;          // frames still to come in the current message (0: the next is a header)
  var reply = null;      // the header of the reply to it, parsed
  var asked = null;      // the msgid of Bokeh's own PULL-DOC-REQ
  var swallow = 0;       // frames of Bokeh's request still to drop (its metadata and content)
  var adopted = false;
  var told = false;      // Bokeh has been told the socket is open (the ACK came): frames may go to it
  var ended = null;      // the close event, if the socket closed before Bokeh took it
  var theirs = null;     // the protocols Bokeh asked for (its token)
  var direct = false;    // this socket failed before its ACK: Bokeh's own socket is underneath

  var fake = {
    binaryType: 'arraybuffer', onopen: null, onmessage: null, onclose: null, onerror: null,
    get readyState() { return direct || told ? ws.readyState : 0; }, // open for Bokeh at the ACK
    get url() { return ws.url; },
    get protocol() { return ws.protocol; },
    get bufferedAmount() { return ws.bufferedAmount; },
    send: function (data) {
      if (direct) { ws.send(data); return; }
      if (swallow > 0) { swallow--; return; }
      if (asked === null && typeof data === 'string' && data.indexOf('"PULL-DOC-REQ"') !== -1) {
        asked = JSON.parse(data).msgid; // answered with the document already asked for
        swallow = 2;
        setTimeout(pump, 0);
        return;
      }
      ws.send(data);
    },
    close: function (code, reason) { ws.close(code, reason); },
    addEventListener: function (type, fn, opts) { ws.addEventListener(type, fn, opts); },
    removeEventListener: function (type, fn, opts) { ws.removeEventListener(type, fn, opts); },
  };

  function pump() {
    // the ACK as soon as Bokeh holds the socket; the rest once Bokeh has asked for the document
    while (told && queue.length && (queue[0].msg === 1 || asked !== null)) {
      var f = queue.shift();
      var data = f.data;
      if (f.reply) {
        reply.reqid = asked;
        data = JSON.stringify(reply);
      }
      if (fake.onmessage) fake.onmessage({data: data});
    }
  }

  ws.addEventListener('message', function (ev) {
    var frame = {data: ev.data, msg: msgs};
    if (left === 0) { // a Bokeh message's header: small JSON text
      var h = {};
      try { h = JSON.parse(ev.data); } catch (e) { /* not Bokeh's framing: passed on as it came */ }
      frame.msg = ++msgs;
      left = 2 + 2 * (h.num_buffers || 0);
      if (h.reqid === EARLY) {
        reply = h;
        frame.reply = true;
      }
    } else {
      left--;
    }
    if (told && !queue.length && (frame.msg === 1 || asked !== null) && !frame.reply) {
      if (fake.onmessage) fake.onmessage(ev);
      return;
    }
    queue.push(frame);
    if (adopted && !told && msgs >= 1) tell(); else pump();
  });
  function tell() {
    if (told) return;
    told = true;
    if (fake.onopen) fake.onopen({});
    pump();
  }
  ws.addEventListener('error', function (ev) {
    if (!adopted) { ended = ev; return; } // a failing socket is not handed over: Bokeh opens its own
    if (told && fake.onerror) fake.onerror(ev); // before the ACK, the close that follows falls back
  });
  ws.addEventListener('close', function (ev) {
    if (!adopted) { ended = ev; return; }
    if (!told) { fallback(); return; }
    if (fake.onclose) fake.onclose(ev);
  });

  // Bokeh took this socket, and it closed before the server's ACK (the front door could not connect
  // it to the session): Bokeh's own socket, with its token, goes underneath instead.
  function fallback() {
    direct = true;
    ws = new Native(url, theirs);
    ws.binaryType = 'arraybuffer';
    ws.onopen = function (ev) { if (fake.onopen) fake.onopen(ev); };
    ws.onmessage = function (ev) { if (fake.onmessage) fake.onmessage(ev); };
    ws.onerror = function (ev) { if (fake.onerror) fake.onerror(ev); };
    ws.onclose = function (ev) { if (fake.onclose) fake.onclose(ev); };
  }

  function Early(u, protocols) {
    if (!adopted && ended === null && String(u) === url && protocols && protocols[0] === 'bokeh') {
      adopted = true;
      theirs = protocols;
      setTimeout(function () { // Bokeh sets its handlers just after the constructor returns
        if (msgs >= 1 && !direct) tell();
      }, 0);
      return fake;
    }
    return protocols === undefined ? new Native(u) : new Native(u, protocols);
  }
  Early.prototype = Native.prototype;
  ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED'].forEach(function (k) { Early[k] = Native[k]; });
  window.WebSocket = Early;
  setTimeout(function () { if (!adopted) ws.close(1000, 'not taken'); }, 60000);
})();
