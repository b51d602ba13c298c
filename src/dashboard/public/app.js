// Phasewise dashboard: plain ES module, no build step. Every view reads server-side aggregates
// (/phasewise/fleet, /phasewise/dashboard/..., paged lists) and reloads when the live stream says
// something changed. Text goes in through textContent only.
const main = document.getElementById('main');
const signinForm = document.getElementById('signin');
let token = sessionStorage.getItem('phasewise-token');
let refreshTimer = null;
let streamAbort = null;
let rendering = false;
let again = false;
/** The fleet page's machine search: what is typed, and a count that tells the last search's answer from earlier ones. */
let machineQuery = '';
let machineSearches = 0;

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, method = 'GET', body) {
  const headers = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let data = text;
  try { data = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  if (!res.ok) {
    const e = (data && (data.error || data)) || {};
    throw new ApiError(res.status, `${res.status} ${e.code || ''}: ${e.message || text}`.trim());
  }
  return data;
}

/** h('a', {href: '#/x', class: 'y'}, 'text', child): an element; strings become text nodes. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

const SVG = 'http://www.w3.org/2000/svg';
function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

function table(headers, rows, attrs = {}) {
  return h('table', attrs, h('thead', {}, h('tr', {}, headers.map((x) => h('th', {}, x)))), h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c))))));
}

/**
 * A paging link carried in the address (#/rollouts?page=…): only a path on this server. A crafted link with
 * another origin must not receive the token (the CSP's connect-src stops it too; this does not rely on it).
 */
function ownPath(link) {
  const u = new URL(link, location.origin);
  if (u.origin !== location.origin) throw new Error(`Not a page of this server: ${link.slice(0, 200)}`);
  return u.pathname + u.search;
}

const fmt = (iso) => (iso ? iso.replace('T', ' ').replace(/\.\d+Z$|Z$/, '') : '');
const status = (st) => h('span', { class: `status-${st}`, 'data-status': st }, st);
const artifactName = (a) => (a.kind === 'extension' ? `${a.publisher}.${a.type}` : a.kind === 'guestPatch' ? `guestPatch:${a.os}` : `${a.publisher}:${a.offer}:${a.sku}`);
const link = (href, text) => h('a', { href }, text);
const rolloutLink = (id) => link(`#/rollouts/${encodeURIComponent(id)}`, id);
const machineLink = (id) => link(`#/machines/${encodeURIComponent(id)}`, id);

/** Asks before a control; resolves { reason, rollback } or null when cancelled. */
function confirmAction(text, { rollback = false } = {}) {
  const dlg = document.getElementById('confirm');
  document.getElementById('confirm-text').textContent = text;
  document.getElementById('confirm-reason').value = '';
  document.getElementById('confirm-rollback-label').hidden = !rollback;
  document.getElementById('confirm-rollback').checked = false;
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => {
      if (dlg.returnValue !== 'ok') return resolve(null);
      resolve({ reason: document.getElementById('confirm-reason').value.trim() || undefined, rollback: document.getElementById('confirm-rollback').checked });
    }, { once: true });
    dlg.showModal();
  });
}

async function control(text, path, { rollback = false, body = (c) => (c.reason ? { reason: c.reason } : {}), done = () => `Done: ${text}` } = {}) {
  const c = await confirmAction(text, { rollback });
  if (!c) return;
  try {
    flash(done(await api(path, 'POST', body(c))));
  } catch (err) {
    flash(err.message, true);
  }
  await render();
}

let flashText = null;
function flash(text, bad = false) { flashText = { text, bad }; }

// ---- views ----------------------------------------------------------------------------------------

