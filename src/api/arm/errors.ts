/**
 * ARM error bodies. Every non-2xx answer is `{"error":{"code","message","target?","details?"}}`, so the
 * Azure SDKs raise a `RestError` whose `code` says what is wrong and whose message says where.
 */
export interface ArmErrorDetail {
  code: string;
  message: string;
  target?: string;
}

export class ArmError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly target?: string,
    readonly details: ArmErrorDetail[] = [],
  ) {
    super(message);
  }

  body(): { error: { code: string; message: string; target?: string; details: ArmErrorDetail[] } } {
    return { error: { code: this.code, message: this.message, ...(this.target ? { target: this.target } : {}), details: this.details } };
  }
}

export const badRequest = (code: string, message: string, target?: string, details?: ArmErrorDetail[]) => new ArmError(400, code, message, target, details);
export const invalidParameter = (target: string, message: string) => new ArmError(400, 'InvalidParameter', `${target}: ${message}`, target);
export const notFound = (code: string, message: string) => new ArmError(404, code, message);
export const conflict = (code: string, message: string) => new ArmError(409, code, message);
