/**
 * Inline SVG for the HTML report: panels of cumulative step lines stacked over one shared time axis,
 * with shaded bands for the phases. The report must be a single file that opens offline, so there is
 * no charting library and no script; hover text uses SVG <title>, which every browser shows natively.
 * All times are UTC so the chart reads the same wherever it is opened.
 */

/** A cumulative line rises to `value` over [from, to] (one summary bucket) and holds it after. */
export interface Step {
  from: number;
  to: number;
  value: number;
}

export interface ChartLine {
  key: string;
  label: string;
  color: string;
  steps: Step[];
  /** Shade the area under the line (used for the main quantity of a panel). */
  fill?: boolean;
  /** Dashed, so a line that tracks another closely does not hide it. */
  dashed?: boolean;
}

export interface ChartPanel {
  title: string;
  height: number;
  lines: ChartLine[];
}

export interface ChartBand {
  from: number;
  to: number;
  label: string;
  title: string;
  failed: boolean;
}

/** A time span with hover text, e.g. one bucket of the summary's series. */
export interface HoverSpan {
  from: number;
  to: number;
  text: string;
}

export interface ChartSpec {
  fromMs: number;
  toMs: number;
  panels: ChartPanel[];
  bands: ChartBand[];
  hovers: HoverSpan[];
  ariaLabel: string;
}

