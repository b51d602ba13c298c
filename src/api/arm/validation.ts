/**
 * Request bodies are checked against schemas before anything changes. The first problem becomes the
 * error's message and target (`properties.typeHandlerVersion`); every problem is listed in details.
 */
import { z } from 'zod';
import { badRequest } from './errors.js';
import { RESOURCE_GROUP_NAME } from './ids.js';

export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  if (body === undefined || body === null) throw badRequest('InvalidRequestContent', 'The request body is missing; expected a JSON object.');
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const details = r.error.issues.map((i) => {
    const target = i.path.map(String).join('.') || '(body)';
    const armCode = i.code === 'custom' && typeof i.params?.armCode === 'string' ? i.params.armCode : 'InvalidParameter';
    return { code: armCode, target, message: `${target}: ${describeIssue(i)}` };
  });
  const first = details[0]!;
  throw badRequest(first.code, first.message, first.target, details);
}

function describeIssue(i: z.core.$ZodIssue): string {
  if (i.code === 'unrecognized_keys') return `unknown propert${i.keys.length > 1 ? 'ies' : 'y'} ${i.keys.map((k) => `'${k}'`).join(', ')}`;
  if (i.code === 'invalid_value') return `expected one of ${i.values.map((v) => JSON.stringify(v)).join(', ')}`;
  return i.message;
}

/** A version prefix as `typeHandlerVersion` takes it: 1 to 4 dot-separated numbers. */
export const versionPrefix = z.string().regex(/^(0|[1-9]\d{0,8})(\.(0|[1-9]\d{0,8})){0,3}$/, 'expected a version such as 1.30 or 1.30.2.0 (numbers without leading zeros)');
/** A full four-part version as published. */
export const fullVersion = z.string().regex(/^(0|[1-9]\d{0,8})(\.(0|[1-9]\d{0,8})){3}$/, 'expected a four-part version such as 1.31.0.0 (numbers without leading zeros)');
/**
 * C0 and C1 control characters (line breaks, tabs, terminal escapes), Unicode's line and paragraph
 * separators (U+2028, U+2029: a second line too), and the bidirectional overrides and isolates that make
 * text read otherwise than it is stored (U+202A–U+202E, U+2066–U+2069).
 */
const CONTROL_OR_BIDI = /[\u0000-\u001f\u007f-\u009f\u2028-\u202e\u2066-\u2069]/;

/**
 * One line of plain text of at most `max` characters, shown to other operators on the dashboard, in the CLI's
 * tables, the activity log and the server's log lines (docs/api.md#rollout-controls).
 */
export function oneLineText(max: number, what: string) {
  return z.string().min(1).max(max).refine((t) => !CONTROL_OR_BIDI.test(t),
    `${what} is one line of text: control characters (line breaks, tabs, escapes), line separators (U+2028, U+2029) and bidirectional overrides (U+202A-U+202E, U+2066-U+2069) are not accepted`);
}

/** An operator's reason (pause, cancel, hold, withdraw). */
export const operatorReason = oneLineText(1000, 'a reason');

/**
 * A VM's or scale-set model's `osProfile`: the fields ARM types as strings are strings (the secrets among
 * them are sealed as sent, write-only.ts, so a number or object was kept as the password unseen); the
 * rest is kept as sent.
 */
export const osProfile = z.object({
  computerName: z.string().optional(), computerNamePrefix: z.string().optional(), adminUsername: z.string().optional(),
  adminPassword: z.string().optional(), customData: z.string().optional(),
}).passthrough();

/** ARM's bounds of a resource's tags (docs/api.md#tags). */
export const TAG_LIMITS = { count: 50, nameLength: 512, valueLength: 256 } as const;
/** Characters ARM reserves in tag names, and the control characters it refuses there too. */
const TAG_NAME_RESERVED = /[<>%&\\?/]/;
const TAG_NAME_CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
/** Names ARM lets keep the reserved characters (`hidden-link:/subscriptions/…`, `link:…`); control characters never. */
const TAG_NAME_LINK = /^(hidden-|link:)/i;

