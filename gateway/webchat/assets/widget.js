/*
 * Switchboard web chat widget. Embed with one tag:
 *
 *   <script src="https://GATEWAY/channels/CHANNEL/widget.js"
 *           data-title="Support" data-position="right"
 *           data-ref="FLOW" data-metadata='{"plan":"pro"}'
 *           data-token="IDENTITY_JWT" data-force-open></script>
 *
 * data-inline="#selector" renders the chat inside that element instead of
 * a floating button; data-page-params reads ref and metadata from the
 * page's own ?ref= and ?metadata=; data-show-user shows the user id. Talks the Assistant websocket protocol
 * (plugins/assistant/README.md): hello, message, button and ack frames;
 * resumes after the last sequence number it saw, so a reconnect neither
 * loses nor repeats a message.
 */
(function () {
  'use strict';
  var script = document.currentScript;
  if (!script) { return; }
  var base = script.src.replace(/widget\.js(\?.*)?$/, '');
  var channel = decodeURIComponent(base.replace(/\/$/, '').split('/').pop());
  var wsURL = base.replace(/^http/, 'ws') + 'ws';
  var data = script.dataset;
  var tokenKey = 'switchboard:webchat:' + channel + ':token';

  var ref = data.ref || '';
  var metadata = data.metadata || '';
  if (data.pageParams !== undefined) {
    var q = new URLSearchParams(location.search);
    ref = q.get('ref') || ref;
    metadata = q.get('metadata') || metadata;
  }
  var meta;
  if (metadata) {
    try { meta = JSON.parse(metadata); } catch (e) { console.warn('switchboard widget: metadata is not JSON', e); }
  }

  // ---- state ----
  var state = {
    userId: '', lastSeq: 0, status: 'connecting',
    started: false,   // the page's conversation start was welcomed
    startId: '',      // request_id of that start, the same on every try
    pending: {},      // request_id -> {frame, el}
    typingTimer: 0, ackTimer: 0, acked: 0, attempt: 0,
    pageToken: false, // this connection presented the page's identity token
    refused: false,   // this connection's token was refused
    stopped: false,
  };
  var ws = null;

  // ---- DOM ----
  var css = [
    '.sbw-root{font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1d2330;box-sizing:border-box}',
    '.sbw-root *{box-sizing:border-box}',
    // The display rules below would otherwise beat the hidden attribute
    // the launcher, banner and typing indicator toggle.
    '.sbw-root [hidden]{display:none!important}',
    '.sbw-panel{display:flex;flex-direction:column;height:100%;background:#fff;border-radius:12px;box-shadow:0 4px 24px rgba(0,0,0,.15);overflow:hidden}',
    '.sbw-floating .sbw-panel{position:fixed;bottom:88px;width:360px;height:540px;max-height:calc(100vh - 110px);z-index:2147483000}',
    '.sbw-launcher{position:fixed;bottom:20px;width:56px;height:56px;border-radius:50%;border:0;background:#3157d5;color:#fff;display:flex;align-items:center;justify-content:center;padding:0;cursor:pointer;box-shadow:0 4px 16px rgba(0,0,0,.25);z-index:2147483000}',
    '.sbw-head{display:flex;align-items:center;justify-content:space-between;padding:12px 14px;background:#3157d5;color:#fff}',
    '.sbw-title{font-weight:600}',
    '.sbw-status{font-size:12px;opacity:.9}',
    '.sbw-log{flex:1;overflow-y:auto;padding:12px;background:#f6f7fb;display:flex;flex-direction:column;gap:8px}',
    '.sbw-log>*{flex-shrink:0}',
    '.sbw-msg{max-width:82%;padding:8px 11px;border-radius:12px;white-space:pre-wrap;word-wrap:break-word}',
    '.sbw-bot{align-self:flex-start;background:#fff;border:1px solid #e1e4ec}',
    '.sbw-user{align-self:flex-end;background:#3157d5;color:#fff}',
    '.sbw-user.sbw-sending{opacity:.6}',
    '.sbw-msg a{color:inherit}',
    '.sbw-btns{display:flex;flex-wrap:wrap;gap:6px;margin-top:6px}',
    '.sbw-btn{border:1px solid #3157d5;background:#fff;color:#3157d5;border-radius:16px;padding:5px 12px;cursor:pointer;font:inherit;text-decoration:none}',
    '.sbw-btn:hover{background:#eef2ff}',
    '.sbw-img{display:block;max-width:100%;border-radius:8px;margin-top:4px}',
    '.sbw-cards{display:flex;gap:8px;overflow-x:auto;max-width:100%;align-self:stretch}',
    '.sbw-card{flex:0 0 220px;background:#fff;border:1px solid #e1e4ec;border-radius:10px;overflow:hidden}',
    '.sbw-card img{width:100%;height:120px;object-fit:cover;display:block;background:#e8ebf2}',
    '.sbw-card-body{padding:8px 10px}',
    '.sbw-card-title{font-weight:600}',
    '.sbw-card-sub{color:#667;font-size:13px}',
    '.sbw-typing{align-self:flex-start;color:#889;font-style:italic;padding:2px 6px}',
    '.sbw-form{display:flex;border-top:1px solid #e1e4ec}',
    '.sbw-input{flex:1;border:0;padding:12px;font:inherit;outline:none}',
    '.sbw-send{border:0;background:none;color:#3157d5;font-weight:600;padding:0 14px;cursor:pointer}',
    '.sbw-banner{padding:6px 12px;background:#fff4d6;color:#6b5300;font-size:12px;text-align:center}',
    '.sbw-whoami{padding:4px 12px;font-size:12px;color:#667;border-top:1px solid #e1e4ec;user-select:all}',
  ].join('\n');
  var style = document.createElement('style');
  style.textContent = css;
  document.head.appendChild(style);

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }

  var root = el('div', 'sbw-root');
  var panel = el('div', 'sbw-panel');
  var head = el('div', 'sbw-head');
  var title = el('span', 'sbw-title', data.title || 'Chat');
  var status = el('span', 'sbw-status', 'Connecting…');
  head.appendChild(title);
  head.appendChild(status);
  var banner = el('div', 'sbw-banner');
  banner.hidden = true;
  var log = el('div', 'sbw-log');
  // The typing indicator stays the log's last child; messages go before it.
  var typing = el('div', 'sbw-typing', 'typing…');
  typing.hidden = true;
  log.appendChild(typing);
  var form = el('form', 'sbw-form');
  var input = el('input', 'sbw-input');
  input.id = 'sbw-input';
  input.placeholder = 'Write a message…';
  input.autocomplete = 'off';
  input.maxLength = 4000;
  var send = el('button', 'sbw-send', 'Send');
  send.type = 'submit';
  form.appendChild(input);
  form.appendChild(send);
  panel.appendChild(head);
  panel.appendChild(banner);
  panel.appendChild(log);
  panel.appendChild(form);
  // data-show-user shows the session's user id (the demo page does, so
  // the quickstart can send that user a broadcast).
  var whoami = null;
  if (data.showUser !== undefined) {
    whoami = el('div', 'sbw-whoami');
    panel.appendChild(whoami);
  }
  root.appendChild(panel);

  var host = data.inline ? document.querySelector(data.inline) : null;
  if (host) {
    root.style.height = '100%';
    host.appendChild(root);
  } else {
    root.classList.add('sbw-floating');
    var side = data.position === 'left' ? 'left' : 'right';
    panel.style[side] = '20px';
    var launcher = el('button', 'sbw-launcher');
    launcher.type = 'button';
    // An inline icon: an emoji needs an emoji font, which many systems lack.
    launcher.appendChild(bubbleIcon());
    launcher.style[side] = '20px';
    var setOpen = function (open) {
      panel.hidden = !open;
      launcher.setAttribute('aria-label', open ? 'Close chat' : 'Open chat');
      launcher.setAttribute('aria-expanded', String(open));
    };
    setOpen(data.forceOpen !== undefined);
    launcher.addEventListener('click', function () { setOpen(panel.hidden); if (!panel.hidden) { input.focus(); } });
    root.appendChild(launcher);
    (document.body || document.documentElement).appendChild(root);
  }

  // bubbleIcon is a speech bubble drawn in the launcher's text colour.
  function bubbleIcon() {
    var ns = 'http://www.w3.org/2000/svg';
    var svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('width', '26');
    svg.setAttribute('height', '26');
    svg.setAttribute('aria-hidden', 'true');
    var path = document.createElementNS(ns, 'path');
    path.setAttribute('fill', 'currentColor');
    path.setAttribute('d', 'M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z');
    svg.appendChild(path);
    return svg;
  }

  function setStatus(s, text) {
    state.status = s;
    status.textContent = text;
    status.setAttribute('data-state', s);
    root.setAttribute('data-state', s);
  }

  function showBanner(text) {
    banner.textContent = text || '';
    banner.hidden = !text;
  }

  function scroll() { log.scrollTop = log.scrollHeight; }

  // ---- rendering ----
  function safeURL(u) {
    if (!u) { return ''; } // '' would resolve to this page itself
    try {
      var p = new URL(u, location.href);
      return (p.protocol === 'http:' || p.protocol === 'https:') ? p.href : '';
    } catch (e) { return ''; }
  }

  // Basic Markdown: **bold**, *italic*, `code`, [text](url) and bare URLs,
  // built as DOM nodes (never innerHTML).
  var inline = /(\*\*([^*]+)\*\*)|(\*([^*]+)\*)|(`([^`]+)`)|(\[([^\]]+)\]\(([^)\s]+)\))|(https?:\/\/[^\s<]+)/g;
  function markdown(parent, text) {
    var last = 0, m;
    inline.lastIndex = 0;
    while ((m = inline.exec(text)) !== null) {
      if (m.index > last) { parent.appendChild(document.createTextNode(text.slice(last, m.index))); }
      if (m[2]) { parent.appendChild(el('strong', '', m[2])); }
      else if (m[4]) { parent.appendChild(el('em', '', m[4])); }
      else if (m[6]) { parent.appendChild(el('code', '', m[6])); }
      else { link(parent, m[8] || m[10], m[9] || m[10]); }
      last = inline.lastIndex;
    }
    if (last < text.length) { parent.appendChild(document.createTextNode(text.slice(last))); }
  }

  function link(parent, text, href) {
    var u = safeURL(href);
    if (!u) { parent.appendChild(document.createTextNode(text)); return; }
    var a = el('a', '', text);
    a.href = u;
    a.target = '_blank';
    a.rel = 'noopener noreferrer';
    parent.appendChild(a);
  }

  function buttons(parent, list, quick) {
    if (!list || !list.length) { return; }
    var box = el('div', 'sbw-btns');
    list.forEach(function (b) {
      if (b.url) {
        var u = safeURL(b.url);
        var a = el('a', 'sbw-btn sbw-link', b.title);
        if (u) { a.href = u; }
        a.target = '_blank';
        a.rel = 'noopener noreferrer';
        box.appendChild(a);
        return;
      }
      var btn = el('button', 'sbw-btn', b.title);
      btn.type = 'button';
      btn.setAttribute('data-payload', b.payload || '');
      btn.addEventListener('click', function () {
        if (quick) { box.remove(); }
        sendUser({ type: 'button', payload: b.payload, title: b.title }, b.title);
      });
      box.appendChild(btn);
    });
    if (quick) { box.classList.add('sbw-quick'); }
    parent.appendChild(box);
  }

  function card(c) {
    var box = el('div', 'sbw-card');
    var img = safeURL(c.image_url || '');
    if (img) { var i = el('img'); i.src = img; i.alt = c.title || ''; box.appendChild(i); }
    var body = el('div', 'sbw-card-body');
    body.appendChild(el('div', 'sbw-card-title', c.title));
    if (c.subtitle) { body.appendChild(el('div', 'sbw-card-sub', c.subtitle)); }
    buttons(body, c.buttons, false);
    box.appendChild(body);
    return box;
  }

  function renderBot(content, fallback) {
    var c = content || {};
    if (c.type === 'typing') {
      showTyping(c.duration_ms || 1500);
      return;
    }
    hideTyping();
    // Quick replies are offered only until the conversation moves on.
    Array.prototype.forEach.call(log.querySelectorAll('.sbw-quick'), function (q) { q.remove(); });
    var msg;
    switch (c.type) {
      case 'card':
      case 'carousel':
        if (c.text) { addBubble(c.text); }
        msg = el('div', 'sbw-cards sbw-bot-cards');
        (c.cards || []).forEach(function (cd) { msg.appendChild(card(cd)); });
        break;
      case 'image':
      case 'file':
        msg = el('div', 'sbw-msg sbw-bot');
        if (c.text) { markdown(msg, c.text); }
        var u = safeURL(c.media && c.media.url);
        if (u && c.type === 'image') {
          var img = el('img', 'sbw-img');
          img.src = u;
          img.alt = c.text || '';
          msg.appendChild(img);
        } else if (u) {
          if (c.text) { msg.appendChild(document.createElement('br')); }
          link(msg, (c.media && c.media.name) || u, u);
        }
        break;
      case 'text':
      case 'buttons':
        msg = el('div', 'sbw-msg sbw-bot');
        markdown(msg, c.text || '');
        buttons(msg, c.buttons, !!c.quick_replies);
        break;
      default:
        msg = el('div', 'sbw-msg sbw-bot');
        markdown(msg, fallback || '');
    }
    log.insertBefore(msg, typing);
    scroll();
  }

  function addBubble(text) {
    var b = el('div', 'sbw-msg sbw-bot');
    markdown(b, text);
    log.insertBefore(b, typing);
  }

  function showTyping(ms) {
    typing.hidden = false;
    log.appendChild(typing);
    clearTimeout(state.typingTimer);
    state.typingTimer = setTimeout(hideTyping, Math.min(ms, 10000));
    scroll();
  }

  function hideTyping() { typing.hidden = true; clearTimeout(state.typingTimer); }

  // ---- protocol ----
  function rid() {
    if (window.crypto && crypto.randomUUID) { return crypto.randomUUID(); }
    return Date.now().toString(36) + Math.random().toString(36).slice(2);
  }

  function frame(f) {
    if (ws && ws.readyState === WebSocket.OPEN) { ws.send(JSON.stringify(f)); return true; }
    return false;
  }

  function sendUser(f, shown) {
    f.request_id = rid();
    var bubble = el('div', 'sbw-msg sbw-user sbw-sending', shown);
    log.insertBefore(bubble, typing);
    scroll();
    state.pending[f.request_id] = { frame: f, el: bubble };
    if (state.userId) { frame(f); } // otherwise sent once the session starts
  }

  form.addEventListener('submit', function (e) {
    e.preventDefault();
    var text = input.value.trim();
    if (!text) { return; }
    input.value = '';
    sendUser({ type: 'message', text: text }, text);
  });

  function ack() {
    state.ackTimer = 0;
    if (state.lastSeq > state.acked && frame({ type: 'ack', seq: state.lastSeq })) { state.acked = state.lastSeq; }
  }

  function onFrame(f) {
    switch (f.type) {
      case 'welcome':
        state.userId = f.user_id;
        state.started = true;
        if (whoami) { whoami.textContent = 'user_id: ' + f.user_id; }
        state.attempt = 0;
        try { localStorage.setItem(tokenKey, f.token); } catch (e) { /* private mode: the session lasts the page */ }
        setStatus('online', 'Online');
        showBanner('');
        // Messages written before the connection dropped, in order; the
        // server dedupes them by request_id.
        Object.keys(state.pending).forEach(function (id) { frame(state.pending[id].frame); });
        break;
      case 'resume_reset':
        // The gateway never gave out the number this page resumed after
        // (its database was reset): count from the last one it did, or the
        // next messages would be taken for ones seen already.
        state.lastSeq = f.last_seq;
        state.acked = Math.min(state.acked, f.last_seq);
        break;
      case 'received':
        var p = state.pending[f.request_id];
        if (p) { p.el.classList.remove('sbw-sending'); delete state.pending[f.request_id]; }
        break;
      case 'message':
        if (f.seq <= state.lastSeq) { return; } // seen already
        state.lastSeq = f.seq;
        renderBot(f.content, f.text);
        // One ack covers every message up to it: at most one per 50 ms.
        if (!state.ackTimer) { state.ackTimer = setTimeout(ack, 50); }
        break;
      case 'error':
        if (f.code === 'unauthorized' || f.code === 'identity_required') {
          try { localStorage.removeItem(tokenKey); } catch (e) { /* nothing stored */ }
          state.refused = true;
        }
        if (f.request_id && state.pending[f.request_id]) {
          state.pending[f.request_id].el.classList.add('sbw-failed');
          delete state.pending[f.request_id];
        }
        console.warn('switchboard widget:', f.code, f.message);
        break;
    }
  }

  function connect() {
    if (state.stopped) { return; }
    setStatus(state.started ? 'reconnecting' : 'connecting', state.started ? 'Reconnecting…' : 'Connecting…');
    var sock = new WebSocket(wsURL);
    ws = sock;
    sock.onopen = function () {
      var token = '';
      try { token = localStorage.getItem(tokenKey) || ''; } catch (e) { /* no storage */ }
      state.pageToken = !token && !!data.token;
      if (state.pageToken) { token = data.token; }
      state.refused = false;
      var hello = { type: 'hello', last_seq: state.lastSeq, request_id: rid() };
      if (token) { hello.token = token; }
      if (!state.started) {
        // Only the page's first session starts a conversation; a retry
        // keeps its request_id, so the server starts it once.
        state.startId = state.startId || rid();
        hello.request_id = state.startId;
        hello.start = true;
        if (ref) { hello.ref = ref; }
        if (meta) { hello.metadata = meta; }
      }
      sock.send(JSON.stringify(hello));
    };
    sock.onmessage = function (e) {
      var f;
      try { f = JSON.parse(e.data); } catch (err) { return; }
      onFrame(f);
    };
    sock.onclose = function (e) {
      if (ws !== sock) { return; }
      ws = null;
      state.userId = '';
      hideTyping();
      if (state.refused && state.pageToken) {
        // The page's identity token was refused: only a new page (with a
        // new token) can sign in. A refused stored session token was
        // dropped above, and the next try starts afresh.
        setStatus('offline', 'Signed out');
        showBanner('Your session has expired. Reload the page to continue.');
        state.stopped = true;
        return;
      }
      var delay = Math.min(30000, 500 * Math.pow(2, state.attempt++)) * (0.5 + Math.random());
      setStatus('reconnecting', 'Reconnecting in ' + Math.ceil(delay / 1000) + 's…');
      showBanner('Connection lost (' + (e.code || 'network') + '). Messages are kept and will arrive when the chat reconnects.');
      setTimeout(connect, delay);
    };
  }

  window.SwitchboardWidget = {
    state: function () { return { userId: state.userId, lastSeq: state.lastSeq, status: state.status }; },
    reconnect: function () { if (ws) { ws.close(); } },
  };
  connect();
})();