async function fleetView() {
  const f = await api('/phasewise/fleet');
  // The server redoes the fleet summary every two seconds at most: a stale one is asked for again.
  if (!f.upToDate) scheduleRefresh();
  const artifacts = f.artifacts.map((a) => {
    const max = Math.max(1, ...a.versions.map((v) => v.machines));
    const rows = a.versions.map((v) => [
      v.version,
      String(v.machines),
      bar(v.machines / max),
      // Patch baselines are never withdrawn (patches are not uninstalled, docs/patching.md).
      v.withdrawn ? h('span', { class: 'badge bad' }, 'withdrawn') : v.version === '(not installed)' || a.kind === 'guestPatch' ? '' : h('button', {
        class: 'danger', 'data-withdraw': v.version,
        onclick: () => control(`Withdraw ${a.publisher}.${a.type} ${v.version}? No machine will be offered it again.`,
          `${a.withdrawBase}/versions/${encodeURIComponent(v.version)}/withdraw`,
          { rollback: true, body: (c) => ({ rollback: c.rollback, ...(c.reason ? { reason: c.reason } : {}) }) }),
      }, 'Withdraw…'),
    ]);
    return h('div', { class: 'card', 'data-artifact': a.artifactKey },
      h('h2', {}, `${a.publisher}.${a.type}`),
      h('p', {}, `${a.machines} machines · automatic upgrade: `, ...Object.entries(a.autoUpgrade).map(([k, n]) => h('span', { class: 'badge' }, `${k} ${n}`))),
      table(['Version', 'Machines', '', ''], rows, { class: 'versions' }));
  });
  const held = f.releasesHeld.length === 0 ? h('p', { class: 'muted' }, 'No release is held.')
    : table(['Release', 'Kind', 'Since', 'Reason'], f.releasesHeld.map((r) => [`${artifactName(r.artifact)} ${r.version}`, r.kind, fmt(r.since), r.reason]), { id: 'held' });
  // The query outlives the view: a live update redraws the page every second while a rollout runs, and
  // took the operator's half-typed search and its results with it.
  const search = h('input', { id: 'machine-search', placeholder: 'machine id or name prefix', maxlength: 200, value: machineQuery });
  const found = h('div', { id: 'machine-results' });
  const find = async () => {
    const q = search.value.trim();
    machineQuery = search.value;
    const mine = ++machineSearches;
    if (!q) return found.replaceChildren();
    try {
      const r = await api(`/phasewise/machines?prefix=${encodeURIComponent(q)}&top=20`);
      // Answers come back in any order: the last keystroke's wins (an earlier, slower one overwrote it).
      if (mine !== machineSearches) return;
      found.replaceChildren(table(['Machine', 'Kind', 'Region', 'Set'], r.value.map((m) => [machineLink(m.id), m.kind, m.region, m.setId || ''])));
    } catch (err) {
      if (mine !== machineSearches) return;
      if (err instanceof ApiError && err.status === 401) return signOut('The token was refused.');
      found.replaceChildren(h('p', { class: 'error', id: 'machine-search-error' }, err.message));
    }
  };
  search.addEventListener('input', () => void find());
  if (machineQuery.trim()) void find();
  return [
    h('div', { class: 'card' },
      h('h1', {}, 'Fleet'),
      h('p', {}, `${f.machines} machines, ${f.unhealthy} unhealthy.`),
      // The stop holds the next rollout to start even while it holds nothing now: say so.
      f.fleetStop ? h('p', { id: 'fleet-stop', class: 'badge bad' }, `Fleet-wide stop since ${fmt(f.fleetStop.since)} by ${f.fleetStop.caller}: ${f.fleetStop.reason}`) : null,
      h('div', { class: 'controls' },
        h('button', { id: 'fleet-pause', class: 'danger', onclick: () => control('Pause every running rollout (fleet-wide stop)?', '/phasewise/fleet/pause') }, 'Pause all rollouts…'),
        h('button', { id: 'fleet-resume', onclick: () => control('End the fleet-wide stop?', '/phasewise/fleet/resume', {
          done: (a) => (a.ended ? `The fleet-wide stop by ${a.ended.caller} has ended.` : 'No fleet-wide stop was in effect: nothing was ended.'),
        }) }, 'Resume all…'))),
    h('div', { class: 'row' }, artifacts),
    h('div', { class: 'card' }, h('h2', {}, 'Held releases'), held),
    h('div', { class: 'card' }, h('h2', {}, 'Find a machine'), search, found),
  ];
}

function bar(share) {
  return s('svg', { width: 160, height: 12, role: 'img' },
    s('rect', { x: 0, y: 2, width: 160, height: 8, fill: '#eaeef2' }),
    s('rect', { x: 0, y: 2, width: Math.max(1, share * 160), height: 8, fill: '#0969da' }));
}

