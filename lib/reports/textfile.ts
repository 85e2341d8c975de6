import type { Config } from "../config/config.ts";
import { type Status, status } from "./status.ts";

/**
 * Status and the collector's counters as metrics, written atomically to `file`
 * (node_exporter's textfile collector): what `status --prometheus` and
 * `gc --prometheus` both write.
 */
export async function exportMetrics(config: Config, file: string, report?: Status): Promise<void> {
  const [{ readGcState }, { writeMetrics }] = await Promise.all([
    import("../store/gcstate.ts"),
    import("./metrics.ts"),
  ]);
  await writeMetrics(file, report ?? await status(config), await readGcState(config.dataPath));
}
