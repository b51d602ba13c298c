/**
 * A small Prometheus registry: counters, gauges and histograms with labels, rendered in the text
 * exposition format (version 0.0.4). Enough for /metrics without a dependency; label values are
 * escaped, and each metric keeps a bounded number of label sets so a bad caller cannot grow it forever.
 */

/** Label sets per metric beyond which new ones fold into `{overflow="true"}`. */
export const MAX_SERIES = 2_000;

export type Labels = Record<string, string>;

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function labelText(labels: Labels): string {
  const keys = Object.keys(labels);
  if (keys.length === 0) return '';
  return `{${keys.map((k) => `${k}="${escapeLabel(labels[k]!)}"`).join(',')}}`;
}

function num(v: number): string {
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  return Number.isNaN(v) ? 'NaN' : String(v);
}

interface Metric {
  readonly name: string;
  render(): string[];
}

abstract class Labelled<T> implements Metric {
  protected readonly series = new Map<string, { labels: Labels; value: T }>();
  constructor(readonly name: string, readonly help: string, readonly type: string) {}

  protected slot(labels: Labels, init: () => T): T {
    let key = labelText(labels);
    let s = this.series.get(key);
    if (!s) {
      if (this.series.size >= MAX_SERIES) {
        labels = { overflow: 'true' };
        key = labelText(labels);
        s = this.series.get(key);
      }
      if (!s) this.series.set(key, (s = { labels, value: init() }));
    }
    return s.value;
  }

  protected header(): string[] {
    return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`];
  }

  abstract render(): string[];
}

export class Counter extends Labelled<{ n: number }> {
  constructor(name: string, help: string) {
    super(name, help, 'counter');
  }

  inc(labels: Labels = {}, by = 1): void {
    this.slot(labels, () => ({ n: 0 })).n += by;
  }

  get(labels: Labels = {}): number {
    return this.series.get(labelText(labels))?.value.n ?? 0;
  }

  render(): string[] {
    const out = this.header();
    for (const s of this.series.values()) out.push(`${this.name}${labelText(s.labels)} ${num(s.value.n)}`);
    return out;
  }
}

/** A gauge whose values are computed at scrape time (rollouts by state, agents connected). */
export class Gauge implements Metric {
  constructor(readonly name: string, readonly help: string, private readonly collect: () => Array<[Labels, number]>) {}

  render(): string[] {
    const out = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`];
    for (const [labels, v] of this.collect()) out.push(`${this.name}${labelText(labels)} ${num(v)}`);
    return out;
  }
}

interface HistogramValue { buckets: number[]; sum: number; count: number }

export class Histogram extends Labelled<HistogramValue> {
  constructor(name: string, help: string, readonly bounds: readonly number[]) {
    super(name, help, 'histogram');
  }

  observe(labels: Labels, value: number): void {
    this.add(this.slot(labels, () => ({ buckets: this.bounds.map(() => 0), sum: 0, count: 0 })), value);
  }

  /** An observer of one label set, its series found once (for per-request paths). */
  bind(labels: Labels): (value: number) => void {
    const h = this.slot(labels, () => ({ buckets: this.bounds.map(() => 0), sum: 0, count: 0 }));
    return (value) => this.add(h, value);
  }

  private add(h: HistogramValue, value: number): void {
    for (let i = 0; i < this.bounds.length; i++) if (value <= this.bounds[i]!) h.buckets[i]!++;
    h.sum += value;
    h.count++;
  }

  count(labels: Labels = {}): number {
    return this.series.get(labelText(labels))?.value.count ?? 0;
  }

  /** Observations across every label set. */
  total(): number {
    let n = 0;
    for (const s of this.series.values()) n += s.value.count;
    return n;
  }

  render(): string[] {
    const out = this.header();
    for (const { labels, value } of this.series.values()) {
      this.bounds.forEach((b, i) => out.push(`${this.name}_bucket${labelText({ ...labels, le: num(b) })} ${value.buckets[i]}`));
      out.push(`${this.name}_bucket${labelText({ ...labels, le: '+Inf' })} ${value.count}`);
      out.push(`${this.name}_sum${labelText(labels)} ${num(value.sum)}`);
      out.push(`${this.name}_count${labelText(labels)} ${value.count}`);
    }
    return out;
  }
}

export class Registry {
  private readonly metrics: Metric[] = [];

  add<M extends Metric>(m: M): M {
    this.metrics.push(m);
    return m;
  }

  /** The exposition text; content type `text/plain; version=0.0.4`. */
  render(): string {
    return this.metrics.flatMap((m) => m.render()).join('\n') + '\n';
  }
}
