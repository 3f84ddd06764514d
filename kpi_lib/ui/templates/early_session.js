// The page's session document, asked for as soon as the HTML arrives (issue 18).
//
// Bokeh opens the page's websocket and asks for its document only once Bokeh's and Panel's ~3 MB of
// script have run (~0.4 s even from the cache), and the server then serializes the document (~0.1 s)
// while the browser waits. This opens that same websocket at once and asks for the document then, so
// both happen while the scripts run. When Bokeh's connection asks for this URL and token, it is
// handed this socket: it sees the socket open and the server's ACK, and the document it asks for is
// the one already here (the reply's reqid is made Bokeh's). Anything else gets a websocket of its
// own, and a socket nobody takes is closed: the page then loads as it did without this script.
(function () {
  var me = document.currentScript;
  var token = me && me.getAttribute('data-token');
  var Native = window.WebSocket; // recover.js's (and a test probe's) wrapper stays underneath
  if (!token || !Native) return;
  var loc = window.location;
  // Bokeh's own URL for this page's session (client/server.ts _get_ws_url, the page's query after ?)
  var url = (loc.protocol === 'https:' ? 'wss:' : 'ws:') + '//' + loc.host +
    loc.pathname.replace(/\/+$/, '') + '/ws' + (loc.search.length > 1 ? loc.search : '');
  var EARLY = 'kpi-early-pull';
  var ws;
  try {
    ws = new Native(url, ['bokeh', token]);
  } catch (e) {
    return;
  }
  ws.binaryType = 'arraybuffer';

  var queue = [];        // frames received and not yet handed to Bokeh: {data, msg}
  var msgs = 0;          // messages begun (the server's ACK is message 1)
  var left = 0;          // frames still to come in the current message (0: the next is a header)
  var pulled = false;    // our PULL-DOC-REQ went out
  var reply = null;      // the header of the reply to it, parsed
  var asked = null;      // the msgid of Bokeh's own PULL-DOC-REQ
  var swallow = 0;       // frames of Bokeh's request still to drop (its metadata and content)
  var adopted = false;
  var told = false;      // Bokeh has been told the socket is open: frames may go to it
  var ended = null;      // the close event, if the socket closed before Bokeh took it

  var fake = {
    binaryType: 'arraybuffer', onopen: null, onmessage: null, onclose: null, onerror: null,
    get readyState() { return ws.readyState; },
    get url() { return ws.url; },
    get protocol() { return ws.protocol; },
    get bufferedAmount() { return ws.bufferedAmount; },
    send: function (data) {
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
      if (h.msgtype === 'ACK' && !pulled) {
        pulled = true;
        ws.send(JSON.stringify({msgid: EARLY, msgtype: 'PULL-DOC-REQ'}));
        ws.send('{}');
        ws.send('{}');
      }
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
    pump();
  });
  function tell() {
    if (told) return;
    told = true;
    if (fake.onopen) fake.onopen({});
    pump();
  }
  ws.addEventListener('open', function () { if (adopted) tell(); });
  ws.addEventListener('error', function (ev) {
    if (!adopted) { ended = ev; return; } // a failing socket is not handed over: Bokeh opens its own
    if (fake.onerror) fake.onerror(ev);
  });
  ws.addEventListener('close', function (ev) {
    if (!adopted) { ended = ev; return; }
    if (fake.onclose) fake.onclose(ev);
  });

  function Early(u, protocols) {
    if (!adopted && ended === null && String(u) === url && protocols && protocols[1] === token) {
      adopted = true;
      setTimeout(function () { // Bokeh sets its handlers just after the constructor returns
        if (ws.readyState === 1) tell();
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