const WIDTH = 1000;
const LEFT = 60;
const RIGHT = 18;
const BAND_STRIP = 30; // two rows of phase labels above the first panel
const PANEL_HEADER = 24;
const PANEL_GAP = 18;
const AXIS_HEIGHT = 40;
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** Escapes text for HTML and SVG, in content and in quoted attributes. */
export function esc(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const n1 = (v: number): string => (Math.round(v * 10) / 10).toString();

export function formatDay(ms: number): string {
  const d = new Date(ms);
  return `${MONTHS[d.getUTCMonth()]} ${d.getUTCDate()}`;
}

export function formatClock(ms: number): string {
  const d = new Date(ms);
  return `${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')}`;
}

/** Round y-axis ticks (1, 2 or 5 times a power of ten) from 0 to at least `max`. */
export function niceTicks(max: number, target = 4): number[] {
  const top = Math.max(1, max);
  const raw = top / target;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = Math.max(1, [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw) ?? 10 * pow);
  const ticks: number[] = [];
  for (let v = 0; v < top + step; v += step) ticks.push(v);
  return ticks;
}

/** Time ticks on round UTC minutes, hours or days, few enough that their labels never overlap. */
export function timeTicks(fromMs: number, toMs: number, maxTicks = 14): { step: number; ticks: number[] } {
  const steps = [MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE, 30 * MINUTE, HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY, 14 * DAY, 28 * DAY];
  const step = steps.find((s) => (toMs - fromMs) / s <= maxTicks) ?? 56 * DAY;
  const ticks: number[] = [];
  for (let t = Math.ceil(fromMs / step) * step; t <= toMs; t += step) ticks.push(t);
  return { step, ticks };
}

interface Frame {
  x: (t: number) => number;
  plotTop: number;
  plotBottom: number;
  /** Top and bottom of each panel's plot area, so bands skip the panel headers. */
  plots: Array<[number, number]>;
}

export function renderChart(spec: ChartSpec): string {
  const toMs = spec.toMs > spec.fromMs ? spec.toMs : spec.fromMs + MINUTE;
  const plotWidth = WIDTH - LEFT - RIGHT;
  const x = (t: number): number => LEFT + ((t - spec.fromMs) / (toMs - spec.fromMs)) * plotWidth;
  const panelsTop = BAND_STRIP;
  let y = panelsTop;
  const panels: string[] = [];
  const plots: Array<[number, number]> = [];
  for (const panel of spec.panels) {
    panels.push(renderPanel(panel, y, x, spec.fromMs, toMs));
    plots.push([y + PANEL_HEADER, y + PANEL_HEADER + panel.height]);
    y += PANEL_HEADER + panel.height + PANEL_GAP;
  }
  const plotBottom = y - PANEL_GAP;
  const frame: Frame = { x, plotTop: panelsTop + PANEL_HEADER, plotBottom, plots };
  const height = plotBottom + AXIS_HEIGHT;
  return [
    `<svg class="chart" viewBox="0 0 ${WIDTH} ${height}" width="100%" role="img" aria-label="${esc(spec.ariaLabel)}" font-size="12">`,
    renderXGrid(spec.fromMs, toMs, frame),
    renderBands(spec.bands, frame, toMs),
    ...panels,
    renderXAxis(spec.fromMs, toMs, frame),
    renderHovers(spec.hovers, spec.panels, panelsTop, frame),
    '</svg>',
  ].join('\n');
}

function renderPanel(panel: ChartPanel, top: number, x: (t: number) => number, fromMs: number, toMs: number): string {
  const plotTop = top + PANEL_HEADER;
  const plotBottom = plotTop + panel.height;
  const max = Math.max(0, ...panel.lines.map((l) => l.steps.at(-1)?.value ?? 0));
  const ticks = niceTicks(max);
  const yMax = ticks.at(-1)!;
  const y = (v: number): number => plotBottom - (v / yMax) * panel.height;
  const out = [`<g class="panel">`, renderPanelHeader(panel, top)];
  for (const v of ticks) {
    out.push(`<line class="grid" x1="${LEFT}" x2="${WIDTH - RIGHT}" y1="${n1(y(v))}" y2="${n1(y(v))}"/>`);
    out.push(`<text class="tick" x="${LEFT - 8}" y="${n1(y(v) + 4)}" text-anchor="end">${v.toLocaleString('en')}</text>`);
  }
  for (const line of panel.lines) out.push(renderLine(line, x, y, fromMs, toMs));
  out.push(`<line class="axis" x1="${LEFT}" x2="${LEFT}" y1="${plotTop}" y2="${plotBottom}"/>`);
  out.push(`<line class="axis" x1="${LEFT}" x2="${WIDTH - RIGHT}" y1="${plotBottom}" y2="${plotBottom}"/>`);
  out.push('</g>');
  return out.join('\n');
}

/** Panel title on the left, legend swatches to its right. */
function renderPanelHeader(panel: ChartPanel, top: number): string {
  const base = top + 15;
  const out = [`<text class="panel-title" x="${LEFT}" y="${base}">${esc(panel.title)}</text>`];
  // SVG text cannot be measured without a layout engine; these per-character widths err on the wide side.
  let lx = LEFT + 14 + panel.title.length * 8.6;
  for (const line of panel.lines) {
    const last = line.steps.at(-1)?.value ?? 0;
    const dash = line.dashed ? ' stroke-dasharray="5 3"' : '';
    out.push(`<line x1="${n1(lx)}" x2="${n1(lx + 18)}" y1="${base - 4}" y2="${base - 4}" stroke="${line.color}" stroke-width="3"${dash}/>`);
    const text = `${line.label} (${last.toLocaleString('en')})`;
    out.push(`<text class="legend" x="${n1(lx + 23)}" y="${base}">${esc(text)}</text>`);
    lx += 23 + text.length * 6.8 + 20;
  }
  return out.join('\n');
}

/** A step line: flat until a bucket starts, rising across it; then held to the end of the chart. */
function renderLine(line: ChartLine, x: (t: number) => number, y: (v: number) => number, fromMs: number, toMs: number): string {
  let d = `M${n1(x(fromMs))},${n1(y(0))}`;
  let prev = 0;
  for (const s of line.steps) {
    d += ` L${n1(x(s.from))},${n1(y(prev))} L${n1(x(s.to))},${n1(y(s.value))}`;
    prev = s.value;
  }
  d += ` L${n1(x(toMs))},${n1(y(prev))}`;
  const area = line.fill ? `<path class="area" d="${d} L${n1(x(toMs))},${n1(y(0))} Z" fill="${line.color}"/>` : '';
  const dash = line.dashed ? ' stroke-dasharray="6 3"' : '';
  return `${area}<path class="line" data-key="${esc(line.key)}" data-last="${prev}" d="${d}" stroke="${line.color}"${dash}/>`;
}

function renderXGrid(fromMs: number, toMs: number, f: Frame): string {
  return timeTicks(fromMs, toMs).ticks
    .map((t) => `<line class="grid" x1="${n1(f.x(t))}" x2="${n1(f.x(t))}" y1="${f.plotTop}" y2="${f.plotBottom}"/>`)
    .join('\n');
}

/** Day ticks show the date; sub-day ticks show the clock, with the date under the first and at midnight. */
function renderXAxis(fromMs: number, toMs: number, f: Frame): string {
  const { step, ticks } = timeTicks(fromMs, toMs);
  const out: string[] = [];
  ticks.forEach((t, i) => {
    const x = n1(f.x(t));
    out.push(`<line class="axis" x1="${x}" x2="${x}" y1="${f.plotBottom}" y2="${f.plotBottom + 5}"/>`);
    const first = step >= DAY ? formatDay(t) : formatClock(t);
    out.push(`<text class="tick" x="${x}" y="${f.plotBottom + 18}" text-anchor="middle">${first}</text>`);
    if (step < DAY && (i === 0 || t % DAY === 0)) {
      out.push(`<text class="tick date" x="${x}" y="${f.plotBottom + 32}" text-anchor="middle">${formatDay(t)}</text>`);
    }
  });
  return out.join('\n');
}

/** Phase bands across every panel; labels alternate rows when phases sit close together. */
function renderBands(bands: ChartBand[], f: Frame, toMs: number): string {
  const out: string[] = [];
  let lastLabelX = -Infinity;
  let row = 0;
  for (const b of bands) {
    const x0 = f.x(b.from);
    const width = Math.max(3, f.x(Math.min(b.to, toMs)) - x0);
    row = x0 - lastLabelX < 34 ? 1 - row : 0;
    lastLabelX = x0;
    const labelY = row === 0 ? 12 : 25;
    const rects = f.plots.map(([top, bottom]) => `<rect x="${n1(x0)}" y="${top}" width="${n1(width)}" height="${bottom - top}"/>`);
    out.push(
      `<g class="band${b.failed ? ' failed' : ''}"><title>${esc(b.title)}</title>` +
        `<line x1="${n1(x0)}" x2="${n1(x0)}" y1="${labelY + 3}" y2="${f.plotTop}"/>${rects.join('')}` +
        `<text x="${n1(x0 + 3)}" y="${labelY}">${esc(b.label)}</text></g>`,
    );
  }
  return out.join('\n');
}

/** Invisible hit areas over the plots, one per span, each with its own hover text. */
function renderHovers(hovers: HoverSpan[], panels: ChartPanel[], panelsTop: number, f: Frame): string {
  if (panels.length === 0) return '';
  const out = ['<g class="hover">'];
  for (const h of hovers) {
    const x0 = f.x(h.from);
    const width = Math.max(3, f.x(h.to) - x0);
    out.push(`<rect x="${n1(x0)}" y="${panelsTop + PANEL_HEADER}" width="${n1(width)}" height="${n1(f.plotBottom - panelsTop - PANEL_HEADER)}"><title>${esc(h.text)}</title></rect>`);
  }
  out.push('</g>');
  return out.join('\n');
}
