/**
 * The image catalog: platform images (publisher → offer → sku → versions) and gallery images (gallery →
 * image definition → versions), each version with its per-region replications. Pure: time is passed in,
 * nothing is read or written; the API persists it through `toJSON`/`fromJSON`.
 *
 * R64: a version is available in a region exactly from the instant its replication there completes,
 * never before. Platform versions follow the same rule (a platform image reaches regions one by one).
 * Names compare without case, as Azure's do; regions also ignore spaces (`West US` is `westus`).
 */
import { compareImageVersions, isImageVersion } from '../model/image-version.js';
import type { ImageRef } from '../model/image-reference.js';
import { galleryIdOf, isLatest } from '../model/image-reference.js';

export type ImageOsType = 'Linux' | 'Windows';
export type HyperVGeneration = 'V1' | 'V2';

export interface Replication {
  /** Normalised region name (`westus`). */
  region: string;
  /** When the copy there completed (or will complete); null while it is under way with no end known. */
  completedAtMs: number | null;
}

interface VersionBase {
  version: string;
  publishedAtMs: number;
  replications: Replication[];
}

/** What a platform version is; publishing the same version again must say the same. */
export interface PlatformVersionContent {
  osType: ImageOsType;
  hyperVGeneration: HyperVGeneration;
  automaticOSUpgradeSupported: boolean;
}
export interface PlatformImageVersion extends VersionBase, PlatformVersionContent {}

export interface PlatformImage {
  publisher: string;
  offer: string;
  sku: string;
  versions: PlatformImageVersion[];
}

/** What a gallery version is: `excludeFromLatest` keeps it out of `latest` (it can still be pinned). */
export interface GalleryVersionContent {
  excludeFromLatest: boolean;
}
export interface GalleryImageVersion extends VersionBase, GalleryVersionContent {}

export interface GalleryImageContent {
  osType: ImageOsType;
  hyperVGeneration: HyperVGeneration;
  identifier: { publisher: string; offer: string; sku: string };
}
export interface GalleryImageDefinition extends GalleryImageContent {
  name: string;
  versions: GalleryImageVersion[];
}

export interface Gallery {
  subscription: string;
  resourceGroup: string;
  name: string;
  /** The gallery's home region (its resource's location). */
  location: string;
  images: GalleryImageDefinition[];
}

export type ImageVersionRecord = PlatformImageVersion | GalleryImageVersion;

/** A concrete version a reference resolves to in a region at an instant. */
export interface ResolvedImage {
  kind: 'platform' | 'gallery';
  /** The concrete version (what Azure returns as `exactVersion`). */
  version: string;
  /** The reference asked for `latest` rather than pinning the version. */
  followsLatest: boolean;
  osType: ImageOsType;
  hyperVGeneration: HyperVGeneration;
  /** When the version became available in the region. */
  availableSinceMs: number;
  /** Platform images say whether automatic OS upgrade supports them; gallery images always do. */
  automaticOSUpgradeSupported: boolean;
}

export type ImageErrorCode =
  | 'PublisherNotFound' | 'OfferNotFound' | 'SkuNotFound' | 'GalleryNotFound' | 'ImageDefinitionNotFound'
  | 'VersionNotFound' | 'NotReplicated' | 'NoVersionInRegion' | 'UnsupportedReference'
  | 'InvalidVersion' | 'InvalidReplication' | 'Conflict' | 'QuotaExceeded';

/**
 * How much the catalog holds, as Azure Compute Gallery limits it (per subscription and per region, the
 * gallery's: 100 galleries, 1,000 image definitions, 10,000 image versions), and the platform catalog, which
 * has no subscription (per image, and in all). Each publish is a record every catalog read and every engine
 * snapshot carries: without a bound a publisher's loop grew them without end. A write past one is a
 * `QuotaExceeded` and stores nothing (docs/api-catalog.md#limits-of-the-catalog).
 */
export const IMAGE_QUOTAS = {
  galleriesPerSubscriptionRegion: 100,
  imageDefinitionsPerSubscriptionRegion: 1_000,
  imageVersionsPerSubscriptionRegion: 10_000,
  platformImages: 10_000,
  versionsPerPlatformImage: 10_000,
} as const;

/** A catalog query or change that cannot be answered; `code` says what is missing or wrong. */
export class ImageCatalogError extends Error {
  constructor(readonly code: ImageErrorCode, message: string) {
    super(message);
  }
}

