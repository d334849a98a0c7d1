import { z } from "zod";
import { ConfigError } from "../errors.js";

function formatIssue(issue: z.ZodIssue, source: string): { field: string; text: string } {
  const field = issue.path.join(".") || "(top level)";
  let msg = issue.message;
  if (issue.code === "unrecognized_keys") {
    const where = issue.path.length ? issue.path.join(".") + "." : "";
    return {
      field: where + issue.keys[0],
      text: `${source}: unknown field${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `'${where}${k}'`).join(", ")}; remove it or check its spelling (the fields are listed in docs/policy.md)`,
    };
  }
  if (issue.code === "invalid_type") {
    msg = issue.received === "undefined" ? (issue.message !== "Required" ? issue.message : "is required") : `must be a ${issue.expected}, got ${issue.received}`;
  }
  return { field, text: `${source}: ${field} ${msg}` };
}

/**
 * Parses `input` with one part of the policy schema; errors carry the dotted field path under
 * `at` (e.g. `bucket`), so a part validated on its own reads exactly like the whole policy.
 */
export function validatePart<S extends z.ZodTypeAny>(schema: S, input: unknown, at: string[], source = "policy"): z.output<S> {
  const result = schema.safeParse(input);
  if (!result.success) {
    const issues = result.error.issues.map((i) => formatIssue({ ...i, path: [...at, ...i.path] }, source));
    throw new ConfigError(issues.map((i) => i.text).join("\n"), { field: issues[0]?.field });
  }
  return result.data;
}
