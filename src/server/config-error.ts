/** A configuration of `serve` that cannot run: one line saying what to fix (the CLI exits with code 2). */
export class ConfigError extends Error {}
