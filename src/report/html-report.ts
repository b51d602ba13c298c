/** Placeholder until the report with its chart lands (being written now). */
import type { RolloutSummary } from './summary.js';

export interface ReportInput {
  scenario: { name: string; description: string; file: string; seed: number; machines: number; regions: number };
  rollouts: RolloutSummary[];
}

export function renderHtmlReport(input: ReportInput): string {
  return `<!doctype html><meta charset="utf-8"><title>${input.scenario.name}</title><pre>${JSON.stringify(input.rollouts.map((r) => ({ id: r.id, status: r.status })))}</pre>`;
}