async function rolloutsView(params) {
  const st = params.get('status') || '';
  const page = params.get('page');
  const path = page ? ownPath(page) : `/phasewise/rollouts${st ? `?status=${encodeURIComponent(st)}` : ''}`;
  const r = await api(path);
  const select = h('select', { id: 'status-filter' }, ['', 'running', 'stopped', 'completed', 'cancelled', 'superseded'].map((x) => h('option', { value: x, selected: x === st }, x || 'any status')));
  select.addEventListener('change', () => { location.hash = `#/rollouts${select.value ? `?status=${select.value}` : ''}`; });
  const rows = r.value.map((x) => [rolloutLink(x.id), artifactName(x.artifact), x.toVersion, x.profile, status(x.status),
    `${x.counts.upgraded}/${x.counts.eligible}`, fmt(x.createdAt), fmt(x.estimate.expectedEnd)]);
  const next = r.nextLink ? new URL(r.nextLink).pathname + new URL(r.nextLink).search : null;
  return [h('div', { class: 'card' },
    h('h1', {}, 'Rollouts'), h('p', {}, 'Status ', select),
    table(['Rollout', 'Artifact', 'Version', 'Profile', 'Status', 'Upgraded', 'Created', 'Expected end'], rows, { id: 'rollouts' }),
    h('div', { class: 'pager' },
      page ? h('button', { onclick: () => { location.hash = `#/rollouts${st ? `?status=${st}` : ''}`; } }, 'First page') : null,
      next ? h('button', { id: 'next-page', onclick: () => { location.hash = `#/rollouts?${new URLSearchParams({ ...(st ? { status: st } : {}), page: next })}`; } }, 'Next page') : null))];
}

function timeline(r, now) {
  const start = Date.parse(r.createdAt);
  const phaseStart = (p, i) => (p.startedAt ? Date.parse(p.startedAt) : Date.parse(p.opensAt || r.estimate.phaseStarts[i] || r.createdAt));
  const ends = r.phases.map((p, i) => (p.endedAt ? Date.parse(p.endedAt) : p.status === 'running' ? Date.parse(now) : Date.parse(r.estimate.phaseStarts[i + 1] || r.estimate.expectedEnd)));
  const end = Math.max(Date.parse(r.estimate.expectedEnd), Date.parse(now), ...ends) || start + 1;
  const W = 900; const L = 150; const row = 22;
  const x = (t) => L + ((t - start) / Math.max(1, end - start)) * (W - L - 10);
  const svg = s('svg', { id: 'timeline', width: W, height: r.phases.length * row + 24, role: 'img' });
  r.phases.forEach((p, i) => {
    const y = i * row + 4;
    const a = phaseStart(p, i);
    const color = { completed: '#1a7f37', running: '#0969da', failed: '#cf222e' }[p.status] || '#afb8c1';
    svg.append(s('text', { x: 0, y: y + 13 }, `phase ${p.index}: ${p.regions.join(', ')}`));
    svg.append(s('rect', { x: x(a), y, width: Math.max(3, x(ends[i]) - x(a)), height: 16, fill: color, 'data-phase': p.index, 'data-status': p.status, opacity: p.startedAt ? 1 : 0.45 }));
  });
  const nx = x(Date.parse(now));
  svg.append(s('line', { x1: nx, x2: nx, y1: 0, y2: r.phases.length * row + 6, stroke: '#24292f', 'stroke-dasharray': '3 3' }));
  svg.append(s('text', { x: L, y: r.phases.length * row + 20 }, fmt(r.createdAt)), s('text', { x: W - 130, y: r.phases.length * row + 20 }, fmt(new Date(end).toISOString())));
  return svg;
}

function chart(c) {
  const W = 900; const H = 160; const L = 40;
  const buckets = new Map();
  for (const p of c.points) {
    const b = buckets.get(p.bucket) || { ok: 0, bad: 0 };
    if (p.type === 'instance.upgrade.succeeded') b.ok += p.count; else if (p.type !== 'instance.skipped') b.bad += p.count;
    buckets.set(p.bucket, b);
  }
  const last = Math.max(1, ...buckets.keys());
  let total = 0;
  const cum = [];
  for (let i = 0; i <= last; i++) { total += buckets.get(i)?.ok || 0; cum.push(total); }
  const maxBad = Math.max(1, ...[...buckets.values()].map((b) => b.bad));
  const x = (i) => L + (i / last) * (W - L - 10);
  const y = (v) => H - 20 - (v / Math.max(1, total)) * (H - 30);
  const svg = s('svg', { id: 'chart', width: W, height: H, role: 'img' });
  for (const [i, b] of buckets) {
    const bh = (b.bad / maxBad) * 40;
    if (b.bad > 0) svg.append(s('rect', { x: x(i) - 2, y: H - 20 - bh, width: 4, height: bh, fill: '#cf222e', 'data-problems': b.bad }));
  }
  svg.append(s('polyline', { points: cum.map((v, i) => `${x(i)},${y(v)}`).join(' '), fill: 'none', stroke: '#1a7f37', 'stroke-width': 2 }));
  svg.append(s('text', { x: 0, y: 12 }, `${total} upgraded`), s('text', { x: 0, y: H - 4 }, fmt(c.start)), s('text', { x: W - 130, y: H - 4 }, fmt(c.end)));
  svg.append(s('text', { x: W - 260, y: 12 }, 'green: upgraded so far · red: problems'));
  return svg;
}

