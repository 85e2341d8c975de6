/**
 * pyxis-cache as a library, in the order a rootfs lives through it:
 * config → identity → lock → unpack → publish (reuse) → collect → report (status).
 */
export { type Config, type ConfigSource, loadConfig, parseConfig } from "./lib/config/config.ts";
export { identify, type Image } from "./lib/images/identity.ts";
export { lockExclusive, tryLockExclusive } from "./lib/store/lock.ts";
export { unsquash } from "./lib/images/unpack.ts";
export { reuse, type Reused, type ReuseOptions } from "./lib/cache/reuse.ts";
export { collect, type Collection, type CollectOptions } from "./lib/cache/collect.ts";
export { type Status, status, type StatusEntry } from "./lib/reports/status.ts";
export { prepare } from "./lib/store/prepare.ts";
export { statfsUsage, type Usage, type UsageSource } from "./lib/os/usage.ts";
export { CacheError, NoSpaceError, UsageError } from "./lib/os/errors.ts";
export * as layout from "./lib/layout.ts";
