/**
 * The image catalog as the API sees it: the engine's, so that publishing a version or completing a
 * replication is stored with the engine's state and starts the re-image rollouts it makes due (R60, R64).
 */
import type { ImageCatalog } from '../../catalog/images.js';
import type { Engine } from '../../engine/engine.js';

export class ImageStore {
  constructor(private readonly engine: Engine) {}

  get catalog(): ImageCatalog {
    return this.engine.state.images;
  }

  /** Changes the catalog through the engine; an ImageCatalogError leaves it as it was. */
  change<T>(fn: (catalog: ImageCatalog, nowMs: number) => T): T {
    return this.engine.updateImages(fn);
  }
}
