/**
 * The image catalog kept in `arm_documents`: one document per platform image (publisher/offer/sku, with
 * its versions and their replications) and one per gallery (with its image definitions and versions).
 * Every change writes the one document it touched, in the request's transaction.
 */
import type { Gallery, PlatformImage } from '../../catalog/images.js';
import { ImageCatalog } from '../../catalog/images.js';
import type { Documents } from './documents.js';

const ROOT = '/phasewise/images';
const platformDocId = (i: PlatformImage) => `${ROOT}/platform/${i.publisher}/${i.offer}/${i.sku}`;
const galleryDocId = (g: Gallery) => `${ROOT}/galleries/${g.subscription}/${g.resourceGroup}/${g.name}`;

export class ImageStore {
  private constructor(private readonly docs: Documents, readonly catalog: ImageCatalog) {}

  /** The catalog as last saved (empty on a new database). */
  static load(docs: Documents): ImageStore {
    const catalog = ImageCatalog.fromJSON({
      platform: docs.ofKind<PlatformImage>('platformImage').map((d) => d.body),
      galleries: docs.ofKind<Gallery>('gallery').map((d) => d.body),
    });
    return new ImageStore(docs, catalog);
  }

  savePlatformImage(image: PlatformImage): void {
    this.docs.put(platformDocId(image), ROOT, 'platformImage', image);
  }

  saveGallery(gallery: Gallery): void {
    this.docs.put(galleryDocId(gallery), ROOT, 'gallery', gallery);
  }
}
