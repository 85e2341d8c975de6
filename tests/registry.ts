/**
 * Fixtures for registry images: a real registry on 127.0.0.1 (tests/lib/registry.sh),
 * images pushed to it, enroot 4.1.2 (installed, or built once into a cache outside the
 * checkout), and a proxy in front of the registry that can stall or drop a layer midway.
 */
import { ROOT, run } from "./helpers.ts";

const SCRIPT = `${ROOT}/tests/lib/registry.sh`;
const BUILD = `${ROOT}/../shared/third_party/enroot/build.sh`;
const CACHE = Deno.env.get("PYXIS_CACHE_TEST_CACHE") ?? "/var/cache/pyxis-cache-test";

let enroot: string | null | undefined;

/**
 * The directory holding enroot and its helpers: on PATH, else built by build.sh into the
 * test cache (about a minute, once; as the e2e suite does), else `null`.
 */
export async function enrootDir(): Promise<string | null> {
  if (enroot !== undefined) return enroot;
  const which = await run("sh", ["-c", "command -v enroot"]);
  if (which.code === 0) return enroot = which.stdout.trim().replace(/\/[^/]*$/, "");
  const prefix = `${CACHE}/enroot-4.1.2`;
  const built = await Deno.stat(`${prefix}/bin/enroot`).then(() => true, () => false);
  if (!built && Deno.uid() === 0 && await Deno.stat(BUILD).then(() => true, () => false)) {
    const hadRun = await Deno.stat("/run/enroot").then(() => true, () => false);
    const result = await run("bash", [BUILD, prefix]);
    if (result.code !== 0) console.error(`enroot build failed: ${result.stderr}`);
    // build.sh runs `enroot version` as root, which creates /run/enroot: nothing here may need it.
    if (!hadRun) await Deno.remove("/run/enroot").catch(() => {});
  }
  enroot = await Deno.stat(`${prefix}/bin/enroot`).then(() => `${prefix}/bin`, () => null);
  if (!enroot) console.error("SKIPPING registry cases: enroot is not installed and could not be built");
  return enroot;
}

/** What the command needs to import from the test registry: enroot on PATH, and http allowed. */
export async function enrootEnv(): Promise<Record<string, string>> {
  return { PATH: `${await enrootDir()}:/usr/local/bin:/usr/bin:/bin`, ENROOT_ALLOW_HTTP: "y" };
}

export interface Registry extends AsyncDisposable {
  dir: string;
  /** `127.0.0.1:PORT` */
  address: string;
  /** Builds and pushes `repo:tag` with `files` (path → a line, or `@random:BYTES`); returns its manifest digest. */
  push(ref: string, files?: Record<string, string>): Promise<string>;
  stop(): Promise<void>;
  /** How many times a blob was fetched (GET) so far, from the registry's access log. */
  blobFetches(): Promise<number>;
}

async function script(...args: string[]): Promise<string> {
  const result = await run("bash", [SCRIPT, ...args]);
  if (result.code !== 0) throw new Error(`registry.sh ${args[0]}: ${result.stderr}`);
  return result.stdout.trim();
}

/** Starts a registry with its storage in `dir` (wanting `user:password` when given). */
export async function startRegistry(dir: string, credentials?: string): Promise<Registry> {
  await Deno.mkdir(dir, { recursive: true });
  const address = await script("start", dir, ...(credentials ? [credentials] : []));
  const stop = () => script("stop", dir).then(() => {});
  return {
    dir,
    address,
    push: (ref, files = {}) => script("push", dir, ref, ...Object.entries(files).map(([p, c]) => `${p}=${c}`)),
    stop,
    async blobFetches() {
      const log = await Deno.readTextFile(`${dir}/registry.log`);
      return log.split("\n").filter((l) => /"GET \/v2\/[^"]*\/blobs\/sha256:/.test(l)).length;
    },
    [Symbol.asyncDispose]: stop,
  };
}

export type ProxyMode = "pass" | "stall" | "drop";

export interface Proxy extends AsyncDisposable {
  address: string;
  mode: ProxyMode;
  /** Resolves once a blob's first half has been sent in "stall" or "drop" mode. */
  halfSent: Promise<void>;
}

/**
 * A proxy in front of `upstream` (a registry): in "pass" mode it forwards everything; in
 * "stall" mode it sends the first half of the first big blob and then nothing more until
 * the connection ends; in "drop" mode it sends that half and breaks the connection.
 */
export function startProxy(upstream: string, mode: ProxyMode, bigBlobBytes = 1 << 20): Proxy {
  let signalHalf: () => void = () => {};
  const halfSent = new Promise<void>((resolve) => signalHalf = resolve);
  const proxy = { address: "", mode, halfSent } as Proxy;
  const stalled: ReadableStreamDefaultController<Uint8Array>[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    const url = new URL(request.url);
    const answer = await fetch(`http://${upstream}${url.pathname}${url.search}`, {
      method: request.method,
      headers: request.headers,
      redirect: "follow",
    });
    const length = Number(answer.headers.get("content-length") ?? 0);
    const blob = request.method === "GET" && url.pathname.includes("/blobs/") && length >= bigBlobBytes;
    if (proxy.mode === "pass" || !blob) return answer;
    const bytes = new Uint8Array(await answer.arrayBuffer());
    const half = bytes.subarray(0, bytes.length >> 1);
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        stalled.push(controller);
        controller.enqueue(half);
        setTimeout(signalHalf, 50);
        // Ended short of the Content-Length it announced: the client sees the connection cut.
        if (proxy.mode === "drop") setTimeout(() => controller.close(), 100);
      },
    });
    return new Response(body, { status: answer.status, headers: answer.headers });
  });
  proxy.address = `127.0.0.1:${server.addr.port}`;
  proxy[Symbol.asyncDispose] = async () => {
    for (const controller of stalled) {
      try {
        controller.close();
      } catch { /* already ended */ }
    }
    await server.shutdown();
  };
  return proxy;
}