/** A batch's machines: links for a few, a count for many. */
function machinesCell(ids) {
  return ids.length > 6 ? `${ids.length} machines` : h('span', {}, ids.flatMap((m, i) => [i ? ', ' : '', machineLink(m)]));
}

function scopeText(sc) { return [sc.region, sc.zone ? `zone ${sc.zone}` : null, sc.setId, sc.updateDomain != null ? `UD ${sc.updateDomain}` : null].filter(Boolean).join(' / '); }

async function rolloutView(id, params) {
  const skip = Number(params.get('unitSkip') || 0);
  const d = await api(`/phasewise/dashboard/rollouts/${encodeURIComponent(id)}?unitSkip=${skip}&unitTop=50`);
  const r = d.rollout;
  const base = `/phasewise/rollouts/${encodeURIComponent(r.id)}`;
  const live = r.status === 'running' || r.status === 'stopped';
  const head = h('div', { class: 'card' },
    h('h1', {}, `Rollout ${r.id}: ${artifactName(r.artifact)} ${r.toVersion}`),
    h('p', {}, 'Status ', h('strong', { id: 'rollout-status' }, status(r.status)), d.releaseHold
      ? h('span', { id: 'rollout-held', class: 'badge warn' }, `release ${d.releaseHold.kind === 'withdrawn' ? 'withdrawn' : 'held'}: ${d.releaseHold.reason}`)
      : null),
    r.reason ? h('p', { class: 'muted' }, r.reason) : null,
    r.boundAtRisk && r.boundAtRisk.atRisk ? h('p', { id: 'bound-at-risk', class: 'badge warn' }, `bound at risk (R40): ${r.boundAtRisk.reason}`) : null,
    h('p', {}, `${r.profile} · by ${r.caller} · created ${fmt(r.createdAt)} · expected end ${fmt(r.estimate.expectedEnd)} · `,
      `${r.counts.upgraded} of ${r.counts.eligible} upgraded, ${r.counts.unhealthy} unhealthy, ${r.counts.open} open`),
    live ? h('div', { class: 'controls' },
      h('button', { id: 'pause', onclick: () => control(`Pause ${r.id}? Its release is held: no new batch of ${r.toVersion} starts anywhere.`, `${base}/pause`) }, 'Pause…'),
      h('button', { id: 'resume', onclick: () => control(`Resume ${r.id}?`, `${base}/resume`) }, 'Resume…'),
      h('button', { id: 'cancel', class: 'danger', onclick: () => control(`Cancel ${r.id}? Batches in flight finish.`, `${base}/cancel`) }, 'Cancel…')) : null);
  const phases = h('div', { class: 'card' }, h('h2', {}, 'Phases'), timeline(r, d.now),
    table(['Phase', 'Regions', 'Status', 'Started', 'Ended', 'Upgraded', 'Unhealthy'],
      r.phases.map((p) => [String(p.index), p.regions.join(', '), status(p.status), fmt(p.startedAt) || (p.opensAt ? `opens ${fmt(p.opensAt)}` : ''),
        fmt(p.endedAt), String(p.upgraded), String(p.unhealthy)]), { id: 'phases' }));
  const regions = h('div', { class: 'card' }, h('h2', {}, 'Regions'), table(['Region', 'Phase', 'Units', 'Machines', 'Batches', 'Units by state'],
    d.regions.map((x) => [x.region, String(x.phase), String(x.units), String(x.machines), `${x.batchesRun}/${x.batchesPlanned}`,
      ['done', 'running', 'ready', 'waiting', 'blocked', 'paused', 'held', 'stopped', 'window'].filter((k) => x[k]).map((k) => `${k} ${x[k]}`).join(', ')])));
  const units = h('div', { class: 'card' }, h('h2', {}, `Zones and sets (${d.units.total})`),
    table(['Unit', 'Region', 'Zone', 'Set', 'Machines', 'Batches', 'Status', 'Upgraded / unhealthy', 'Until'],
      d.units.value.map((u) => [u.id, u.region, u.zone || '', u.setId || '', String(u.machines), `${u.batchesRun}/${u.batchesPlanned}`, status(u.status),
        `${u.upgraded} / ${u.unhealthyUpgraded}`, u.stoppedUntil ? `stopped until ${fmt(u.stoppedUntil)}` : u.windowOpensAt ? `window ${fmt(u.windowOpensAt)}` : '']), { id: 'units' }),
    h('div', { class: 'pager' },
      skip > 0 ? h('button', { onclick: () => { location.hash = `#/rollouts/${encodeURIComponent(r.id)}?unitSkip=${Math.max(0, skip - 50)}`; } }, 'Previous') : null,
      skip + 50 < d.units.total ? h('button', { onclick: () => { location.hash = `#/rollouts/${encodeURIComponent(r.id)}?unitSkip=${skip + 50}`; } }, 'Next') : null));
  const gates = h('div', { class: 'card' }, h('h2', {}, 'Gate decisions'), d.gates.length === 0 ? h('p', { class: 'muted' }, 'No gate has held or stopped anything yet.')
    : table(['Time', 'Decision', 'Gate', 'Observed', 'Limit', 'Where', 'Why'],
      d.gates.map((g) => [fmt(g.time), g.type.replace('gate.', ''), g.gate, String(g.observed), String(g.limit), scopeText(g.scope), `${g.reason} (${g.rule})`]), { id: 'gates' }));
  const windows = h('div', { class: 'card' }, h('h2', {}, 'Waiting for a window'),
    r.waitingForWindows.length === 0 ? h('p', { class: 'muted' }, 'No unit waits for a maintenance window.')
      : table(['Unit', 'Opens at'], r.waitingForWindows.slice(0, 100).map((w) => [w.unit, fmt(w.opensAt) || 'none in sight'])),
    d.windows.length ? h('p', { class: 'muted' }, `${d.windows.length} recent window waits; last: ${d.windows[0].reason}`) : null);
  const batches = h('div', { class: 'card' }, h('h2', {}, 'Last batches'), table(['Time', 'Event', 'Batch', 'Where', 'Machines'],
    d.batches.map((b) => [fmt(b.time), b.type.replace('batch.', ''), b.batchId, scopeText(b.scope), machinesCell(b.instances)]), { id: 'batches' }));
  const progress = h('div', { class: 'card' }, h('h2', {}, 'Progress and problems over time'), chart(d.chart));
  return [head, phases, progress, h('div', { class: 'row' }, gates, windows), regions, units, batches];
}