/** What a change did: a new record, a changed one, or nothing (an identical repeat). */
export type Outcome = 'created' | 'updated' | 'unchanged';

export interface ImageCatalogJson {
  platform: PlatformImage[];
  galleries: Gallery[];
}

export const regionKey = (region: string) => region.replace(/\s+/g, '').toLowerCase();
const platformKey = (publisher: string, offer: string, sku: string) => `${publisher}/${offer}/${sku}`.toLowerCase();
const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

// ---- availability (R64) --------------------------------------------------------------------------------

/** When `v` became (or becomes) available in `region`; null if no completed replication is there. */
export function availableFromMs(v: VersionBase, region: string): number | null {
  const r = v.replications.find((x) => x.region === regionKey(region));
  return r?.completedAtMs ?? null;
}

/** R64: available exactly from the completion of its replication to the region. */
export function isAvailable(v: VersionBase, region: string, atMs: number): boolean {
  const from = availableFromMs(v, region);
  return from !== null && from <= atMs;
}

/** The versions available in `region` at `atMs`, oldest first. */
export function availableVersions<V extends VersionBase>(versions: readonly V[], region: string, atMs: number): V[] {
  return versions.filter((v) => isAvailable(v, region, atMs));
}

/**
 * What `latest` means in a region at an instant: the newest available version not excluded from `latest`
 * and not withdrawn by an operator.
 */
export function newestAvailable<V extends VersionBase>(versions: readonly V[], region: string, atMs: number, withdrawn: (v: V) => boolean = () => false): V | undefined {
  let best: V | undefined;
  for (const v of versions) {
    if ((v as Partial<GalleryVersionContent>).excludeFromLatest === true || !isAvailable(v, region, atMs) || withdrawn(v)) continue;
    if (!best || compareImageVersions(v.version, best.version) > 0) best = v;
  }
  return best;
}

// ---- the catalog ---------------------------------------------------------------------------------------

export class ImageCatalog {
  private readonly platform = new Map<string, PlatformImage>();
  private readonly galleryMap = new Map<string, Gallery>();
  /**
   * Withdrawn versions (`identity@version`): published still (history, pinned references) but `latest`
   * never stands for them again. Derived from the releases' holds, as the extension catalog's.
   */
  private readonly withdrawnSet = new Set<string>();

  // ---- platform images ----

  platformImages(): PlatformImage[] {
    return [...this.platform.values()];
  }

  platformImage(publisher: string, offer: string, sku: string): PlatformImage | undefined {
    return this.platform.get(platformKey(publisher, offer, sku));
  }

  /** True when the catalog holds any platform image of this publisher. */
  hasPublisher(publisher: string): boolean {
    return this.platformImages().some((i) => same(i.publisher, publisher));
  }

  /** Publishes a platform version; an identical repeat is `unchanged`, a different one a `Conflict` (versions are immutable). */
  publishPlatformVersion(
    image: { publisher: string; offer: string; sku: string },
    version: string,
    content: PlatformVersionContent,
    atMs: number,
  ): { outcome: Outcome; image: PlatformImage; version: PlatformImageVersion } {
    checkVersion(version);
    const key = platformKey(image.publisher, image.offer, image.sku);
    let img = this.platform.get(key);
    const existing = img && findVersion(img.versions, version);
    if (img && existing) {
      if (existing.version !== version) throw spelledOtherwise(existing.version, version, describePlatform(img));
      const differs =
        existing.version !== version ||
        existing.osType !== content.osType ||
        existing.hyperVGeneration !== content.hyperVGeneration ||
        existing.automaticOSUpgradeSupported !== content.automaticOSUpgradeSupported;
      if (differs)
        throw new ImageCatalogError(
          'Conflict',
          `Version '${existing.version}' of ${describePlatform(img)} is already published with other content; published versions are immutable, publish a new version instead.`,
        );
      return { outcome: 'unchanged', image: img, version: existing };
    }
    if (!img && this.platform.size >= IMAGE_QUOTAS.platformImages) {
      throw quotaExceeded(
        `The catalog holds ${this.platform.size} platform images, the most it may (${IMAGE_QUOTAS.platformImages}); ${image.publisher}:${image.offer}:${image.sku} was not added.`,
      );
    }
    if (img && img.versions.length >= IMAGE_QUOTAS.versionsPerPlatformImage) {
      const limit = `the most one platform image may (${IMAGE_QUOTAS.versionsPerPlatformImage})`;
      throw quotaExceeded(
        `${describePlatform(img)} has ${img.versions.length} versions, ${limit}; version '${version}' was not published.`,
      );
    }
    if (!img) this.platform.set(key, (img = { publisher: image.publisher, offer: image.offer, sku: image.sku, versions: [] }));
    const v: PlatformImageVersion = { version, publishedAtMs: atMs, replications: [], ...content };
    insertSorted(img.versions, v);
    return { outcome: 'created', image: img, version: v };
  }

