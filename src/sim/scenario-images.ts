/**
 * The scenario's OS images (docs/scenarios.md, `images`, `publishImage`, `replicateImage`): platform
 * images and versions, and when each version's replication to a region completes (R64). Checked here
 * against the regions, the scale sets that name an image and the time line; compiled into
 * `updateImages` actions the simulator carries out through the engine's image catalog command.
 */
import { compareImageVersions, parseImageVersion } from '../model/image-version.js';
import type { ImageOsType, PlatformVersionContent } from '../catalog/images.js';
import { ImageCatalogError } from '../catalog/images.js';
import type { ImageCatalog } from '../catalog/images.js';
import type { Region } from '../model/fleet.js';
import type { ImageSetUse } from './fleet-builder.js';
import { unknownRegion } from './fleet-builder.js';
import type { ReplicationInput, ScenarioInput } from './scenario-schema.js';
import { listed } from './issue-lists.js';

type Issues = Array<{ path: string; message: string }>;
type TimeOf = (text: string, path: string) => number;

export interface PlatformImageId {
  publisher: string;
  offer: string;
  sku: string;
}

/** One change to the image catalog; a list of them is applied in one `engine.updateImages`. */
export type ImageOp =
  | { op: 'publish'; image: PlatformImageId; version: string; content: PlatformVersionContent; atMs: number }
  | { op: 'replicate'; image: PlatformImageId; version: string; region: string; completedAtMs: number };

export interface ImageAction {
  atMs: number;
  kind: 'updateImages';
  ops: ImageOp[];
  /** What the action comes from (`images`, `events[3]`), for the log and for readers of the actions. */
  source: string;
}

const imageKey = (i: PlatformImageId) => `${i.publisher}:${i.offer}:${i.sku}`.toLowerCase();
/** `22.04.1` and `22.4.1` are one version (parts compare as numbers). */
const versionKey = (v: string) => parseImageVersion(v)?.join('.') ?? v;
const describe = (i: PlatformImageId) => `${i.publisher}:${i.offer}:${i.sku}`;

interface VersionRecord {
  version: string;
  publishedAtMs: number;
  /** `images[0].versions[1]` or `events[4]`. */
  source: string;
  /** Region → when its replication completes, and where that was said. */
  replications: Map<string, { atMs: number; path: string }>;
}

interface ImageRecord {
  id: PlatformImageId;
  osType: ImageOsType;
  versions: Map<string, VersionRecord>;
}

/**
 * Checks the `images` section, the image events and the sets' image references; returns the actions:
 * the section at the start (before any event of that instant), then one per image event.
 */