async function machineView(id) {
  const m = await api(`/phasewise/machines/${encodeURIComponent(id)}`);
  return [
    h('div', { class: 'card' }, h('h1', {}, `Machine ${m.id}`),
      h('p', {}, `${m.kind} · ${m.os} · ${m.placement.region}${m.placement.zone ? ` zone ${m.placement.zone}` : ''} · `,
        `${m.placement.setId || 'no set'} · ${m.placement.subscription}/${m.resourceGroup} · `,
        h('span', { class: m.healthy ? 'status-completed' : 'status-failed' }, m.healthy ? 'healthy' : 'unhealthy')),
      h('p', { class: 'muted' }, m.armId),
      table(['Extension', 'Installed', 'Desired', 'Last known good', 'Status', 'Automatic upgrade'],
        m.extensions.map((e) => [`${e.publisher}.${e.type}`, e.installedVersion, e.desiredVersion, e.lastKnownGoodVersion, e.status, e.autoUpgrade]), { id: 'extensions' })),
    h('div', { class: 'card' }, h('h2', {}, 'History'), table(['Time', 'Event', 'Rollout', 'From', 'To', 'Attempt', 'Reason'],
      m.history.slice().reverse().map((e) => [fmt(e.time), e.type, e.rolloutId ? rolloutLink(e.rolloutId) : '', e.fromVersion || '', e.toVersion || '',
        e.attempt == null ? '' : String(e.attempt), e.reason || '']), { id: 'history' })),
  ];
}

