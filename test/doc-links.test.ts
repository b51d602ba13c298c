/**
 * Every relative link in README.md and docs/*.md resolves to a file inside the repository, and every
 * anchor to a heading of the file it points into (GitHub's heading ids), so a fresh clone has no
 * dead links and nothing points outside it (issue 12: docs linked ../shared files).
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { ROOT } from './helpers/cli.js';

const FILES = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

/** Markdown outside fenced code blocks. */
function prose(text: string): string {
  return text.split(/^```.*$/m).filter((_, i) => i % 2 === 0).join('\n');
}

/** GitHub's id for a heading: lower case, punctuation dropped, spaces to dashes, repeats numbered. */
export function headingIds(markdown: string): Set<string> {
  const ids = new Set<string>();
  const seen = new Map<string, number>();
  for (const m of prose(markdown).matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const text = m[1]!.replace(/`/g, '').replace(/\[([^\]]*)\]\([^)]*\)/g, '$1');
    const base = text.toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, '').replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    ids.add(n === 0 ? base : `${base}-${n}`);
  }
  return ids;
}

function links(markdown: string): string[] {
  return [...prose(markdown).matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!).filter((l) => !/^[a-z]+:/i.test(l));
}

test('every relative link in README.md and docs/*.md resolves to a file in the repository, and its anchor to a heading', () => {
  const problems: string[] = [];
  for (const file of FILES) {
    const text = readFileSync(join(ROOT, file), 'utf8');
    for (const link of links(text)) {
      const [path, anchor] = link.split('#') as [string, string | undefined];
      const target = path === '' ? join(ROOT, file) : resolve(ROOT, dirname(file), decodeURIComponent(path));
      const inside = relative(ROOT, target);
      if (inside.startsWith('..')) problems.push(`${file}: ${link} points outside the repository`);
      else if (!existsSync(target)) problems.push(`${file}: ${link} does not exist`);
      else if (anchor && statSync(target).isFile() && target.endsWith('.md') && !headingIds(readFileSync(target, 'utf8')).has(anchor)) {
        problems.push(`${file}: ${link} names no heading of ${inside}`);
      }
    }
  }
  assert.deepEqual(problems, []);
});

test('the link check sees links outside the repository and missing anchors', () => {
  assert.ok(headingIds('# OS images (R60–R66, R83)\n').has('os-images-r60r66-r83'));
  assert.ok(headingIds('## Scale sets\n## Scale sets\n').has('scale-sets-1'));
  assert.deepEqual(links('see [x](../../shared/a.md) and `[y](z.md)`\n```\n[q](r.md)\n```\n[h](https://e.org)'), ['../../shared/a.md', 'z.md']);
});