export function compileImages(
  input: ScenarioInput,
  startMs: number,
  at: TimeOf,
  eventTimes: readonly number[],
  regions: ReadonlyMap<string, Region>,
  imageSets: readonly ImageSetUse[],
  issues: Issues,
): ImageAction[] {
  const images = new Map<string, ImageRecord>();
  const actions: ImageAction[] = [];
  const content = (img: ImageRecord): PlatformVersionContent => ({
    osType: img.osType,
    hyperVGeneration: 'V2',
    automaticOSUpgradeSupported: true,
  });

  /** Checks a replication's region and time; returns its op, or null. */
  const replicationOp = (
    img: ImageRecord,
    v: VersionRecord,
    region: string,
    atMs: number,
    path: string,
    regionPath: string,
  ): ImageOp | null => {
    if (!regions.has(region)) {
      issues.push({ path: regionPath, message: unknownRegion(region, regions) });
      return null;
    }
    const earlier = v.replications.get(region);
    if (earlier) {
      issues.push({
        path: regionPath,
        message: `${describe(img.id)} ${v.version} is replicated to ${region} already (${earlier.path}); expected each region once per version`,
      });
      return null;
    }
    if (atMs < v.publishedAtMs) {
      issues.push({
        path,
        message: `expected the replication to complete at or after the version is published (${new Date(v.publishedAtMs).toISOString()}), got ${new Date(atMs).toISOString()}`,
      });
      return null;
    }
    v.replications.set(region, { atMs, path: regionPath.replace(/\.region$/, '') });
    return { op: 'replicate', image: img.id, version: v.version, region, completedAtMs: atMs };
  };
  const replicationsOf = (
    img: ImageRecord,
    v: VersionRecord,
    list: readonly ReplicationInput[],
    defaultAt: number,
    path: string,
  ): ImageOp[] =>
    list.flatMap((r, k) => {
      const p = `${path}[${k}]`;
      const op = replicationOp(
        img,
        v,
        r.region,
        r.at === undefined ? defaultAt : at(r.at, `${p}.at`),
        r.at === undefined ? p : `${p}.at`,
        `${p}.region`,
      );
      return op ? [op] : [];
    });

  // The section: published just before the start (like catalog versions), replicated by default everywhere at the start.
  const startOps: ImageOp[] = [];
  (input.images ?? []).forEach((i, n) => {
    const path = `images[${n}]`;
    const key = imageKey(i);
    if (images.has(key)) {
      issues.push({
        path,
        message: `image ${describe(i)} is listed twice; expected each publisher, offer and sku once (list its versions together)`,
      });
      return;
    }
    const img: ImageRecord = {
      id: { publisher: i.publisher, offer: i.offer, sku: i.sku },
      osType: i.osType ?? 'Linux',
      versions: new Map(),
    };
    images.set(key, img);
    i.versions.forEach((v, j) => {
      const vpath = `${path}.versions[${j}]`;
      if (img.versions.has(versionKey(v.version))) {
        issues.push({ path: `${vpath}.version`, message: `${v.version} is listed twice for ${describe(i)}; expected each version once` });
        return;
      }
      const record: VersionRecord = { version: v.version, publishedAtMs: startMs - 1, source: vpath, replications: new Map() };
      img.versions.set(versionKey(v.version), record);
      startOps.push({ op: 'publish', image: img.id, version: v.version, content: content(img), atMs: record.publishedAtMs });
      const list = v.replications ?? [...regions.keys()].map((region) => ({ region }));
      startOps.push(...replicationsOf(img, record, list, startMs, `${vpath}.replications`));
    });
  });
  if (startOps.length > 0) actions.push({ atMs: startMs, kind: 'updateImages', ops: startOps, source: 'images' });

  // Image events: publications first (in time order, so "published by then" is known), then replications.
  const events = input.events ?? [];
  const order = events.map((_, i) => i).sort((a, b) => eventTimes[a]! - eventTimes[b]! || a - b);
  const imageOf = (id: PlatformImageId, path: string): ImageRecord | undefined => {
    const img = images.get(imageKey(id));
    if (!img) issues.push({ path, message: unknownImage(id, images) });
    return img;
  };
  const published: Array<{ index: number; img: ImageRecord; record: VersionRecord }> = [];
  for (const i of order) {
    const e = events[i]!.publishImage;
    if (!e) continue;
    const path = `events[${i}].publishImage`;
    const img = imageOf(e, path);
    if (!img) continue;
    const earlier = img.versions.get(versionKey(e.version));
    if (earlier) {
      issues.push({
        path: `${path}.version`,
        message: `${e.version} of ${describe(img.id)} is already published (${earlier.source}); expected a new version`,
      });
      continue;
    }
    const record: VersionRecord = { version: e.version, publishedAtMs: eventTimes[i]!, source: `events[${i}]`, replications: new Map() };
    img.versions.set(versionKey(e.version), record);
    published.push({ index: i, img, record });
  }
  for (const { index, img, record } of published) {
    const e = events[index]!.publishImage!;
    const ops: ImageOp[] = [{ op: 'publish', image: img.id, version: record.version, content: content(img), atMs: record.publishedAtMs }];
    ops.push(...replicationsOf(img, record, e.replications, record.publishedAtMs, `events[${index}].publishImage.replications`));
    actions.push({ atMs: record.publishedAtMs, kind: 'updateImages', ops, source: `events[${index}]` });
  }
  for (const i of order) {
    const e = events[i]!.replicateImage;
    if (!e) continue;
    const path = `events[${i}].replicateImage`;
    const img = imageOf(e, path);
    if (!img) continue;
    const record = img.versions.get(versionKey(e.version));
    if (!record || record.publishedAtMs > eventTimes[i]!) {
      const byThen = [...img.versions.values()].filter((v) => v.publishedAtMs <= eventTimes[i]!).map((v) => v.version);
      const when = record ? `is published only later, by ${record.source}` : 'is never published';
      issues.push({
        path: `${path}.version`,
        message: `${e.version} of ${describe(img.id)} ${when}; expected a version published by then: ${listed(byThen)}`,
      });
      continue;
    }
    const op = replicationOp(img, record, e.region, eventTimes[i]!, path, `${path}.region`);
    if (op) actions.push({ atMs: eventTimes[i]!, kind: 'updateImages', ops: [op], source: `events[${i}]` });
  }

  checkSets(imageSets, images, startMs, issues);
  return actions;
}