  // ---- galleries ----

  galleries(): Gallery[] {
    return [...this.galleryMap.values()];
  }

  gallery(subscription: string, resourceGroup: string, name: string): Gallery | undefined {
    return this.galleryMap.get(galleryIdOf(subscription, resourceGroup, name).toLowerCase());
  }

  /** Creates a gallery; the same again is `unchanged`, another location a `Conflict` (a gallery does not move). */
  putGallery(g: { subscription: string; resourceGroup: string; name: string; location: string }): { outcome: Outcome; gallery: Gallery } {
    const existing = this.gallery(g.subscription, g.resourceGroup, g.name);
    if (existing) {
      if (existing.location !== regionKey(g.location))
        throw new ImageCatalogError(
          'Conflict',
          `Gallery '${existing.name}' is in ${existing.location}; a gallery cannot move to ${regionKey(g.location)}.`,
        );
      return { outcome: 'unchanged', gallery: existing };
    }
    const have = this.inSubscriptionRegion(g.subscription, regionKey(g.location)).length;
    if (have >= IMAGE_QUOTAS.galleriesPerSubscriptionRegion) {
      const limit = `the most it may (${IMAGE_QUOTAS.galleriesPerSubscriptionRegion})`;
      throw quotaExceeded(
        `Subscription '${g.subscription}' has ${have} galleries in ${regionKey(g.location)}, ${limit}; gallery '${g.name}' was not created.`,
      );
    }
    const gallery: Gallery = {
      subscription: g.subscription,
      resourceGroup: g.resourceGroup,
      name: g.name,
      location: regionKey(g.location),
      images: [],
    };
    this.galleryMap.set(galleryIdOf(g.subscription, g.resourceGroup, g.name).toLowerCase(), gallery);
    return { outcome: 'created', gallery };
  }

  /** Creates an image definition in a gallery; definitions are immutable like versions. */
  putGalleryImage(
    galleryRef: { subscription: string; resourceGroup: string; gallery: string },
    name: string,
    content: GalleryImageContent,
  ): { outcome: Outcome; gallery: Gallery; image: GalleryImageDefinition } {
    const gallery = this.mustGallery(galleryRef);
    const existing = gallery.images.find((i) => same(i.name, name));
    if (existing) {
      const differs =
        existing.osType !== content.osType ||
        existing.hyperVGeneration !== content.hyperVGeneration ||
        !same(existing.identifier.publisher, content.identifier.publisher) ||
        !same(existing.identifier.offer, content.identifier.offer) ||
        !same(existing.identifier.sku, content.identifier.sku);
      if (differs)
        throw new ImageCatalogError(
          'Conflict',
          `Image definition '${existing.name}' of gallery '${gallery.name}' already exists with other properties; image definitions are immutable.`,
        );
      return { outcome: 'unchanged', gallery, image: existing };
    }
    const have = this.inSubscriptionRegion(gallery.subscription, gallery.location).reduce((n, x) => n + x.images.length, 0);
    if (have >= IMAGE_QUOTAS.imageDefinitionsPerSubscriptionRegion) {
      const limit = `the most it may (${IMAGE_QUOTAS.imageDefinitionsPerSubscriptionRegion})`;
      throw quotaExceeded(
        `Subscription '${gallery.subscription}' has ${have} image definitions in ${gallery.location}, ${limit}; image definition '${name}' was not created.`,
      );
    }
    const image: GalleryImageDefinition = {
      name,
      osType: content.osType,
      hyperVGeneration: content.hyperVGeneration,
      identifier: { ...content.identifier },
      versions: [],
    };
    gallery.images.push(image);
    gallery.images.sort((a, b) => a.name.toLowerCase().localeCompare(b.name.toLowerCase()));
    return { outcome: 'created', gallery, image };
  }

