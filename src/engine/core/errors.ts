/** The error a refused command throws; nothing changed. */

export type FleetErrorCode = 'Conflict' | 'NotFound' | 'VersionNotFound' | 'InvalidFleet';

/** A fleet command refused; nothing changed. `target` names the field or resource at fault. */
export class FleetError extends Error {
  constructor(readonly code: FleetErrorCode, message: string, readonly target: string | null = null) {
    super(message);
    this.name = 'FleetError';
  }
}