/** A tag problem as an issue that parseBody answers with ARM's own code instead of InvalidParameter. */
function tagIssue(ctx: z.core.$RefinementCtx, armCode: string, message: string, path: PropertyKey[]): void {
  ctx.addIssue({ code: 'custom', message, path, params: { armCode } });
}

/**
 * A resource's tags as ARM takes them: at most 50; names of 1 to 512 characters without `< > % & \ ? /` (but
 * in names starting `hidden-` or `link:`) or control characters; values of at most 256. Names are one tag
 * whatever their case, so two differing only by case are refused rather than one kept unseen. `null` (JSON
 * merge patch's "remove") is no tags: a PUT's none, a PATCH's clearing them.
 */
export const tags = z.record(z.string(), z.string()).superRefine((t, ctx) => {
  const names = Object.keys(t);
  if (names.length > TAG_LIMITS.count) {
    tagIssue(ctx, 'InvalidTags', `Too many tags: ${names.length} given, at most ${TAG_LIMITS.count} are allowed.`, []);
    return;
  }
  const seen = new Map<string, string>();
  for (const name of names) {
    const shown = JSON.stringify(name.length > 64 ? `${name.slice(0, 64)}…` : name);
    if (name.length === 0) tagIssue(ctx, 'InvalidTagName', 'A tag name is empty; tag names have 1 to 512 characters.', [name]);
    else if (name.length > TAG_LIMITS.nameLength) tagIssue(ctx, 'InvalidTagName', `The tag name ${shown} has ${name.length} characters; at most ${TAG_LIMITS.nameLength} are allowed.`, [name]);
    else if (TAG_NAME_CONTROL.test(name) || (TAG_NAME_RESERVED.test(name) && !TAG_NAME_LINK.test(name))) {
      tagIssue(ctx, 'InvalidTagNameCharacters', `The tag name ${shown} has reserved characters '<,>,%,&,\\,?,/' or control characters; `
        + "only names starting 'hidden-' or 'link:' may have the reserved ones.", [name]);
    }
    const value = t[name]!;
    if (value.length > TAG_LIMITS.valueLength) {
      tagIssue(ctx, 'InvalidTagValueLength', `The value of tag ${shown} has ${value.length} characters; at most ${TAG_LIMITS.valueLength} are allowed.`, [name]);
    }
    const key = name.toLowerCase();
    const other = seen.get(key);
    if (other === undefined) seen.set(key, name);
    else tagIssue(ctx, 'InvalidTags', `The tag names ${JSON.stringify(other)} and ${shown} differ only by case; tag names are case-insensitive, so they name one tag: give it once.`, [name]);
  }
}).nullable().transform((t) => t ?? {});
export const jsonObject = z.record(z.string(), z.unknown());
/** Location names: ARM's are lower-case letters and digits (`westus2`); any casing is accepted. */
export const locationName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9 -]{0,63}$/, 'expected a location name such as westus');
/** ARM's rule for a resource group name (ids.ts): also what enrollment tokens and agents may name. */
export const resourceGroupName = z.string().regex(RESOURCE_GROUP_NAME, "a resource group name: 1-90 letters, digits, '-', '_', '.', '(' or ')', not ending in '.'");
/** Serialized size of an extension's settings or protected settings (docs/api.md#limits). */
export const MAX_SETTINGS_BYTES = 64 * 1024;
/** Extension settings: a JSON object of at most MAX_SETTINGS_BYTES once serialized. */
export const settingsObject = jsonObject.refine(
  (v) => Buffer.byteLength(JSON.stringify(v)) <= MAX_SETTINGS_BYTES,
  `larger than ${MAX_SETTINGS_BYTES} bytes as JSON (limit maxSettingsBytes)`,
);

/**
 * The bounds of an extension's plain properties, one definition for machines' extensions and a scale
 * set's model alike: a model once took a 32 KiB forceUpdateTag and 20,000 provisionAfterExtensions that
 * the same extension written on a machine refuses.
 */
export const extensionName = z.string().min(1).max(256);
export const forceUpdateTag = z.string().max(256);
export const provisionAfterExtensions = z.array(z.string().max(256)).max(50);
