/** How full the cache filesystem is. */
export interface Usage {
  /** Used share of the space an unprivileged user can fill, as `df` counts it. */
  percent: number;
  usedBytes: number;
  availableBytes: number;
}

/** Where usage comes from: statfs(2) in production, something exact in tests. */
export type UsageSource = (base: string) => Promise<Usage>;

export const statfsUsage: UsageSource = async (base) => {
  // Loaded here, so that only the cold path pays for it.
  const { statfs } = await import("./libc.ts");
  const fs = statfs(base);
  const usedBytes = (fs.blocks - fs.bfree) * fs.bsize;
  const availableBytes = fs.bavail * fs.bsize;
  const total = usedBytes + availableBytes;
  return { usedBytes, availableBytes, percent: total === 0 ? 0 : (usedBytes * 100) / total };
};

export function round(percent: number): number {
  return Math.round(percent * 100) / 100;
}