  /** Publishes a gallery image version (not yet replicated anywhere). */
  publishGalleryVersion(
    ref: { subscription: string; resourceGroup: string; gallery: string; image: string },
    version: string,
    content: GalleryVersionContent,
    atMs: number,
  ): { outcome: Outcome; gallery: Gallery; version: GalleryImageVersion } {
    checkVersion(version);
    const { gallery, image } = this.mustGalleryImage(ref);
    const existing = findVersion(image.versions, version);
    if (existing) {
      if (existing.version !== version)
        throw spelledOtherwise(existing.version, version, `image '${image.name}' in gallery '${gallery.name}'`);
      if (existing.excludeFromLatest !== content.excludeFromLatest) {
        const what = `Version '${existing.version}' of image '${image.name}' in gallery '${gallery.name}'`;
        throw new ImageCatalogError('Conflict', `${what} is already published with other content; published versions are immutable.`);
      }
      return { outcome: 'unchanged', gallery, version: existing };
    }
    const have = this.inSubscriptionRegion(gallery.subscription, gallery.location).reduce(
      (n, x) => n + x.images.reduce((m, d) => m + d.versions.length, 0),
      0,
    );
    if (have >= IMAGE_QUOTAS.imageVersionsPerSubscriptionRegion) {
      const limit = `the most it may (${IMAGE_QUOTAS.imageVersionsPerSubscriptionRegion})`;
      throw quotaExceeded(
        `Subscription '${gallery.subscription}' has ${have} gallery image versions in ${gallery.location}, ${limit}; version '${version}' was not published.`,
      );
    }
    const v: GalleryImageVersion = { version, publishedAtMs: atMs, replications: [], excludeFromLatest: content.excludeFromLatest };
    insertSorted(image.versions, v);
    return { outcome: 'created', gallery, version: v };
  }

  // ---- replication ----

  /**
   * Records a replication of a concrete version to a region: `completedAtMs` null starts it (under way),
   * an instant completes it then. A completed replication is history: completing it again at the same
   * instant is `unchanged`, at another instant (or "un-completing" it) a `Conflict`.
   */
  replicate(
    ref: ImageRef,
    region: string,
    completedAtMs: number | null,
  ): { outcome: Outcome; version: ImageVersionRecord; replication: Replication } {
    const v = this.findExactVersion(ref);
    if (completedAtMs !== null && completedAtMs < v.publishedAtMs) {
      throw new ImageCatalogError(
        'InvalidReplication',
        `A replication of version '${v.version}' cannot complete before the version was published (${new Date(v.publishedAtMs).toISOString()}).`,
      );
    }
    const key = regionKey(region);
    const existing = v.replications.find((r) => r.region === key);
    if (!existing) {
      const replication = { region: key, completedAtMs };
      v.replications.push(replication);
      v.replications.sort((a, b) => a.region.localeCompare(b.region));
      return { outcome: 'created', version: v, replication };
    }
    if (existing.completedAtMs === completedAtMs) return { outcome: 'unchanged', version: v, replication: existing };
    if (existing.completedAtMs === null) {
      existing.completedAtMs = completedAtMs;
      return { outcome: 'updated', version: v, replication: existing };
    }
    throw new ImageCatalogError(
      'Conflict',
      `The replication of version '${v.version}' to ${key} completed at ${new Date(existing.completedAtMs).toISOString()}; a completed replication cannot be changed.`,
    );
  }

  // ---- withdrawals ----

  /** Marks a published version withdrawn (idempotent). Throws an ImageCatalogError when it is not published. */
  withdraw(ref: ImageRef): void {
    const v = this.findExactVersion(ref);
    this.withdrawnSet.add(withdrawnKey(ref, v.version));
  }

  isWithdrawn(ref: ImageRef, version: string): boolean {
    if (this.withdrawnSet.size === 0 || !isImageVersion(version)) return false;
    return this.withdrawnSet.has(withdrawnKey(ref, version));
  }

  /** The published record of the concrete version a reference names, or undefined (the image or the version is not there). */
  publishedVersion(ref: ImageRef): ImageVersionRecord | undefined {
    try {
      return this.findExactVersion(ref);
    } catch (err) {
      if (err instanceof ImageCatalogError) return undefined;
      throw err;
    }
  }

  // ---- queries ----

  /** Every version of the image a reference points at (its version part ignored), oldest first. */
  versionsOf(ref: ImageRef): ImageVersionRecord[] {
    if (ref.kind === 'platform') return this.mustPlatform(ref).versions;
    if (ref.kind === 'gallery') return this.mustGalleryImage(ref).image.versions;
    throw unsupported(ref);
  }

