/**
 * A scale set's `imageReference` as Azure takes it, parsed into what it points at: a platform image
 * (publisher, offer, sku, version or `latest`), a gallery image definition or version (`id`), a shared or
 * community gallery image, or a managed image. Pure: no catalog lookup happens here.
 */

/** The wire shape (`reference/azure-api.md` §4); `exactVersion` is read-only and ignored on input. */
export interface ImageReferenceInput {
  publisher?: string;
  offer?: string;
  sku?: string;
  version?: string;
  id?: string;
  sharedGalleryImageId?: string;
  communityGalleryImageId?: string;
}

export const LATEST = 'latest';

export type ImageRef =
  | { kind: 'platform'; publisher: string; offer: string; sku: string; version: string }
  | { kind: 'gallery'; subscription: string; resourceGroup: string; gallery: string; image: string; version: string }
  | { kind: 'managedImage'; id: string }
  | { kind: 'sharedGallery'; id: string }
  | { kind: 'communityGallery'; id: string };

/** Why an `imageReference` cannot be read at all; `field` is the property at fault. */
export class ImageReferenceFormatError extends Error {
  constructor(readonly field: string, message: string) {
    super(message);
  }
}

const GALLERY_ID = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.Compute\/galleries\/([^/]+)\/images\/([^/]+)(?:\/versions\/([^/]+))?\/?$/i;
const MANAGED_IMAGE_ID = /^\/subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/Microsoft\.Compute\/images\/[^/]+\/?$/i;

export const isLatest = (version: string) => version.toLowerCase() === LATEST;

/** Reads a reference; exactly one of the platform fields, `id`, `sharedGalleryImageId` or `communityGalleryImageId` must say what the image is. */
export function parseImageReference(input: ImageReferenceInput): ImageRef {
  const platform = input.publisher !== undefined || input.offer !== undefined || input.sku !== undefined;
  const sources = [
    platform && 'publisher/offer/sku',
    input.id !== undefined && 'id',
    input.sharedGalleryImageId !== undefined && 'sharedGalleryImageId',
    input.communityGalleryImageId !== undefined && 'communityGalleryImageId',
  ].filter(Boolean);
  if (sources.length === 0) throw new ImageReferenceFormatError('imageReference', 'the image reference names no image: give publisher, offer and sku, or an id.');
  if (sources.length > 1) throw new ImageReferenceFormatError('imageReference', `the image reference names its image twice (${sources.join(' and ')}); give only one.`);
  if (platform) {
    for (const f of ['publisher', 'offer', 'sku'] as const) {
      if (!input[f]) throw new ImageReferenceFormatError(f, `${f} is required for a platform image (publisher, offer and sku together).`);
    }
    return { kind: 'platform', publisher: input.publisher!, offer: input.offer!, sku: input.sku!, version: input.version ?? LATEST };
  }
  if (input.id !== undefined) {
    const m = GALLERY_ID.exec(input.id);
    if (m) {
      if (input.version !== undefined) throw new ImageReferenceFormatError('version', 'version goes into the gallery image id (…/images/{image}/versions/{version}), not beside it.');
      return { kind: 'gallery', subscription: m[1]!, resourceGroup: m[2]!, gallery: m[3]!, image: m[4]!, version: m[5] ?? LATEST };
    }
    if (MANAGED_IMAGE_ID.test(input.id)) return { kind: 'managedImage', id: input.id };
    throw new ImageReferenceFormatError('id', `'${input.id}' is neither a gallery image id (/subscriptions/…/providers/Microsoft.Compute/galleries/{gallery}/images/{image}[/versions/{version}]) nor a managed image id.`);
  }
  if (input.sharedGalleryImageId !== undefined) return { kind: 'sharedGallery', id: input.sharedGalleryImageId };
  return { kind: 'communityGallery', id: input.communityGalleryImageId! };
}

/** `true` for the references automatic OS upgrade and `osRollingUpgrade` accept: a platform or gallery image at `latest`. */
export function followsLatest(ref: ImageRef): boolean {
  return (ref.kind === 'platform' || ref.kind === 'gallery') && isLatest(ref.version);
}

/** The gallery's resource id, as its key. */
export function galleryIdOf(subscription: string, resourceGroup: string, gallery: string): string {
  return `/subscriptions/${subscription}/resourceGroups/${resourceGroup}/providers/Microsoft.Compute/galleries/${gallery}`;
}

/** The wire shape of a parsed reference: `parseImageReference(referenceInputOf(r))` gives `r` back. */
export function referenceInputOf(ref: ImageRef): ImageReferenceInput {
  switch (ref.kind) {
    case 'platform': return { publisher: ref.publisher, offer: ref.offer, sku: ref.sku, version: ref.version };
    case 'gallery': {
      const base = `${galleryIdOf(ref.subscription, ref.resourceGroup, ref.gallery)}/images/${ref.image}`;
      return { id: isLatest(ref.version) ? base : `${base}/versions/${ref.version}` };
    }
    case 'managedImage': return { id: ref.id };
    case 'sharedGallery': return { sharedGalleryImageId: ref.id };
    case 'communityGallery': return { communityGalleryImageId: ref.id };
  }
}

/** What an image reference upgrades: a platform sku, or a gallery image definition. Null for other images. */
export function imageArtifact(ref: ImageRef): { kind: 'osImage'; publisher: string; offer: string; sku: string } | null {
  if (ref.kind === 'platform') return { kind: 'osImage', publisher: ref.publisher, offer: ref.offer, sku: ref.sku };
  if (ref.kind === 'gallery') return { kind: 'osImage', publisher: `gallery:${ref.subscription}/${ref.resourceGroup}/${ref.gallery}`, offer: ref.image, sku: '' };
  return null;
}

/**
 * The reference to one version of the image an OS image artifact follows: the inverse of `imageArtifact`
 * (a gallery image's artifact names its gallery in `publisher` as `gallery:sub/rg/name`).
 */
export function imageRefOfArtifact(a: { publisher: string; offer: string; sku: string }, version: string): Extract<ImageRef, { kind: 'platform' | 'gallery' }> {
  if (a.publisher.startsWith('gallery:')) {
    const [subscription = '', resourceGroup = '', gallery = ''] = a.publisher.slice('gallery:'.length).split('/');
    return { kind: 'gallery', subscription, resourceGroup, gallery, image: a.offer, version };
  }
  return { kind: 'platform', publisher: a.publisher, offer: a.offer, sku: a.sku, version };
}
