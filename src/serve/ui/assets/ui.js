// paytrace web UI: the graph explorer's behaviour (pan and zoom, selection, click to expand,
// highlight, export). Hand-written, no dependencies; the pages work without it (expanding is
// then a link to the next graph).
(function () {
  'use strict';

  function $(sel, root) { return (root || document).querySelector(sel); }
  function $$(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }

  // ---- pan and zoom: the SVG's viewBox moves, the drawing stays as the server laid it out.
  function panZoom(svg) {
    var vb = svg.viewBox.baseVal;
    var home = { x: vb.x, y: vb.y, w: vb.width, h: vb.height };
    function set(x, y, w, h) { vb.x = x; vb.y = y; vb.width = w; vb.height = h; }
    function point(evt) {
      var r = svg.getBoundingClientRect();
      // preserveAspectRatio "xMidYMid meet": one scale for both axes.
      var s = Math.max(vb.width / r.width, vb.height / r.height);
      var ox = (r.width * s - vb.width) / 2, oy = (r.height * s - vb.height) / 2;
      return { x: vb.x - ox + (evt.clientX - r.left) * s, y: vb.y - oy + (evt.clientY - r.top) * s, s: s };
    }
    function zoom(f, cx, cy) {
      var w = vb.width * f, h = vb.height * f;
      if (w < 60 || w > home.w * 20) { return; }
      set(cx - (cx - vb.x) * f, cy - (cy - vb.y) * f, w, h);
    }
    svg.addEventListener('wheel', function (e) {
      e.preventDefault();
      var p = point(e);
      zoom(Math.pow(1.0015, e.deltaY), p.x, p.y);
    }, { passive: false });
    var drag = null;
    svg.addEventListener('pointerdown', function (e) {
      if (e.button !== 0 || e.target.closest('g.node, g.edge')) { return; }
      drag = { x: e.clientX, y: e.clientY, s: point(e).s };
      svg.setPointerCapture(e.pointerId);
      svg.classList.add('panning');
    });
    svg.addEventListener('pointermove', function (e) {
      if (!drag) { return; }
      vb.x -= (e.clientX - drag.x) * drag.s;
      vb.y -= (e.clientY - drag.y) * drag.s;
      drag.x = e.clientX; drag.y = e.clientY;
    });
    function end() { drag = null; svg.classList.remove('panning'); }
    svg.addEventListener('pointerup', end);
    svg.addEventListener('pointercancel', end);
    return {
      zoomIn: function () { zoom(1 / 1.25, vb.x + vb.width / 2, vb.y + vb.height / 2); },
      zoomOut: function () { zoom(1.25, vb.x + vb.width / 2, vb.y + vb.height / 2); },
      reset: function () { set(home.x, home.y, home.w, home.h); }
    };
  }

  // ---- selection: a node or an edge shows its server-rendered details in the side panel.
  function select(area, kind, index) {
    $$('.selected', area).forEach(function (el) { el.classList.remove('selected'); });
    $$('#panel .detail').forEach(function (d) { d.hidden = true; });
    var el = $('g.' + kind + '[data-index="' + index + '"]', area);
    if (el) { el.classList.add('selected'); }
    var d = document.getElementById('detail-' + kind + '-' + index);
    if (d) { d.hidden = false; } else { var h = $('#panel .detail-help'); if (h) { h.hidden = false; } }
  }

  // ---- click to expand: fetch the next graph as a fragment and swap it in.
  function load(href, push) {
    var area = $('#graph-area');
    var url = href + (href.indexOf('?') < 0 ? '?' : '&') + 'fragment=1';
    area.classList.add('loading');
    return fetch(url, { credentials: 'same-origin', headers: { 'Accept': 'text/html' } })
      .then(function (r) {
        if (r.status === 401) { window.location.href = '/ui/login'; return null; }
        return r.text().then(function (t) { return { ok: r.ok, text: t }; });
      })
      .then(function (res) {
        area.classList.remove('loading');
        if (!res) { return; }
        if (!res.ok) {
          // An error answer is a whole page: show its message, keep the graph.
          var doc = new DOMParser().parseFromString(res.text, 'text/html');
          var msg = doc.querySelector('.error');
          var box = $('#graph-error');
          if (box) { box.hidden = false; box.textContent = msg ? msg.textContent : 'The graph could not be loaded.'; }
          return;
        }
        area.innerHTML = res.text;
        if (push) { history.pushState({ graph: href }, '', href); }
        init();
      })
      .catch(function (err) {
        area.classList.remove('loading');
        var box = $('#graph-error');
        if (box) { box.hidden = false; box.textContent = 'Could not load the graph: ' + err; }
      });
  }

  // ---- export: the SVG as drawn (its style sheet is inside it), as a file.
  function download(name, type, text) {
    var a = document.createElement('a');
    a.href = URL.createObjectURL(new Blob([text], { type: type }));
    a.download = name;
    document.body.appendChild(a);
    a.click();
    setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 0);
  }

  function init() {
    var area = $('#graph-area');
    if (!area) { return; }
    var svg = $('svg.explore', area);
    if (!svg) { return; }
    var pz = panZoom(svg);
    area.onclick = function (e) {
      var a = e.target.closest('a.expand');
      if (a && !e.ctrlKey && !e.metaKey && !e.shiftKey) {
        e.preventDefault();
        load(a.getAttribute('href'), true);
        return;
      }
      var g = e.target.closest('g.node, g.edge');
      if (g) { select(area, g.classList.contains('node') ? 'node' : 'edge', g.getAttribute('data-index')); }
    };
    area.ondblclick = function (e) {
      var g = e.target.closest('g.node');
      if (!g) { return; }
      var a = $('#detail-node-' + g.getAttribute('data-index') + ' a.expand.out');
      if (a) { load(a.getAttribute('href'), true); }
    };
    var hl = $('#highlight');
    if (hl) {
      var apply = function () { svg.classList.toggle('highlight', hl.checked); };
      hl.onchange = apply;
      apply();
    }
    var bind = function (id, f) { var b = document.getElementById(id); if (b) { b.onclick = f; } };
    bind('zoom-in', pz.zoomIn);
    bind('zoom-out', pz.zoomOut);
    bind('zoom-reset', pz.reset);
    bind('export-svg', function () {
      var copy = svg.cloneNode(true);
      copy.setAttribute('xmlns', 'http://www.w3.org/2000/svg');
      var vb = svg.getAttribute('data-home');
      if (vb) { copy.setAttribute('viewBox', vb); }
      download('paytrace-graph.svg', 'image/svg+xml',
        '<?xml version="1.0" encoding="UTF-8"?>\n' + new XMLSerializer().serializeToString(copy));
    });
    var sel = $('#graph-select', area);
    select(area, 'node', sel ? sel.textContent.trim() : '0');
  }

  // ---- login link: `/ui/login#key=KEY` (printed by `paytrace demo --serve`) logs in with
  // the key from the fragment, which browsers never send to the server.
  function loginFromFragment() {
    var m = /^#key=(.+)$/.exec(window.location.hash);
    var input = document.getElementById('key');
    if (!m || !input) { return; }
    input.value = decodeURIComponent(m[1]);
    history.replaceState(null, '', window.location.pathname);
    input.form.submit();
  }

  window.addEventListener('popstate', function () {
    if ($('#graph-area')) { load(window.location.pathname + window.location.search, false); }
  });
  document.addEventListener('DOMContentLoaded', function () { loginFromFragment(); init(); });
})();