async function activityView(params) {
  const f = await api('/phasewise/fleet');
  const sub = params.get('sub') || f.subscriptions[0] || '';
  const fields = [['', 'no filter'], ['caller', 'caller'], ['correlationId', 'correlation id (rollout)'], ['resourceGroupName', 'resource group'], ['operationName', 'operation']];
  // Only the fields offered: the address is anyone's to craft, and the field goes into the filter as it is.
  const field = fields.some(([v]) => v === params.get('field')) ? params.get('field') : '';
  const value = params.get('value') || '';
  const page = params.get('page');
  let filter = "eventTimestamp ge '2000-01-01T00:00:00Z' and eventTimestamp le '2999-12-31T00:00:00Z'";
  if (field && value) filter += ` and ${field} eq '${value.replace(/'/g, "''")}'`;
  const log = `/subscriptions/${encodeURIComponent(sub)}/providers/microsoft.insights/eventtypes/management/values`;
  const path = page ? ownPath(page) : `${log}?api-version=2015-04-01&$filter=${encodeURIComponent(filter)}`;
  const r = sub ? await api(path) : { value: [] };
  const subSel = h('select', { id: 'activity-sub' }, f.subscriptions.map((x) => h('option', { value: x, selected: x === sub }, x)));
  const fieldSel = h('select', { id: 'activity-field' }, fields
    .map(([v, t]) => h('option', { value: v, selected: v === field }, t)));
  const valueIn = h('input', { id: 'activity-value', value, maxlength: 200 });
  const go = () => { location.hash = `#/activity?${new URLSearchParams({ sub: subSel.value, field: fieldSel.value, value: valueIn.value })}`; };
  const apply = h('button', { id: 'activity-apply', onclick: go }, 'Apply');
  const next = r.nextLink ? new URL(r.nextLink).pathname + new URL(r.nextLink).search : null;
  return [h('div', { class: 'card' }, h('h1', {}, 'Activity log'),
    h('p', {}, 'Subscription ', subSel, ' filter ', fieldSel, ' ', valueIn, ' ', apply),
    table(['Time', 'Operation', 'Status', 'Caller', 'Resource', 'Details'], r.value.map((e) => [fmt(e.eventTimestamp), e.operationName.localizedValue || e.operationName.value,
      e.status.value, e.caller, e.resourceId, e.description || e.properties?.reason || '']), { id: 'activity' }),
    next ? h('div', { class: 'pager' }, h('button', { onclick: () => { location.hash = `#/activity?${new URLSearchParams({ sub, field, value, page: next })}`; } }, 'Older')) : null)];
}

async function maintenanceView() {
  const m = await api('/phasewise/dashboard/maintenance');
  return [h('div', { class: 'card' }, h('h1', {}, 'Maintenance configurations'), h('p', { class: 'muted' }, `Engine time ${fmt(m.now)}.`),
    m.value.length === 0 ? h('p', { class: 'muted' }, 'No maintenance configuration.')
      : table(['Configuration', 'Scope', 'Window', 'Critical bypass', 'Targets', 'Open now', 'Next window'], m.value.map((c) => [c.id.split('/').pop(), c.scope,
        `${c.window.recurEvery || ''} ${c.window.duration || ''} ${c.window.timeZone || ''}`.trim(), c.emergencyBypass ? 'yes' : 'no', String(c.assignedTargets),
        c.openNow ? `until ${fmt(c.openNow.end)}` : 'closed', fmt(c.nextWindowStart) || 'none']), { id: 'maintenance' }))];
}

// ---- routing, rendering, live updates ------------------------------------------------------------

function route() {
  const [path, query] = (location.hash.slice(1) || '/fleet').split('?');
  const params = new URLSearchParams(query || '');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.getAttribute('href') === `#/${parts[0]}`);
  if (parts[0] === 'rollouts' && parts[1]) return () => rolloutView(parts[1], params);
  if (parts[0] === 'rollouts') return () => rolloutsView(params);
  if (parts[0] === 'machines' && parts[1]) return () => machineView(parts.slice(1).join('/'));
  if (parts[0] === 'activity') return () => activityView(params);
  if (parts[0] === 'maintenance') return () => maintenanceView();
  return () => fleetView();
}

