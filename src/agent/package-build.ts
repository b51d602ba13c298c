/**
 * `phasewise package build`: a handler folder zipped as it is (HandlerManifest.json at the root,
 * modes kept, symlinks refused since agents refuse them). Signing is `phasewise package sign`.
 */
import { createWriteStream, lstatSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import yazl from 'yazl';

export class PackageBuildError extends Error {}

const MAX_FILES = 20_000;

function walk(dir: string, root: string, out: string[]): void {
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = join(dir, e.name);
    if (e.isSymbolicLink()) throw new PackageBuildError(`${relative(root, p)} is a symbolic link; agents refuse packages with links`);
    if (e.isDirectory()) walk(p, root, out);
    else if (e.isFile()) out.push(p);
    else throw new PackageBuildError(`${relative(root, p)} is not a regular file`);
    if (out.length > MAX_FILES) throw new PackageBuildError(`more than ${MAX_FILES} files`);
  }
}

export async function buildPackage(dir: string, outFile: string): Promise<{ files: number; bytes: number }> {
  let st;
  try {
    st = lstatSync(dir);
  } catch {
    throw new PackageBuildError(`--dir ${dir} does not exist`);
  }
  if (!st.isDirectory()) throw new PackageBuildError(`--dir ${dir} is not a folder`);
  const files: string[] = [];
  walk(dir, dir, files);
  if (!files.some((f) => relative(dir, f) === 'HandlerManifest.json')) throw new PackageBuildError(`${dir} has no HandlerManifest.json at its root`);
  const zip = new yazl.ZipFile();
  for (const f of files) zip.addFile(f, relative(dir, f), { mode: statSync(f).mode & 0o777 | 0o100000, mtime: new Date(0) });
  zip.end();
  await new Promise<void>((resolve, reject) => {
    const out = createWriteStream(outFile, { flags: 'wx' });
    out.on('error', (err) => reject(new PackageBuildError(`cannot write ${outFile}: ${err.message}`)));
    out.on('close', () => resolve());
    zip.outputStream.pipe(out);
  });
  return { files: files.length, bytes: statSync(outFile).size };
}
