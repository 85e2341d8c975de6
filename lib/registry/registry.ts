/**
 * Asks a registry which manifest a tag names now, as enroot 4.1.2 does (`enroot digest`):
 * the manifest's `Docker-Content-Digest`, asked with the Accept headers of the Docker v2
 * and OCI manifest and index types (without them a registry converts to schema 1 and
 * answers with that digest); a manifest list or index is followed to this machine's
 * architecture. Authentication as enroot does it with curl: anonymous unless
 * `ENROOT_CONFIG_PATH/.credentials` (netrc) has a line for the registry, then a Bearer
 * token from the realm the registry names, or Basic. Loaded only when a tag must be asked.
 */
import { CacheError, describe } from "../os/errors.ts";
import { MANIFEST_DIGEST } from "../layout.ts";
import type { Reference } from "./reference.ts";

const LIST_TYPES = [
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.oci.image.index.v1+json",
];
const MANIFEST_TYPES = [
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.oci.image.manifest.v1+json",
];
const ACCEPT = [...MANIFEST_TYPES, ...LIST_TYPES].join(", ");
/** How long one request may take before the registry counts as unreachable. */
const REQUEST_TIMEOUT_MS = 10_000;

/** The registry could not be asked (refused, unknown host, timeout, 5xx): a digest the node knows may serve. */
export class UnreachableError extends CacheError {
  override name = "UnreachableError";
}

export interface AskOptions {
  /** `ENROOT_ALLOW_HTTP` is set: plain http, as enroot then uses. */
  allowHttp: boolean;
  /** The text of `ENROOT_CONFIG_PATH/.credentials`, when there is one. */
  credentials?: string;
  /** Where it was read from, for messages. */
  credentialsFile?: string;
}

interface NetrcEntry {
  machine: string;
  login: string;
  password: string;
}

/** netrc as curl reads it: `machine HOST login USER password SECRET`, any whitespace between. */
export function parseNetrc(text: string): NetrcEntry[] {
  const words = text.split(/\s+/).filter(Boolean);
  const entries: NetrcEntry[] = [];
  let current: NetrcEntry | undefined;
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (word === "machine" || word === "default") {
      current = { machine: word === "machine" ? words[++i] ?? "" : "", login: "", password: "" };
      entries.push(current);
    } else if (current && (word === "login" || word === "password")) {
      current[word] = words[++i] ?? "";
    }
  }
  // enroot has the shell evaluate a password starting with '$'; we run no shell.
  return entries.filter((e) => !e.password.startsWith("$"));
}

function hostOf(registry: string): string {
  return registry.replace(/:\d+$/, "");
}

/**
 * The login and password for `host`, when enroot would send any: only when the file
 * has a line for the registry (with the reference's user, if it names one); then curl
 * takes the line for the host it asks (the token realm's may be another).
 */
function credentialsFor(entries: NetrcEntry[], ref: Reference, host: string): NetrcEntry | undefined {
  const registry = hostOf(ref.registry);
  const ours = entries.find((e) => e.machine === registry && (ref.user === undefined || e.login === ref.user));
  if (!ours) return undefined;
  const user = ref.user ?? ours.login;
  const forHost = entries.filter((e) => e.machine === host);
  return forHost.find((e) => e.login === user) ?? forHost[0];
}

function basic(entry: NetrcEntry): string {
  return `Basic ${btoa(`${entry.login}:${entry.password}`)}`;
}

class Client {
  private authorization?: string;
  private readonly entries: NetrcEntry[];

  constructor(private readonly ref: Reference, private readonly options: AskOptions) {
    this.entries = options.credentials ? parseNetrc(options.credentials) : [];
  }

