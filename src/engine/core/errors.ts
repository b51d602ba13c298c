/** The error a refused command throws; nothing changed. */

export type FleetErrorCode = 'Conflict' | 'NotFound' | 'VersionNotFound' | 'InvalidFleet';

/** A fleet command refused; nothing changed. `target` names the field or resource at fault. */
export class FleetError extends Error {
  constructor(readonly code: FleetErrorCode, message: string, readonly target: string | null = null) {
    super(message);
    this.name = 'FleetError';
  }
}

/**
 * The engine stopped advancing: a commit failed (the disk, not a request's data) or a step threw.
 * Its memory may be ahead of the store until it is resynchronised from the store (`Engine.resync`).
 */
export class EngineHaltedError extends Error {
  constructor(readonly reason: string) {
    super(`the engine is not advancing (${reason}); nothing of this request was applied`);
    this.name = 'EngineHaltedError';
  }
}