/**
 * A set's image must be in the `images` section, fit its OS, and be available in its region at the start
 * (R64): `latest` needs some version replicated there by then, a pinned version must be that version.
 * Without it the set's instances would have no image to start from.
 */
function checkSets(sets: readonly ImageSetUse[], images: ReadonlyMap<string, ImageRecord>, startMs: number, issues: Issues): void {
  for (const s of sets) {
    const img = images.get(imageKey(s.ref));
    if (!img) {
      issues.push({ path: s.path, message: unknownImage(s.ref, images) });
      continue;
    }
    const atStart = [...img.versions.values()].filter((v) => v.source.startsWith('images[') && (v.replications.get(s.region)?.atMs ?? Number.POSITIVE_INFINITY) <= startMs);
    if (img.osType.toLowerCase() !== s.os) issues.push({ path: s.path, message: `${describe(img.id)} is a ${img.osType} image, but the set's os is ${s.os}` });
    if (s.ref.version.toLowerCase() === 'latest') {
      if (atStart.length === 0) issues.push({ path: s.path, message: `no version of ${describe(img.id)} is replicated to ${s.region} at the start; expected one in images[].versions with a replication to ${s.region} at the start, for the set's instances to start from` });
      continue;
    }
    const pinned = [...img.versions.values()].find((v) => compareImageVersions(v.version, s.ref.version) === 0);
    const versions = () => listed([...img.versions.values()].map((v) => v.version));
    if (!pinned) issues.push({ path: `${s.path}.version`, message: `${s.ref.version} is not a version of ${describe(img.id)}; expected latest or one of: ${versions()}` });
    else if (!atStart.includes(pinned)) {
      const there = listed(atStart.map((v) => v.version));
      const message = `${pinned.version} of ${describe(img.id)} is not replicated to ${s.region} at the start; expected latest or a version there at the start: ${there}`;
      issues.push({ path: `${s.path}.version`, message });
    }
  }
}

function unknownImage(id: PlatformImageId, images: ReadonlyMap<string, ImageRecord>): string {
  const known = [...images.values()].map((i) => describe(i.id));
  return `unknown image ${describe(id)}; expected one of images[]: ${listed(known, '(none: the images section is empty)')}`;
}

/**
 * Applies an action's changes to the catalog. An engine served with a scenario may have had its catalog
 * changed through the API meanwhile: a change that conflicts with it is left out (the scenario was
 * checked against itself when compiled, so a simulation never leaves anything out).
 */
export function applyImageOps(catalog: ImageCatalog, ops: readonly ImageOp[]): number {
  let skipped = 0;
  for (const o of ops) {
    try {
      if (o.op === 'publish') catalog.publishPlatformVersion(o.image, o.version, o.content, o.atMs);
      else catalog.replicate({ kind: 'platform', ...o.image, version: o.version }, o.region, o.completedAtMs);
    } catch (err) {
      if (!(err instanceof ImageCatalogError)) throw err;
      skipped++;
    }
  }
  return skipped;
}