  private async request(url: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.authorization && !headers.has("authorization")) headers.set("authorization", this.authorization);
    try {
      return await fetch(url, {
        ...init,
        headers,
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (error) {
      // Deno says "fetch failed" and puts what failed (refused, dns error, ...) in the cause.
      const cause = (error as { cause?: unknown }).cause;
      const why = error instanceof DOMException && error.name === "TimeoutError"
        ? "timed out"
        : describe(cause instanceof Error ? cause : error).replace(/^error sending request for url \([^)]*\): /, "");
      throw new UnreachableError(`cannot reach registry ${this.ref.registry}: ${why}`);
    }
  }

  /** Answers a 401 as enroot does: a token from the realm the registry names, or Basic credentials. */
  private async authenticate(challenge: string): Promise<void> {
    const scheme = challenge.split(/\s/, 1)[0]!.toLowerCase();
    const params = Object.fromEntries(
      Array.from(challenge.matchAll(/(\w+)="([^"]*)"/g), (m) => [m[1]!.toLowerCase(), m[2]!]),
    );
    if (scheme === "basic") {
      const entry = credentialsFor(this.entries, this.ref, hostOf(this.ref.registry));
      if (!entry) {
        const file = this.options.credentialsFile ?? ".credentials";
        throw new CacheError(
          `registry ${this.ref.registry} wants credentials: none for ${hostOf(this.ref.registry)} in ${file}`,
        );
      }
      this.authorization = basic(entry);
      return;
    }
    if (scheme !== "bearer" || !params.realm) {
      throw new CacheError(`registry ${this.ref.registry}: unsupported authentication: ${challenge}`);
    }
    const realm = new URL(params.realm);
    for (const [key, value] of Object.entries(params)) if (key !== "realm") realm.searchParams.set(key, value);
    const entry = credentialsFor(this.entries, this.ref, realm.hostname);
    const response = await this.request(realm.href, { headers: entry ? { authorization: basic(entry) } : {} });
    if (response.status >= 500) {
      throw new UnreachableError(`registry ${this.ref.registry}: token server answered ${response.status}`);
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new CacheError(
        `registry ${this.ref.registry}: credentials refused (${response.status} from ${realm.host})`,
      );
    }
    const body = await response.json().catch(() => ({}));
    const token = body?.token ?? body?.access_token;
    if (typeof token !== "string") throw new CacheError(`registry ${this.ref.registry}: no token from ${realm.host}`);
    this.authorization = `Bearer ${token}`;
  }

  /** A manifest request, authenticated on the registry's demand. */
  async manifest(method: "HEAD" | "GET", reference: string): Promise<Response> {
    const scheme = this.options.allowHttp ? "http" : "https";
    const url = `${scheme}://${this.ref.registry}/v2/${this.ref.repository}/manifests/${reference}`;
    let response = await this.request(url, { method, headers: { accept: ACCEPT } });
    const challenge = response.headers.get("www-authenticate");
    if (response.status === 401 && challenge && !this.authorization) {
      await response.body?.cancel();
      await this.authenticate(challenge);
      response = await this.request(url, { method, headers: { accept: ACCEPT } });
    }
    if (response.ok) return response;
    await response.body?.cancel();
    const where = `${this.ref.registry}/${this.ref.repository}:${reference}`;
    if (response.status >= 500) throw new UnreachableError(`registry ${this.ref.registry} answered ${response.status}`);
    if (response.status === 404) throw new CacheError(`image not found in the registry: ${where}`);
    if (response.status === 401 || response.status === 403) {
      throw new CacheError(`registry ${this.ref.registry} refused access to ${where} (${response.status})`);
    }
    throw new CacheError(`registry ${this.ref.registry} answered ${response.status} for ${where}`);
  }
}

/** This machine's architecture as image indexes name it. */
function architecture(): string {
  return { x86_64: "amd64", aarch64: "arm64" }[Deno.build.arch as string] ?? Deno.build.arch;
}

async function sha256(bytes: ArrayBuffer): Promise<string> {
  const sum = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return `sha256:${Array.from(sum, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** The digest of the manifest that `ref`'s tag names now, for this architecture. */
export async function askDigest(ref: Reference, options: AskOptions): Promise<string> {
  const client = new Client(ref, options);
  let response = await client.manifest("HEAD", ref.tag);
  let digest = response.headers.get("docker-content-digest") ?? undefined;
  const type = response.headers.get("content-type")?.split(";")[0]?.trim() ?? "";
  if (LIST_TYPES.includes(type) || !digest) {
    response = await client.manifest("GET", ref.tag);
    const body = await response.arrayBuffer();
    digest = response.headers.get("docker-content-digest") ?? await sha256(body);
    if (LIST_TYPES.includes(type)) {
      const index = JSON.parse(new TextDecoder().decode(body));
      const arch = architecture();
      const chosen = (index?.manifests ?? []).find((m: { platform?: { architecture?: string; os?: string } }) =>
        m?.platform?.architecture === arch && (m.platform.os ?? "linux") === "linux"
      );
      if (!chosen) throw new CacheError(`${ref.text}: no image for ${arch} in its manifest list`);
      digest = chosen.digest;
    }
  }
  if (!digest || !MANIFEST_DIGEST.test(digest)) {
    throw new CacheError(`registry ${ref.registry} gave no usable digest for ${ref.text}: ${digest ?? "none"}`);
  }
  return digest;
}