async function render() {
  if (!token) return;
  if (rendering) { again = true; return; }
  rendering = true;
  try {
    const nodes = await route()();
    const notice = flashText ? h('p', { id: 'flash', class: flashText.bad ? 'error card' : 'card' }, flashText.text) : null;
    flashText = null;
    // The field being typed in keeps its text, the focus and the caret through a redraw (a live update while a
    // rollout runs redraws every second): they were lost mid-word (the machine search, the activity filter).
    const typing = document.activeElement instanceof HTMLInputElement && main.contains(document.activeElement) ? document.activeElement : null;
    main.replaceChildren(...(notice ? [notice] : []), ...nodes);
    const refocus = typing?.id ? document.getElementById(typing.id) : null;
    if (refocus instanceof HTMLInputElement && refocus !== typing) {
      refocus.value = typing.value;
      refocus.focus();
      refocus.setSelectionRange(typing.selectionStart, typing.selectionEnd);
    }
    main.dataset.loaded = String(Date.now());
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return signOut('The token was refused.');
    main.replaceChildren(h('div', { class: 'card error', id: 'view-error' }, err.message));
  } finally {
    rendering = false;
    if (again) { again = false; void render(); }
  }
}

/** Reloads the view after a change, at most once a second, never while a confirmation is open. */
function scheduleRefresh() {
  if (refreshTimer) return;
  refreshTimer = setTimeout(() => {
    refreshTimer = null;
    if (document.getElementById('confirm').open) return scheduleRefresh();
    void render();
  }, 1000);
}

/** Characters of one unfinished stream message the page keeps before it drops the stream and reconnects. */
const MAX_STREAM_MESSAGE = 64 * 1024;

async function stream() {
  const badge = document.getElementById('live');
  let connectedBefore = false;
  while (token) {
    streamAbort = new AbortController();
    try {
      const res = await fetch('/phasewise/stream', { headers: { authorization: `Bearer ${token}` }, signal: streamAbort.signal });
      // A refused token is refused everywhere: signed out like any other 401 (it retried every 3 s, forever).
      if (res.status === 401) return signOut('The token was refused.');
      if (!res.ok) throw new Error(String(res.status));
      badge.hidden = false;
      badge.classList.remove('off');
      // Back after a loss: what changed meanwhile was never announced here, so the view is read again.
      if (connectedBefore) scheduleRefresh();
      connectedBefore = true;
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const msg = buf.slice(0, i);
          buf = buf.slice(i + 2);
          if (/^event: changed$/m.test(msg)) scheduleRefresh();
        }
        // The server's messages are a few KiB: a longer one never ends (a broken proxy, a hostile server).
        if (buf.length > MAX_STREAM_MESSAGE) { streamAbort.abort(); break; }
      }
    } catch { /* reconnect below */ }
    if (!token) return;
    badge.classList.add('off');
    await new Promise((r) => setTimeout(r, 3000));
  }
}

function signOut(message) {
  token = null;
  machineQuery = '';
  sessionStorage.removeItem('phasewise-token');
  streamAbort?.abort();
  document.getElementById('nav').hidden = true;
  document.getElementById('signout').hidden = true;
  document.getElementById('live').hidden = true;
  main.replaceChildren(signinForm);
  const err = document.getElementById('signin-error');
  err.hidden = !message;
  err.textContent = message || '';
}

function signedIn() {
  document.getElementById('nav').hidden = false;
  document.getElementById('signout').hidden = false;
  void render();
  void stream();
}

signinForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  token = document.getElementById('token').value.trim();
  // What the server takes (docs/api.md, tokens). A pasted zero-width space or typographic quote made the
  // browser refuse the header with its own words ("String contains non ISO-8859-1 code point").
  if (!/^[\x21-\x7e]{16,512}$/.test(token)) {
    return signOut('A token is 16 to 512 printable ASCII characters without spaces: check what was pasted.');
  }
  try {
    await api('/phasewise/fleet');
  } catch (err) {
    return signOut(err instanceof ApiError && err.status === 401 ? 'The server does not know this token.' : err.message);
  }
  sessionStorage.setItem('phasewise-token', token);
  signedIn();
});
document.getElementById('signout').addEventListener('click', () => signOut());
window.addEventListener('hashchange', () => void render());
if (token) signedIn();