  /**
   * The concrete version an `imageReference` stands for in `region` at `atMs`: `latest` is the newest
   * version available there (R64); a pinned version must exist and be available there. Throws an
   * `ImageCatalogError` naming what is missing.
   */
  resolve(ref: ImageRef, region: string, atMs: number): ResolvedImage {
    if (ref.kind === 'platform') {
      const img = this.mustPlatform(ref);
      const v = pick(img.versions, ref.version, region, atMs, describePlatform(img), (x) => this.isWithdrawn(ref, x.version));
      return {
        kind: 'platform',
        version: v.version,
        followsLatest: isLatest(ref.version),
        osType: v.osType,
        hyperVGeneration: v.hyperVGeneration,
        availableSinceMs: availableFromMs(v, region)!,
        automaticOSUpgradeSupported: v.automaticOSUpgradeSupported,
      };
    }
    if (ref.kind === 'gallery') {
      const { gallery, image } = this.mustGalleryImage(ref);
      const what = `gallery image ${galleryIdOf(gallery.subscription, gallery.resourceGroup, gallery.name)}/images/${image.name}`;
      const v = pick(image.versions, ref.version, region, atMs, what, (x) => this.isWithdrawn(ref, x.version));
      return {
        kind: 'gallery',
        version: v.version,
        followsLatest: isLatest(ref.version),
        osType: image.osType,
        hyperVGeneration: image.hyperVGeneration,
        availableSinceMs: availableFromMs(v, region)!,
        automaticOSUpgradeSupported: true,
      };
    }
    throw unsupported(ref);
  }

  /**
   * The first instant after `afterMs` at which a version of the referenced image becomes available in
   * `region`, or null if none is scheduled: when a rollout planner should look at `latest` again.
   */
  nextAvailabilityAfter(ref: ImageRef, region: string, afterMs: number): number | null {
    let next: number | null = null;
    for (const v of this.versionsOf(ref)) {
      const from = availableFromMs(v, region);
      if (from !== null && from > afterMs && (next === null || from < next)) next = from;
    }
    return next;
  }

  // ---- persistence ----

  toJSON(): ImageCatalogJson {
    return structuredClone({ platform: this.platformImages(), galleries: this.galleries() });
  }

  static fromJSON(json: ImageCatalogJson): ImageCatalog {
    const c = new ImageCatalog();
    for (const img of structuredClone(json.platform)) {
      img.versions.sort((a, b) => compareImageVersions(a.version, b.version));
      c.platform.set(platformKey(img.publisher, img.offer, img.sku), img);
    }
    for (const g of structuredClone(json.galleries)) {
      for (const i of g.images) i.versions.sort((a, b) => compareImageVersions(a.version, b.version));
      c.galleryMap.set(galleryIdOf(g.subscription, g.resourceGroup, g.name).toLowerCase(), g);
    }
    return c;
  }

  /** The galleries of a subscription whose home is `region` (normalised): the scope of Azure's gallery quotas. */
  private inSubscriptionRegion(subscription: string, region: string): Gallery[] {
    return this.galleries().filter((x) => same(x.subscription, subscription) && x.location === region);
  }

  // ---- lookups that name what is missing ----

  private mustPlatform(ref: { publisher: string; offer: string; sku: string }): PlatformImage {
    const img = this.platform.get(platformKey(ref.publisher, ref.offer, ref.sku));
    if (img) return img;
    const all = this.platformImages();
    if (!all.some((i) => same(i.publisher, ref.publisher)))
      throw new ImageCatalogError('PublisherNotFound', `The image publisher '${ref.publisher}' has no images in the catalog.`);
    if (!all.some((i) => same(i.publisher, ref.publisher) && same(i.offer, ref.offer)))
      throw new ImageCatalogError('OfferNotFound', `The publisher '${ref.publisher}' has no offer '${ref.offer}'.`);
    throw new ImageCatalogError('SkuNotFound', `The offer '${ref.publisher}:${ref.offer}' has no sku '${ref.sku}'.`);
  }

  private mustGallery(ref: { subscription: string; resourceGroup: string; gallery: string }): Gallery {
    const g = this.gallery(ref.subscription, ref.resourceGroup, ref.gallery);
    if (!g)
      throw new ImageCatalogError(
        'GalleryNotFound',
        `The gallery ${galleryIdOf(ref.subscription, ref.resourceGroup, ref.gallery)} is not in the catalog.`,
      );
    return g;
  }

