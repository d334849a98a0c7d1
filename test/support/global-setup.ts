import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { baoVersion, localDown, localUp, s3ServerKindFromEnv, stderrProgress, type LocalEnvironment } from "../../engine/index.js";

declare module "vitest" {
  export interface ProvidedContext {
    localEnv: LocalEnvironment;
  }
}

/**
 * One real 3-node OpenBao Raft cluster and one real S3 server for the whole run, of the default
 * production shape: Shamir seal, plain HTTP on 127.0.0.1 and OpenBao's default listener settings
 * (the unauthenticated generate-root endpoints are disabled). Tests that
 * destroy nodes start clusters of their own with the same engine code. If a server cannot start,
 * this throws and the whole run fails with the reason: nothing is skipped.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";
  const dir = mkdtempSync(join(tmpdir(), "vrb-test-env-"));
  const kind = s3ServerKindFromEnv();
  process.stderr.write(`[vrb tests] ${baoVersion().split("\n")[0]}; S3 server: ${kind}; state in ${dir}\n`);
  let env: LocalEnvironment;
  try {
    env = await localUp({ dir, nodes: 3, s3: kind, progress: stderrProgress("[vrb tests]") });
  } catch (err) {
    throw new Error(`the real test servers could not start: ${err instanceof Error ? err.message : String(err)}`);
  }
  project.provide("localEnv", env);
  return async () => {
    await localDown(dir);
  };
}
