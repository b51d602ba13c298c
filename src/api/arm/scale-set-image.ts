/**
 * A scale set's `imageReference` checked against the image catalog, and the automatic OS upgrade
 * policy checked against the image (R63: the policy is its own setting, apart from the upgrade mode).
 *
 * Which references are checked (docs/api-catalog.md, "Scale sets and the image catalog"):
 * - a gallery image (`id` …/galleries/{g}/images/{def}[/versions/{v}]) always: Phasewise holds every
 *   gallery, so an unknown gallery, definition or version, or one not replicated to the set's region
 *   (R64), is refused with Azure's `GalleryImageNotFound` (404);
 * - a platform image (publisher, offer, sku) when the catalog holds any image of that publisher: an
 *   unknown offer, sku or version, or one not available in the region, is `PlatformImageNotFound` (404);
 * - anything else (a publisher the catalog has never seen, a managed image, a shared or community
 *   gallery image) is stored as sent and left unmanaged: no `exactVersion`, and automatic OS upgrade
 *   cannot be enabled on it, since there is no catalog to follow.
 */
import {
  ImageReferenceFormatError, followsLatest, parseImageReference,
} from '../../model/image-reference.js';
import type { ImageRef, ImageReferenceInput } from '../../model/image-reference.js';
import { ImageCatalogError } from '../../catalog/images.js';
import type { AutomaticOSUpgradePolicy } from '../../model/upgrade-policy.js';
import type { ArmContext } from './context.js';
import { ArmError, badRequest } from './errors.js';

const TARGET = 'properties.virtualMachineProfile.storageProfile.imageReference';
const OS_POLICY_TARGET = 'properties.upgradePolicy.automaticOSUpgradePolicy.enableAutomaticOSUpgrade';

/** What the API keeps of a set's image beside the reference the client sent. */
export interface SetImage {
  /** The concrete version the reference resolved to when it was set (Azure's read-only `exactVersion`). */
  exactVersion: string | null;
  /** The catalog holds the image, so automatic OS upgrade can follow it. */
  managed: boolean;
  /** A platform or gallery image at `latest`. */
  followsLatest: boolean;
  /** A platform image whose versions say automatic OS upgrade does not support them. */
  osUpgradeUnsupported?: boolean;
}

/** Checks a reference for a set in `region`; null when the set names no image. Throws the ARM error Azure gives. */
export function checkImageReference(ctx: ArmContext, input: ImageReferenceInput | undefined, region: string): SetImage | null {
  if (input === undefined) return null;
  let ref: ImageRef;
  try {
    ref = parseImageReference(input);
  } catch (err) {
    if (err instanceof ImageReferenceFormatError) {
      const target = err.field === 'imageReference' ? TARGET : `${TARGET}.${err.field}`;
      throw badRequest('InvalidParameter', `${target}: ${err.message}`, target);
    }
    throw err;
  }
  const catalog = ctx.images.catalog;
  const managed = ref.kind === 'gallery' || (ref.kind === 'platform' && catalog.hasPublisher(ref.publisher));
  if (!managed) {
    const pinned = ref.kind === 'platform' && !followsLatest(ref) ? ref.version : null;
    return { exactVersion: pinned, managed: false, followsLatest: followsLatest(ref) };
  }
  try {
    const r = catalog.resolve(ref, region, ctx.runtime.clock.now());
    return { exactVersion: r.version, managed: true, followsLatest: r.followsLatest, ...(r.automaticOSUpgradeSupported ? {} : { osUpgradeUnsupported: true }) };
  } catch (err) {
    if (err instanceof ImageCatalogError) throw imageNotFound(ref, region, err);
    throw err;
  }
}

function imageNotFound(ref: ImageRef, region: string, err: ImageCatalogError): ArmError {
  const detail = [{ code: err.code, message: err.message, target: TARGET }];
  if (ref.kind === 'gallery') {
    const id = `/subscriptions/${ref.subscription}/resourceGroups/${ref.resourceGroup}/providers/Microsoft.Compute/galleries/${ref.gallery}/images/${ref.image}${ref.version.toLowerCase() === 'latest' ? '' : `/versions/${ref.version}`}`;
    const hint = err.code === 'NotReplicated' || err.code === 'NoVersionInRegion' ? ' Please contact image owner to replicate to this region, or change your requested region.' : '';
    return new ArmError(404, 'GalleryImageNotFound', `The gallery image ${id} is not available in ${region} region.${hint} (${err.message})`, TARGET, detail);
  }
  const name = ref.kind === 'platform' ? `${ref.publisher}:${ref.offer}:${ref.sku}:${ref.version}` : ref.kind;
  return new ArmError(404, 'PlatformImageNotFound', `The platform image '${name}' is not available. Verify that all fields in the storage profile are correct. (${err.message})`, TARGET, detail);
}

/**
 * R63: `enableAutomaticOSUpgrade` is accepted with any upgrade mode, but only on an image automatic
 * OS upgrade can follow: a platform or gallery image the catalog holds, at `latest`.
 */
export function checkAutomaticOSUpgrade(policy: AutomaticOSUpgradePolicy, image: SetImage | null): void {
  if (!policy.enableAutomaticOSUpgrade) return;
  const why = image === null ? 'the scale set names no image (virtualMachineProfile.storageProfile.imageReference)'
    : !image.managed ? 'its image is not a platform or gallery image in the image catalog'
      : !image.followsLatest ? "its imageReference pins a version; automatic OS upgrade needs version 'latest'"
        : image.osUpgradeUnsupported ? 'its platform image does not support automatic OS upgrade (automaticOSUpgradeSupported is false)' : null;
  if (why) throw badRequest('InvalidParameter', `${OS_POLICY_TARGET}: automatic OS upgrade cannot be enabled on this scale set: ${why}.`, OS_POLICY_TARGET);
}

/** Two references name the same image (names without case; the read-only `exactVersion` ignored). */
export function sameReference(a: ImageReferenceInput | undefined, b: ImageReferenceInput | undefined): boolean {
  const norm = (r: ImageReferenceInput | undefined) => {
    if (!r) return '';
    const { publisher, offer, sku, version, id, sharedGalleryImageId, communityGalleryImageId } = r;
    return JSON.stringify([publisher, offer, sku, version, id, sharedGalleryImageId, communityGalleryImageId]).toLowerCase();
  };
  return norm(a) === norm(b);
}