  private mustGalleryImage(ref: { subscription: string; resourceGroup: string; gallery: string; image: string }): {
    gallery: Gallery;
    image: GalleryImageDefinition;
  } {
    const gallery = this.mustGallery(ref);
    const image = gallery.images.find((i) => same(i.name, ref.image));
    if (!image)
      throw new ImageCatalogError('ImageDefinitionNotFound', `The gallery '${gallery.name}' has no image definition '${ref.image}'.`);
    return { gallery, image };
  }

  private findExactVersion(ref: ImageRef): ImageVersionRecord {
    if (ref.kind !== 'platform' && ref.kind !== 'gallery') throw unsupported(ref);
    if (isLatest(ref.version)) throw new ImageCatalogError('InvalidVersion', "A replication is of a concrete version, not of 'latest'.");
    const v = findVersion(this.versionsOf(ref), ref.version);
    if (!v) throw new ImageCatalogError('VersionNotFound', `Version '${ref.version}' is not published for this image.`);
    return v;
  }
}

// ---- helpers ---------------------------------------------------------------------------------------------

const quotaExceeded = (message: string) => new ImageCatalogError('QuotaExceeded', message);

/**
 * `1.0.0` asked where `01.0.0` is published: the same version (parts compare as numbers), which was refused as
 * "already published with other content" though the content was the same; the conflict is the spelling.
 */
function spelledOtherwise(published: string, asked: string, what: string): ImageCatalogError {
  const why = 'the parts of a version compare as numbers, so the two are one version';
  return new ImageCatalogError('Conflict', `Version '${asked}' of ${what} is published as '${published}' (${why}); use '${published}' or publish a new version.`);
}

function checkVersion(version: string): void {
  if (!isImageVersion(version)) throw new ImageCatalogError('InvalidVersion', `'${version}' is not an image version: expected three dot-separated integers such as 22.04.202601010.`);
}

function findVersion<V extends VersionBase>(versions: readonly V[], version: string): V | undefined {
  if (!isImageVersion(version)) return undefined;
  return versions.find((v) => compareImageVersions(v.version, version) === 0);
}

function insertSorted<V extends VersionBase>(versions: V[], v: V): void {
  versions.push(v);
  versions.sort((a, b) => compareImageVersions(a.version, b.version));
}

/** Which image a reference names, whatever its version part says (the key of its withdrawals). */
function withdrawnKey(ref: ImageRef, version: string): string {
  const id = ref.kind === 'platform' ? `platform:${platformKey(ref.publisher, ref.offer, ref.sku)}`
    : ref.kind === 'gallery' ? `gallery:${galleryIdOf(ref.subscription, ref.resourceGroup, ref.gallery)}/${ref.image}`.toLowerCase() : `other:${ref.kind}`;
  return `${id}@${version.split('.').map((p) => String(Number(p))).join('.')}`;
}

function pick<V extends VersionBase>(versions: readonly V[], requested: string, region: string, atMs: number, what: string, withdrawn: (v: V) => boolean): V {
  if (isLatest(requested)) {
    const v = newestAvailable(versions, region, atMs, withdrawn);
    if (!v) throw new ImageCatalogError('NoVersionInRegion', `No version of ${what} is available in ${regionKey(region)} yet.`);
    return v;
  }
  const v = findVersion(versions, requested);
  if (!v) throw new ImageCatalogError('VersionNotFound', `Version '${requested}' of ${what} is not published.`);
  if (!isAvailable(v, region, atMs)) throw new ImageCatalogError('NotReplicated', `Version '${v.version}' of ${what} is not replicated to ${regionKey(region)}.`);
  return v;
}

function describePlatform(img: PlatformImage): string {
  return `${img.publisher}:${img.offer}:${img.sku}`;
}

function unsupported(ref: ImageRef): ImageCatalogError {
  const what =
    ref.kind === 'sharedGallery'
      ? 'shared gallery images (sharedGalleryImageId)'
      : ref.kind === 'communityGallery'
        ? 'community gallery images (communityGalleryImageId)'
        : 'managed images';
  return new ImageCatalogError('UnsupportedReference', `The image catalog holds platform and gallery images only; ${what} are not in it and automatic OS upgrade does not support them.`);
}
