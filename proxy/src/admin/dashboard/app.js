// strangler dashboard: polls the admin API every 2 s and renders routes, trends, diffs and
// events; flips routes with the admin token the user types once.
//
// Everything shown comes from traffic or config (route ids, paths, diff values), so every
// node is built with createElement and filled with textContent: data is never parsed as
// markup. Keep it that way (a unit test in dashboard.rs checks for the usual sinks).
'use strict';

(() => {
  const POLL_MS = 2000;
  const HISTORY_MAX = 300; // 10 minutes at one sample per poll
  const DIFF_LIMIT = 20;
  const MODES = ['legacy', 'shadow', 'canary', 'extracted', 'retired'];
  const TOKEN_KEY = 'strangler.admin-token';
  const SVG_NS = 'http://www.w3.org/2000/svg';

  const state = {
    routes: [],
    defaultUpstream: null,
    generation: null,
    cluster: null, // /admin/routes' cluster object in cluster mode: who this is, the fleet's instances
    summaries: new Map(), // route id -> latest /admin/shadow entry
    history: new Map(), // route id -> [{t, rate, lp50, lp99, cp50, cp99}]
    accounted: new Map(), // route id -> {n, t}: for requests per second
    perSecond: new Map(),
    routesKey: '',
    diffsKey: '',
    events: 'unknown', // 'unknown' | 'present' | 'absent'
    trendRoute: '',
    polling: null,
  };

  // === DOM helpers ===

  const $ = (id) => document.getElementById(id);

  /** An element with attributes and children; strings become text nodes, never markup. */
  function el(tag, attrs, ...children) {
    return fill(document.createElement(tag), attrs, children);
  }

  /** An SVG element (attributes only ever hold numbers, fixed names or text from data). */
  function svg(tag, attrs, ...children) {
    return fill(document.createElementNS(SVG_NS, tag), attrs, children);
  }

  function fill(node, attrs, children) {
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === 'text') node.textContent = String(value);
      else if (key === 'class') node.setAttribute('class', value);
      else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? '' : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function clear(node) {
    node.replaceChildren();
    return node;
  }

  function modeBadge(mode, percent) {
    const known = MODES.includes(mode) ? mode : 'unknown';
    const label = mode === 'canary' && percent !== null && percent !== undefined
      ? `canary ${formatNumber(percent)}%` : String(mode);
    return el('span', { class: `badge mode-${known}`, text: label });
  }

  function verdictBadge(verdict) {
    const known = ['equal', 'noise', 'regression', 'skipped'].includes(verdict) ? verdict : 'unknown';
    return el('span', { class: `badge verdict-${known}`, text: String(verdict) });
  }

  function setEmpty(node, message) {
    if (message) {
      clear(node).append(...(Array.isArray(message) ? message : [message]));
      node.hidden = false;
    } else {
      node.hidden = true;
    }
  }

  // === Formatting ===

  function formatNumber(n) {
    if (typeof n !== 'number' || !Number.isFinite(n)) return '—';
    return Number.isInteger(n) ? n.toLocaleString('en-US') : n.toLocaleString('en-US', { maximumFractionDigits: 1 });
  }

  function plural(n, word) {
    return `${formatNumber(n)} ${word}${n === 1 ? '' : 's'}`;
  }

  function formatMs(ms) {
    if (typeof ms !== 'number' || !Number.isFinite(ms)) return '—';
    if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
    if (ms >= 100) return `${Math.round(ms)} ms`;
    return `${ms.toFixed(1)} ms`;
  }

  function formatRate(rate) {
    if (typeof rate !== 'number' || !Number.isFinite(rate)) return '—';
    const pct = rate * 100;
    return `${pct < 10 && pct > 0 ? pct.toFixed(2) : pct.toFixed(1)}%`;
  }

  function formatClock(t) {
    return new Date(t).toLocaleTimeString('en-GB', { hour12: false });
  }

  function formatWhen(at) {
    const t = Date.parse(at);
    return Number.isNaN(t) ? String(at ?? '') : formatClock(t);
  }

  /**
   * A request path as a person reads it: percent-escapes decoded, except those of the
   * characters that give a path its structure (decodeURI keeps %2F, %3F, %23 and the like).
   */
  function readablePath(raw) {
    try {
      return decodeURI(raw);
    } catch {
      return raw;
    }
  }

  /** A diff value as JSON text, so `1` and `"1"` look different; absent is said in words. */
  function showValue(value) {
    if (value === undefined) return null;
    const text = JSON.stringify(value);
    return text === undefined ? String(value) : text;
  }

  // === Admin API ===

  async function getJson(url) {
    const response = await fetch(url, { headers: { accept: 'application/json' }, cache: 'no-store' });
    let body = null;
    try {
      body = await response.json();
    } catch {
      body = null;
    }
    return { status: response.status, ok: response.ok, body };
  }

  async function send(method, url, payload, token) {
    const response = await fetch(url, {
      method,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify(payload),
      cache: 'no-store',
    });
    let body = null;
    try {
      body = await response.json();
    } catch {
      body = null;
    }
    return { status: response.status, ok: response.ok, body };
  }

  function errorText(result) {
    if (result.body && typeof result.body.error === 'string') return result.body.error;
    if (result.body && Array.isArray(result.body.errors)) return result.body.errors.join('; ');
    return `the admin API answered HTTP ${result.status}`;
  }

  // === Token ===

  function storedToken() {
    try {
      return sessionStorage.getItem(TOKEN_KEY) || '';
    } catch {
      return '';
    }
  }

  function storeToken(token) {
    try {
      if (token) sessionStorage.setItem(TOKEN_KEY, token);
      else sessionStorage.removeItem(TOKEN_KEY);
    } catch {
      // Storage refused (private mode): the token is asked again next time.
    }
    renderTokenState();
  }

  function renderTokenState() {
    const has = storedToken() !== '';
    $('token-state').textContent = has ? 'admin token set for this tab' : 'read-only (token asked when you flip)';
    $('token-state').classList.toggle('has-token', has);
    $('forget-token').hidden = !has;
  }

  // === Polling ===

  let inFlight = false;
  let again = false;

  /** One round of reads; a call while one is running makes the next round start at once. */
  async function poll() {
    if (inFlight) {
      again = true;
      return;
    }
    inFlight = true;
    clearTimeout(state.polling);
    try {
      const [routes, shadow] = await Promise.all([getJson('/admin/routes'), getJson('/admin/shadow')]);
      if (!routes.ok || !routes.body) throw new Error(`/admin/routes answered HTTP ${routes.status}`);
      state.routes = Array.isArray(routes.body.routes) ? routes.body.routes : [];
      state.defaultUpstream = routes.body.default_upstream ?? null;
      state.generation = routes.body.generation ?? null;
      state.cluster = routes.body.cluster ?? null;
      takeSummaries(shadow.ok && shadow.body && Array.isArray(shadow.body.routes) ? shadow.body.routes : []);
      renderRoutes();
      renderFleet();
      renderTrendChoices();
      renderTrends();
      renderDiffRouteChoices();
      await Promise.all([loadDiffs(), loadEvents()]);
      setStatus(true, `live · config generation ${state.generation ?? '?'} · updated ${formatClock(Date.now())}`);
    } catch (e) {
      setStatus(false, `admin API unreachable (${e.message || e}); retrying every 2 s`);
    } finally {
      inFlight = false;
      state.polling = setTimeout(poll, again ? 0 : POLL_MS);
      again = false;
    }
  }

  function setStatus(ok, text) {
    $('status-dot').className = ok ? 'dot ok' : 'dot down';
    $('status-text').textContent = text;
  }

  function takeSummaries(list) {
    const now = Date.now();
    state.summaries = new Map();
    for (const s of list) {
      if (!s || typeof s.route !== 'string') continue;
      state.summaries.set(s.route, s);
      const latency = s.latency || {};
      const points = state.history.get(s.route) || [];
      points.push({
        t: now,
        rate: Number(s.regression_rate) || 0,
        lp50: latency.legacy_p50_ms,
        lp99: latency.legacy_p99_ms,
        cp50: latency.candidate_p50_ms,
        cp99: latency.candidate_p99_ms,
      });
      if (points.length > HISTORY_MAX) points.splice(0, points.length - HISTORY_MAX);
      state.history.set(s.route, points);
      const n = accounted(s);
      const before = state.accounted.get(s.route);
      if (before && now > before.t) {
        state.perSecond.set(s.route, Math.max(0, (n - before.n) * 1000 / (now - before.t)));
      }
      state.accounted.set(s.route, { n, t: now });
    }
  }

  function accounted(s) {
    let n = Number(s.compared) || 0;
    for (const v of Object.values(s.skipped || {})) n += Number(v) || 0;
    return n;
  }

  // === Routes ===

  function renderRoutes() {
    const key = JSON.stringify([state.routes, [...state.summaries], [...state.perSecond], state.generation]);
    if (key === state.routesKey) return;
    state.routesKey = key;
    const body = clear($('routes-body'));
    for (const route of state.routes) body.append(routeRow(route));
    $('routes-table').hidden = state.routes.length === 0;
    setEmpty($('routes-empty'), state.routes.length === 0
      ? ['No routes yet: add a ', el('code', { text: '[[routes]]' }), ' entry to routes.toml (the proxy picks up the change by itself). Until then every request goes to the default upstream.']
      : null);
    const foot = clear($('routes-foot'));
    if (state.defaultUpstream !== null) {
      foot.append('Requests that match no route go to ', el('code', { text: String(state.defaultUpstream) }), ' (the default upstream).');
    }
  }

  // === Fleet (cluster mode) ===

  /** How long ago an instance's record was written, to the second. */
  function heard(ms) {
    return ms < 1000 ? 'just now' : `${Math.round(ms / 1000)} s ago`;
  }

  /** The instances of the fleet with the revision of each route they serve; hidden unless clustered. */
  function renderFleet() {
    const cluster = state.cluster;
    $('fleet-panel').hidden = !cluster;
    if (!cluster) return;
    const members = Array.isArray(cluster.instances) ? cluster.instances : [];
    const current = new Map(state.routes.map((r) => [String(r.id), r.revision]));
    $('fleet-hint').textContent = `${plural(members.length, 'instance')} sharing bucket ${String(cluster.bucket ?? '?')}`
      + ` · this is ${String(cluster.instance ?? '?')}${cluster.online === false ? ' · NATS unreachable: flips are refused' : ''}`;
    const body = clear($('fleet-body'));
    for (const m of members) {
      const routes = Object.entries(m.routes && typeof m.routes === 'object' ? m.routes : {});
      const applied = routes.map(([route, revision]) => {
        const behind = current.has(route) && current.get(route) !== revision;
        return el('span', { class: behind ? 'applied behind' : 'applied', title: behind ? `behind: this instance serves revision ${current.get(route)}` : null },
          el('code', { text: route }), ` @${String(revision)}`);
      });
      body.append(el('tr', { 'data-instance': String(m.instance) },
        el('td', { class: 'route-id', text: String(m.instance) }),
        el('td', { text: m.leader ? 'leader' : 'follower' }),
        el('td', {}, el('div', { class: 'applied-list' }, applied.length ? applied : '—')),
        el('td', { class: 'num', text: heard(Number(m.age_ms) || 0) })));
    }
  }

  function routeRow(route) {
    const id = String(route.id);
    const s = state.summaries.get(id);
    const row = el('tr', { 'data-route': id, class: `route-row mode-row-${route.mode}` });
    row.append(
      el('td', { class: 'route-cell' },
        el('div', { class: 'route-id', text: id }),
        el('div', { class: 'route-path', text: String(route.path ?? '') })),
      el('td', { class: 'mode-cell' }, modeBadge(route.mode, route.canary_percent), gateLine(route.gate)),
      el('td', { class: 'upstreams' },
        el('span', { class: 'up-name', text: String(route.legacy ?? '—'), title: 'legacy upstream' }),
        el('span', { class: 'arrow', text: ' → ' }),
        el('span', { class: 'up-name new', text: route.extracted ? String(route.extracted) : 'none', title: 'new service' })),
      trafficCell(id, s),
      regressionCell(s),
      latencyCell(s),
      el('td', { class: 'flip-cell' }, flipButtons(route)),
    );
    return row;
  }

  /** The automatic rollout's latest decision for a route with promotion gates. */
  function gateLine(gate) {
    if (!gate || typeof gate !== 'object' || !gate.decision) return null;
    const d = gate.decision;
    const who = gate.auto ? 'auto rollout' : 'gate';
    let text;
    if (d.action === 'promote') text = `${who}: promoting (${d.because})`;
    else if (d.action === 'roll_back') text = `${who}: rolling back (${d.because})`;
    else if (d.next) {
      const missing = Array.isArray(d.missing) && d.missing.length ? `waits for ${d.missing.join('; ')}` : 'ready';
      text = `${who}: next ${d.next}, ${missing}`;
    } else text = `${who}: last stage`;
    return el('div', { class: `gate small gate-${String(d.action)}`, text });
  }

  function trafficCell(id, s) {
    const td = el('td', { class: 'num' });
    if (!s) {
      td.append(el('span', { class: 'muted', text: 'not shadowed' }));
      return td;
    }
    td.append(el('div', { class: 'big', text: formatNumber(Number(s.compared) || 0) }), el('div', { class: 'small muted', text: 'compared' }));
    const skipped = Object.entries(s.skipped || {}).filter(([, n]) => Number(n) > 0);
    if (skipped.length) {
      const total = skipped.reduce((a, [, n]) => a + Number(n), 0);
      td.append(el('div', {
        class: 'small muted',
        text: `+${formatNumber(total)} not mirrored`,
        title: skipped.map(([why, n]) => `${why}: ${n}`).join('\n'),
      }));
    }
    const rate = state.perSecond.get(id);
    if (rate > 0) td.append(el('div', { class: 'small muted', text: `${formatNumber(rate)}/s now` }));
    return td;
  }

  function regressionCell(s) {
    const td = el('td', { class: 'num' });
    if (!s) {
      td.append(el('span', { class: 'muted', text: '—' }));
      return td;
    }
    const compared = Number(s.compared) || 0;
    const regressions = Number(s.regression) || 0;
    const level = compared === 0 ? 'none' : regressions === 0 ? 'good' : 'bad';
    td.append(el('div', { class: `big rate-${level}`, text: compared === 0 ? '—' : formatRate(Number(s.regression_rate)) }));
    td.append(el('div', { class: 'small muted', text: `${formatNumber(regressions)} regression${regressions === 1 ? '' : 's'} · ${formatNumber(Number(s.noise) || 0)} noise` }));
    const baseline = Number(s.baseline_samples) || 0;
    td.append(el('div', {
      class: baseline > 0 ? 'small muted' : 'small warn',
      text: baseline > 0 ? `noise baseline: ${plural(baseline, 'sample')}` : 'no noise baseline yet',
      title: 'Noise is learned by asking legacy twice; verdicts are trustworthy once the baseline has samples.',
    }));
    return td;
  }

  function latencyCell(s) {
    const td = el('td', { class: 'num' });
    const l = s && s.latency;
    if (!l || !(Number(s.compared) > 0)) {
      td.append(el('span', { class: 'muted', text: '—' }));
      return td;
    }
    const slower = l.candidate_p50_ms > l.legacy_p50_ms * 1.2 && l.candidate_p50_ms - l.legacy_p50_ms > 1;
    td.append(
      el('div', {}, el('span', { class: 'lat-legacy', text: formatMs(l.legacy_p50_ms) }), el('span', { class: 'muted', text: ' vs ' }),
        el('span', { class: slower ? 'lat-candidate slower' : 'lat-candidate', text: formatMs(l.candidate_p50_ms) })),
      el('div', { class: 'small muted', text: `p99 ${formatMs(l.legacy_p99_ms)} vs ${formatMs(l.candidate_p99_ms)}` }),
    );
    return td;
  }

  function flipButtons(route) {
    const group = el('div', { class: 'flip-group', role: 'group', 'aria-label': `Flip ${route.id}` });
    for (const mode of MODES) {
      const current = route.mode === mode;
      group.append(el('button', {
        type: 'button',
        class: `flip flip-${mode}${current ? ' current' : ''}`,
        'data-mode': mode,
        disabled: current && mode !== 'canary',
        'aria-pressed': current ? 'true' : 'false',
        title: current && mode === 'canary' ? 'Change the canary share' : current ? 'Current mode' : `Flip to ${mode}`,
        text: mode === 'canary' ? 'canary…' : mode,
        onclick: () => openFlip(route, mode),
      }));
    }
    return group;
  }

  // === Trends ===

  function trendCandidates() {
    const ids = new Set(state.summaries.keys());
    for (const r of state.routes) if (r.mode === 'shadow' || r.mode === 'canary') ids.add(String(r.id));
    return [...ids].sort();
  }

  function renderTrendChoices() {
    const ids = trendCandidates();
    const select = $('trend-route');
    if (!ids.includes(state.trendRoute)) {
      // Show the route that most needs attention: most regressions, then most traffic.
      const ranked = [...ids].sort((a, b) => {
        const sa = state.summaries.get(a) || {};
        const sb = state.summaries.get(b) || {};
        return (Number(sb.regression) || 0) - (Number(sa.regression) || 0)
          || (Number(sb.compared) || 0) - (Number(sa.compared) || 0);
      });
      state.trendRoute = ranked[0] || '';
    }
    const have = [...select.options].map((o) => o.value).join('\n');
    if (have !== ids.join('\n')) {
      clear(select).append(...ids.map((id) => el('option', { value: id, text: id })));
    }
    select.value = state.trendRoute;
    select.disabled = ids.length === 0;
  }

  function renderTrends() {
    const id = state.trendRoute;
    const points = state.history.get(id) || [];
    const regression = $('chart-regression');
    const latency = $('chart-latency');
    let empty = null;
    if (!id) empty = 'No route is shadowed yet: flip a route to shadow (or canary) and send it traffic to see its trends here.';
    else if (!state.summaries.has(id)) empty = `No comparisons for ${id} yet: it needs to be in shadow or canary mode and receive traffic.`;
    else if (points.length < 2) empty = 'Collecting samples… a point is added every 2 s.';
    if (empty) {
      for (const box of [regression, latency]) clear(box).append(el('p', { class: 'chart-empty', text: empty }));
      return;
    }
    lineChart(regression, points, [{ key: 'rate', cls: 'regression', label: 'regression rate' }], {
      format: formatRate, floor: 0.05, ceiling: 1,
    });
    lineChart(latency, points, [
      { key: 'lp50', cls: 'legacy', label: 'legacy p50' },
      { key: 'lp99', cls: 'legacy dashed', label: 'legacy p99' },
      { key: 'cp50', cls: 'candidate', label: 'candidate p50' },
      { key: 'cp99', cls: 'candidate dashed', label: 'candidate p99' },
    ], { format: formatMs, floor: 1 });
  }

  /** Rounds a chart's top value up to 1, 2 or 5 times a power of ten. */
  function niceCeil(v) {
    const p = 10 ** Math.floor(Math.log10(v));
    for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p + 1e-12) return m * p;
    return 10 * p;
  }

  /** A small line chart in inline SVG: time on x, one polyline per series, hover readout. */
  function lineChart(box, points, series, { format, floor, ceiling = Infinity }) {
    const width = Math.max(280, box.clientWidth || 520);
    const height = 190;
    const pad = { left: 56, right: 14, top: 12, bottom: 26 };
    const innerW = width - pad.left - pad.right;
    const innerH = height - pad.top - pad.bottom;
    const t1 = points[points.length - 1].t;
    const t0 = Math.min(points[0].t, t1 - 20_000);
    let max = floor;
    for (const p of points) for (const s of series) if (Number.isFinite(p[s.key])) max = Math.max(max, p[s.key]);
    max = Math.min(niceCeil(max * 1.1), ceiling);
    const x = (t) => pad.left + ((t - t0) / (t1 - t0)) * innerW;
    const y = (v) => pad.top + innerH - (v / max) * innerH;

    const chart = svg('svg', { viewBox: `0 0 ${width} ${height}`, width, height, class: 'chart-svg', role: 'img' });
    chart.append(svg('title', { text: series.map((s) => s.label).join(', ') }));
    for (let i = 0; i <= 4; i += 1) {
      const v = (max * i) / 4;
      chart.append(
        svg('line', { x1: pad.left, x2: width - pad.right, y1: y(v), y2: y(v), class: i === 0 ? 'axis' : 'grid' }),
        svg('text', { x: pad.left - 6, y: y(v) + 4, class: 'tick', 'text-anchor': 'end', text: format(v) }),
      );
    }
    for (const [t, anchor] of [[t0, 'start'], [(t0 + t1) / 2, 'middle'], [t1, 'end']]) {
      chart.append(svg('text', { x: x(t), y: height - 8, class: 'tick', 'text-anchor': anchor, text: formatClock(t) }));
    }
    for (const s of series) {
      const coords = points.filter((p) => Number.isFinite(p[s.key])).map((p) => `${x(p.t).toFixed(1)},${y(p[s.key]).toFixed(1)}`);
      if (coords.length === 0) continue;
      chart.append(svg('polyline', { points: coords.join(' '), class: `line ${s.cls}` }));
      const last = points[points.length - 1];
      if (Number.isFinite(last[s.key])) {
        chart.append(svg('circle', { cx: x(last.t), cy: y(last[s.key]), r: 3, class: `dot-end ${s.cls}` },
          svg('title', { text: `${s.label}: ${format(last[s.key])}` })));
      }
    }
    // Hover readout: a guide line and the values at the nearest sample.
    const guide = svg('line', { y1: pad.top, y2: pad.top + innerH, class: 'guide', visibility: 'hidden' });
    const readout = svg('text', { y: pad.top + 12, class: 'readout', visibility: 'hidden' });
    const hit = svg('rect', { x: pad.left, y: pad.top, width: innerW, height: innerH, class: 'hit' });
    hit.addEventListener('mousemove', (event) => {
      const rect = chart.getBoundingClientRect();
      const px = ((event.clientX - rect.left) / rect.width) * width;
      let best = points[0];
      for (const p of points) if (Math.abs(x(p.t) - px) < Math.abs(x(best.t) - px)) best = p;
      const gx = x(best.t);
      guide.setAttribute('x1', gx);
      guide.setAttribute('x2', gx);
      guide.setAttribute('visibility', 'visible');
      const parts = [formatClock(best.t), ...series.map((s) => `${s.label} ${format(best[s.key])}`)];
      readout.textContent = parts.join('  ·  ');
      const right = gx > pad.left + innerW / 2;
      readout.setAttribute('x', right ? gx - 6 : gx + 6);
      readout.setAttribute('text-anchor', right ? 'end' : 'start');
      readout.setAttribute('visibility', 'visible');
    });
    hit.addEventListener('mouseleave', () => {
      guide.setAttribute('visibility', 'hidden');
      readout.setAttribute('visibility', 'hidden');
    });
    chart.append(guide, readout, hit);
    clear(box).append(chart);
  }

  // === Diffs ===

  function renderDiffRouteChoices() {
    const select = $('diff-route');
    const ids = state.routes.map((r) => String(r.id));
    const have = [...select.options].slice(1).map((o) => o.value).join('\n');
    if (have === ids.join('\n')) return;
    const chosen = select.value;
    clear(select).append(el('option', { value: '', text: 'all routes' }), ...ids.map((id) => el('option', { value: id, text: id })));
    select.value = ids.includes(chosen) ? chosen : '';
  }

  async function loadDiffs() {
    const route = $('diff-route').value;
    const verdict = $('diff-verdict').value;
    const query = new URLSearchParams({ limit: String(DIFF_LIMIT) });
    if (route) query.set('route', route);
    if (verdict) query.set('verdict', verdict);
    const result = await getJson(`/admin/diffs?${query}`);
    const diffs = result.ok && result.body && Array.isArray(result.body.diffs) ? result.body.diffs : [];
    const shadowed = state.routes.filter((r) => r.mode === 'shadow' || r.mode === 'canary').map((r) => String(r.id));
    const key = JSON.stringify([diffs, route, verdict, shadowed, result.status]);
    if (key === state.diffsKey) return;
    state.diffsKey = key;
    const list = clear($('diffs-list'));
    for (const record of diffs) list.append(diffCard(record));
    let empty = null;
    if (!result.ok) {
      empty = `Could not read comparisons: ${errorText(result)}`;
    } else if (diffs.length === 0 && (route || verdict)) {
      empty = `No ${verdict || ''} comparisons${route ? ` for ${route}` : ''} yet. Change the filters above to see others.`;
    } else if (diffs.length === 0 && shadowed.length === 0) {
      empty = 'No comparisons yet: put a route in shadow mode (the “shadow” button in the Routes table) and send it traffic; each mirrored request shows up here with what differed.';
    } else if (diffs.length === 0) {
      empty = `No comparisons yet: ${shadowed.join(', ')} ${shadowed.length === 1 ? 'is' : 'are'} in shadow mode; send traffic to ${shadowed.length === 1 ? 'it' : 'them'} and comparisons appear here within seconds.`;
    }
    setEmpty($('diffs-empty'), empty);
  }

  function diffCard(record) {
    const verdict = String(record.verdict);
    const differences = Array.isArray(record.differences) ? record.differences : [];
    const total = Number(record.total_differences) || differences.length;
    const latency = record.latency || {};
    const card = el('article', { class: `diff verdict-card-${verdict}`, 'data-verdict': verdict, 'data-route': String(record.route) });
    const meta = [
      el('span', { class: 'meta-item', text: `route ${record.route}` }),
      el('span', { class: 'meta-item', text: formatWhen(record.at) }),
      el('span', { class: 'meta-item', text: plural(total, 'difference') }),
    ];
    if (Number.isFinite(latency.legacy_total_ms)) {
      meta.push(el('span', { class: 'meta-item', text: `legacy ${formatMs(latency.legacy_total_ms)} · candidate ${formatMs(latency.candidate_total_ms)}` }));
    }
    if (Number(record.baseline_samples) > 0) {
      meta.push(el('span', { class: 'meta-item', text: `baseline ${plural(Number(record.baseline_samples), 'sample')}` }));
    }
    if (differences.length === 0) {
      // Nothing to lay side by side: one line, the correlation id on hover.
      card.classList.add('compact');
      card.setAttribute('title', `correlation ${record.correlation ?? ''}`);
      if (record.reason) meta.unshift(el('span', { class: 'meta-item reason-inline', text: `not compared: ${record.reason}` }));
    }
    card.append(el('header', { class: 'diff-head' },
      verdictBadge(verdict),
      el('span', { class: 'method', text: String(record.method ?? '') }),
      diffPath(String(record.path ?? '')),
      el('span', { class: 'meta' }, meta)));
    if (differences.length === 0) return card;
    if (record.reason) card.append(el('p', { class: 'reason', text: `Not compared: ${record.reason}` }));
    const tbody = el('tbody', {}, differences.map(differenceRow));
    card.append(el('div', { class: 'table-wrap' }, el('table', { class: 'pointers' },
      el('thead', {}, el('tr', {},
        el('th', { text: 'Pointer' }), el('th', { text: 'Legacy' }), el('th', { text: 'Candidate' }), el('th', { text: 'Kind' }))),
      tbody)));
    if (total > differences.length) {
      card.append(el('p', { class: 'small muted', text: `…and ${total - differences.length} more differences not kept.` }));
    }
    card.append(el('p', { class: 'correlation', text: `correlation ${record.correlation ?? ''}` }));
    return card;
  }

  function diffPath(raw) {
    const shown = readablePath(raw);
    return el('span', { class: 'diff-path', text: shown, title: shown === raw ? null : `as sent: ${raw}` });
  }

  function differenceRow(d) {
    const noise = d.noise === true;
    const legacy = showValue(d.legacy);
    const candidate = showValue(d.candidate);
    const [l, c] = highlighted(legacy, candidate);
    return el('tr', { class: noise ? 'is-noise' : 'is-regression' },
      el('td', { class: 'pointer' }, el('code', { text: String(d.pointer ?? '') })),
      el('td', { class: 'value legacy-value' }, l),
      el('td', { class: 'value candidate-value' }, c),
      el('td', {}, el('span', { class: `badge verdict-${noise ? 'noise' : 'regression'}`, text: noise ? 'noise' : 'regression' })));
  }

  /** Two values with the part that differs marked (common prefix and suffix left plain). */
  function highlighted(a, b) {
    const absent = () => el('span', { class: 'absent', text: '(absent)' });
    if (a === null || b === null) {
      return [a === null ? absent() : el('code', { class: 'val' }, el('mark', { text: a })),
        b === null ? absent() : el('code', { class: 'val' }, el('mark', { text: b }))];
    }
    let start = 0;
    while (start < a.length && start < b.length && a[start] === b[start]) start += 1;
    let end = 0;
    while (end < a.length - start && end < b.length - start && a[a.length - 1 - end] === b[b.length - 1 - end]) end += 1;
    const part = (s) => el('code', { class: 'val' },
      s.slice(0, start), el('mark', { text: s.slice(start, s.length - end) }), s.slice(s.length - end));
    return [part(a), part(b)];
  }

  // === Events (optional endpoints) ===

  /** What each counter of /admin/events/stats means, and whether a non-zero value is bad. */
  const EVENT_STATS = {
    kind: ['bus', false],
    published: ['published', false],
    spooled: ['spooled to disk', false],
    replayed: ['replayed from spool', false],
    spool_pending: ['waiting in spool', false],
    dropped_channel_full: ['dropped: channel full', true],
    dropped_spool_full: ['dropped: spool full', true],
    failed: ['failed', true],
    circuit: ['circuit to the bus', false],
  };

  async function loadEvents() {
    if (state.events === 'absent') return;
    const [recent, stats] = await Promise.all([getJson('/admin/events/recent?limit=15'), getJson('/admin/events/stats')]);
    if (recent.status === 404 && stats.status === 404) {
      state.events = 'absent';
      $('events-panel').hidden = true;
      return;
    }
    state.events = 'present';
    $('events-panel').hidden = false;
    const off = stats.ok && stats.body && stats.body.enabled === false;
    $('events-table').hidden = off;
    renderEventStats(stats.ok && !off ? stats.body : null);
    // The API lists oldest first; people read the newest first.
    const list = recent.ok ? eventList(recent.body).slice().reverse() : [];
    const body = clear($('events-body'));
    for (const e of list) {
      body.append(el('tr', {},
        el('td', { class: 'nowrap', text: formatWhen(e.time ?? e.at) }),
        el('td', {}, el('code', { text: String(e.type ?? e.kind ?? '') })),
        el('td', { text: String(e.subject ?? e.route ?? (e.data && e.data.route) ?? '—') }),
        el('td', { class: 'correlation-cell', text: String(e.correlationid ?? e.correlation ?? '') })));
    }
    let empty = null;
    if (off) {
      empty = ['Events are off: add a ', el('code', { text: '[bus]' }), ' section to routes.toml (', el('code', { text: 'kind = "log"' }),
        ' keeps them in local files) to publish every exchange, comparison and route change for other services.'];
    } else if (!recent.ok) {
      empty = `Could not read events: ${errorText(recent)}`;
    } else if (list.length === 0) {
      empty = 'No events yet: send traffic through the proxy and each exchange shows up here.';
    }
    setEmpty($('events-empty'), empty);
  }

  function eventList(body) {
    if (Array.isArray(body)) return body;
    if (body && Array.isArray(body.events)) return body.events;
    if (body && Array.isArray(body.recent)) return body.recent;
    return [];
  }

  /** The stats answer as tiles: known counters named in words, others by their key. */
  function renderEventStats(body) {
    const box = clear($('events-stats'));
    if (!body || typeof body !== 'object') return;
    for (const [key, value] of Object.entries(body)) {
      if (key === 'enabled' || (value !== null && typeof value === 'object')) continue;
      const [name, badWhenSet] = EVENT_STATS[key] || [key, false];
      const bad = (badWhenSet && Number(value) > 0) || (key === 'circuit' && value !== 'closed');
      box.append(el('div', { class: bad ? 'stat bad' : 'stat' },
        el('div', { class: 'stat-value', text: typeof value === 'number' ? formatNumber(value) : String(value) }),
        el('div', { class: 'stat-name', text: name })));
    }
  }

  // === Flipping ===

  let pending = null; // {kind: 'route', route, mode} | {kind: 'kill'}

  function openFlip(route, mode) {
    pending = { kind: 'route', route, mode };
    $('flip-title').textContent = `Flip route ${route.id}`;
    clear($('flip-summary')).append(
      el('span', { class: 'route-id', text: String(route.id) }), ' ',
      modeBadge(route.mode, route.canary_percent), el('span', { class: 'arrow', text: ' → ' }), modeBadge(mode));
    $('percent-field').hidden = mode !== 'canary';
    $('flip-percent').value = String(route.canary_percent ?? 10);
    $('force-label-text').textContent = 'Force: skip the lifecycle checks (only when you know why they refuse)';
    showDialog();
  }

  function openKill() {
    pending = { kind: 'kill' };
    $('flip-title').textContent = 'Kill switch';
    clear($('flip-summary')).append('Every route goes back to ', modeBadge('legacy'),
      ': the monolith answers everything again. Retired routes stay on the new service unless you force.');
    $('percent-field').hidden = true;
    $('force-label-text').textContent = 'Force: also send retired routes back to legacy';
    showDialog();
  }

  function showDialog() {
    $('flip-reason').value = '';
    $('flip-token').value = '';
    $('flip-force').checked = false;
    $('force-field').hidden = pending.kind !== 'kill';
    $('token-field').hidden = storedToken() !== '';
    showDialogError(null);
    $('flip-apply').disabled = false;
    $('flip-dialog').showModal();
    ($('token-field').hidden ? (pending.mode === 'canary' ? $('flip-percent') : $('flip-reason')) : $('flip-token')).focus();
  }

  function showDialogError(text) {
    const box = $('flip-error');
    box.textContent = text || '';
    box.hidden = !text;
  }

  async function applyFlip(event) {
    event.preventDefault();
    if (!pending) return;
    const token = storedToken() || $('flip-token').value.trim();
    if (!token) {
      $('token-field').hidden = false;
      showDialogError('Enter the admin token (the contents of the file named by admin.token_file).');
      $('flip-token').focus();
      return;
    }
    const reason = $('flip-reason').value.trim();
    const force = $('flip-force').checked;
    let url;
    let payload;
    if (pending.kind === 'kill') {
      url = '/admin/kill';
      payload = { force, reason: reason || 'kill switch (dashboard)' };
    } else {
      url = `/admin/routes/${encodeURIComponent(pending.route.id)}`;
      payload = { mode: pending.mode, force, reason: reason || 'flipped from the dashboard' };
      if (pending.mode === 'canary') {
        const percent = Number($('flip-percent').value);
        if (!Number.isFinite(percent) || percent < 0 || percent > 100) {
          showDialogError('The canary share is a percentage from 0 to 100.');
          return;
        }
        payload.percent = percent;
      }
    }
    $('flip-apply').disabled = true;
    let result;
    try {
      result = await send(pending.kind === 'kill' ? 'POST' : 'PUT', url, payload, token);
    } catch (e) {
      showDialogError(`The admin API did not answer: ${e.message || e}`);
      $('flip-apply').disabled = false;
      return;
    }
    $('flip-apply').disabled = false;
    if (result.status === 401) {
      storeToken('');
      $('token-field').hidden = false;
      $('flip-token').value = '';
      showDialogError(`Refused (401): ${errorText(result)}. Enter the admin token again.`);
      $('flip-token').focus();
      return;
    }
    storeToken(token); // any answer but 401 means the token was accepted
    if (!result.ok) {
      showDialogError(`Refused (${result.status}): ${errorText(result)}`);
      if (result.status === 409) $('force-field').hidden = false;
      return;
    }
    $('flip-dialog').close();
    const changes = result.body && Array.isArray(result.body.changes) ? result.body.changes : [];
    const done = changes.length
      ? changes.map((c) => `${c.route}: ${c.from} → ${c.to}`).join(', ')
      : 'nothing to change';
    notify(`Applied: ${done}${result.body && result.body.generation ? ` (config generation ${result.body.generation})` : ''}.`, 'ok');
    pending = null;
    poll();
  }

  // === Notices ===

  let noticeTimer = null;

  function notify(text, kind) {
    const box = $('notice');
    box.className = `notice ${kind}`;
    $('notice-text').textContent = text;
    box.hidden = false;
    clearTimeout(noticeTimer);
    if (kind === 'ok') noticeTimer = setTimeout(() => { box.hidden = true; }, 8000);
  }

  // === Start ===

  function start() {
    $('flip-form').addEventListener('submit', applyFlip);
    $('flip-cancel').addEventListener('click', () => { pending = null; $('flip-dialog').close(); });
    $('kill-switch').addEventListener('click', openKill);
    $('forget-token').addEventListener('click', () => { storeToken(''); notify('The admin token was forgotten for this tab.', 'ok'); });
    $('notice-close').addEventListener('click', () => { $('notice').hidden = true; });
    $('trend-route').addEventListener('change', (e) => { state.trendRoute = e.target.value; renderTrends(); });
    for (const id of ['diff-route', 'diff-verdict']) {
      $(id).addEventListener('change', () => { loadDiffs().catch(() => {}); });
    }
    let resizeTimer = null;
    window.addEventListener('resize', () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(renderTrends, 150); });
    renderTokenState();
    poll();
  }

  start();
})();
