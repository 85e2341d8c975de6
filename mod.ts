/**
 * pyxis-cache as a library, in the order a rootfs lives through it:
 * config → identity → lock → unpack → publish (reuse) → collect → report (status).
 */
export { type Config, type ConfigSource, loadConfig, parseConfig } from "./lib/config.ts";
export { identify, type Image } from "./lib/identity.ts";
export { lockExclusive, tryLockExclusive } from "./lib/lock.ts";
export { unsquash } from "./lib/unpack.ts";
export { reuse, type Reused, type ReuseOptions } from "./lib/reuse.ts";
export { collect, type Collection, type CollectOptions } from "./lib/collect.ts";
export { type Status, status, type StatusEntry } from "./lib/status.ts";
export { prepare } from "./lib/prepare.ts";
export { statfsUsage, type Usage, type UsageSource } from "./lib/usage.ts";
export { CacheError, NoSpaceError, UsageError } from "./lib/errors.ts";
export * as layout from "./lib/layout.ts";
