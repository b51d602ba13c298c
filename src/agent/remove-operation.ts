/**
 * Removal (§3.5): disable (if enabled), uninstall, then delete the folder and the cached zips. Used for
 * `state: uninstall` and for handlers that left the goal state: unlike WALinuxAgent, which deletes a
 * vanished handler without running anything, a handler is only deleted after disable and uninstall ran.
 * Both are best effort: a failing handler must not be able to pin itself on the machine.
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ExtensionRecord, OperationJournal, OutcomeRecord } from './journal.js';
import { handlerDir, packagesDir } from './layout.js';
import { once, runCommand, succeeded } from './operation-context.js';
import type { AgentRuntime } from './operation-context.js';
import { outcome } from './prepare-version.js';

/** Every `<name>-<version>` folder of this handler (a failed upgrade can leave two). */
function versionsOnDisk(rt: AgentRuntime, name: string): string[] {
  return readdirSync(rt.dirs.lib)
    .filter((d) => d.startsWith(`${name}-`) && !d.endsWith('.unpacking'))
    .map((d) => d.slice(name.length + 1))
    .filter((v) => /^[0-9][0-9.]*$/.test(v));
}

export async function removeOperation(rt: AgentRuntime, rec: ExtensionRecord, op: OperationJournal): Promise<OutcomeRecord> {
  const problems: string[] = [];
  const versions = op.fromVersion ? [op.fromVersion, ...versionsOnDisk(rt, rec.name).filter((v) => v !== op.fromVersion)] : versionsOnDisk(rt, rec.name);
  for (const v of versions) {
    if (!existsSync(handlerDir(rt.dirs, rec.name, v)) && !op.marks.includes(`delete@${v}`)) continue;
    if (v === op.fromVersion && op.fromState === 'Enabled') {
      const r = await runCommand(rt, rec, op, `disable@${v}`, 'disable', v, {});
      if (!succeeded(r)) problems.push(`disable of ${v} failed (exit ${r.exitCode ?? (r.timedOut ? 'timeout' : 'none')})`);
      rec.state = 'Installed';
      rt.journal.save();
    }
    const r = await runCommand(rt, rec, op, `uninstall@${v}`, 'uninstall', v, {});
    if (!succeeded(r)) problems.push(`uninstall of ${v} failed (exit ${r.exitCode ?? (r.timedOut ? 'timeout' : 'none')})`);
    await once(rt, op, `delete@${v}`, () => rmSync(handlerDir(rt.dirs, rec.name, v), { recursive: true, force: true }));
  }
  await once(rt, op, 'forget', () => {
    const dir = packagesDir(rt.dirs);
    if (existsSync(dir)) for (const f of readdirSync(dir)) if (f.startsWith(`${rec.name}__`)) rmSync(join(dir, f), { force: true });
    rec.state = 'NotInstalled';
    rec.installedVersion = null;
    rec.installedSeq = null;
    rec.installedPackage = null;
    rec.lastKnownGood = null;
    rec.lastError = null;
  });
  const message = `${rec.name} removed${problems.length ? ` (${problems.join('; ')})` : ''}`;
  return outcome(op, rt, { outcome: 'succeeded', version: null, message });
}
