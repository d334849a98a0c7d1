import type { IncomingMessage } from "node:http";
import type { IamPolicyDocument, IamStatement } from "../../engine/access/iam.js";
import type { FaultRule } from "./fault-proxy.js";

/**
 * AWS IAM's verdict on the S3 requests a real command sends, for the kit's own identity documents
 * (engine/access/iam.ts), in front of a real S3 server (SeaweedFS or moto, which do not enforce
 * IAM). Each REST request is mapped to the IAM actions AWS authorises it as, with its resource ARN
 * and the `s3:prefix` condition key, as the S3 API reference lists them ("Actions, resources, and
 * condition keys for Amazon S3"); a statement applies when one of its actions and resources
 * matches (`*` spans `/`) and its conditions hold. An explicit Deny wins; no Allow is a deny.
 * Only the condition operator the documents use on requests is evaluated (StringLike); any
 * other makes the gate throw rather than guess. Identity policies only: the bucket policy's
 * TLS and KMS rules need AWS itself.
 */

export interface S3Authorization {
  /** e.g. `s3:PutObject`. */
  action: string;
  /** `arn:aws:s3:::bucket` or `arn:aws:s3:::bucket/key`. */
  resource: string;
  /** Condition keys the request carries (`s3:prefix` on listings that give one). */
  context: Record<string, string>;
}

/** The IAM actions one path-style S3 request needs (a PUT that sets a lock needs PutObjectRetention too). */
export function s3AuthorizationsOf(method: string, url: URL, headers: IncomingMessage["headers"]): S3Authorization[] {
  const [, bucket, ...rest] = url.pathname.split("/");
  if (!bucket) throw new Error(`not a path-style S3 request: ${method} ${url.pathname}`);
  const key = rest.map(decodeURIComponent).join("/");
  const q = url.searchParams;
  const bucketArn = `arn:aws:s3:::${bucket}`;
  const on = (action: string, context: Record<string, string> = {}): S3Authorization => ({ action: `s3:${action}`, resource: key ? `${bucketArn}/${key}` : bucketArn, context });
  const prefix: Record<string, string> = q.has("prefix") ? { "s3:prefix": q.get("prefix")! } : {};
  if (!key) {
    if (method === "HEAD") return [on("ListBucket")];
    if (method === "GET") {
      if (q.has("versions")) return [on("ListBucketVersions", prefix)];
      if (q.has("uploads")) return [on("ListBucketMultipartUploads")];
      if (q.has("object-lock")) return [on("GetBucketObjectLockConfiguration")];
      if (q.has("versioning")) return [on("GetBucketVersioning")];
      if (q.has("location")) return [on("GetBucketLocation")];
      return [on("ListBucket", prefix)];
    }
    throw new Error(`the gate does not know the bucket request ${method} ${url.pathname}${url.search}`);
  }
  const locks = (): S3Authorization[] => [
    ...(headers["x-amz-object-lock-mode"] || headers["x-amz-object-lock-retain-until-date"] ? [on("PutObjectRetention")] : []),
    ...(headers["x-amz-object-lock-legal-hold"] ? [on("PutObjectLegalHold")] : []),
  ];
  switch (method) {
    case "GET":
    case "HEAD":
      if (q.has("uploadId")) return [on("ListMultipartUploadParts")];
      if (q.has("retention")) return [on("GetObjectRetention")];
      if (q.has("legal-hold")) return [on("GetObjectLegalHold")];
      return [on(q.has("versionId") ? "GetObjectVersion" : "GetObject")];
    case "PUT":
      if (q.has("retention")) return [on("PutObjectRetention")];
      if (q.has("legal-hold")) return [on("PutObjectLegalHold")];
      return [on("PutObject"), ...locks()];
    case "POST":
      if (q.has("uploads")) return [on("PutObject"), ...locks()];
      if (q.has("uploadId")) return [on("PutObject")];
      break;
    case "DELETE":
      if (q.has("uploadId")) return [on("AbortMultipartUpload")];
      return [on(q.has("versionId") ? "DeleteObjectVersion" : "DeleteObject")];
  }
  throw new Error(`the gate does not know the object request ${method} ${url.pathname}${url.search}`);
}

const wildcard = (pattern: string, value: string) =>
  new RegExp(
    `^${pattern
      .split("*")
      .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
      .join(".*")}$`,
  ).test(value);
const list = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

function applies(s: IamStatement, a: S3Authorization): boolean {
  if (!s.Action.some((p) => wildcard(p, a.action))) return false;
  if (!list(s.Resource).some((p) => wildcard(p, a.resource))) return false;
  for (const [operator, keys] of Object.entries(s.Condition ?? {})) {
    if (operator !== "StringLike") throw new Error(`the gate does not evaluate the condition operator ${operator} (statement ${s.Sid})`);
    for (const [k, values] of Object.entries(keys)) {
      // A key the request does not carry fails the condition, as in IAM (without ...IfExists).
      const actual = a.context[k];
      if (actual === undefined || !list(values as string | string[]).some((p) => wildcard(String(p), actual))) return false;
    }
  }
  return true;
}

/** IAM's verdict for one authorization under `doc`. */
export function iamVerdict(doc: IamPolicyDocument, a: S3Authorization): "allowed" | "explicitly denied" | "not allowed" {
  if (doc.Statement.some((s) => s.Effect === "Deny" && applies(s, a))) return "explicitly denied";
  return doc.Statement.some((s) => s.Effect === "Allow" && applies(s, a)) ? "allowed" : "not allowed";
}

export interface GatedRequest {
  request: string;
  authorizations: (S3Authorization & { verdict: ReturnType<typeof iamVerdict> })[];
}

/**
 * A FaultProxy rule that answers 403 AccessDenied, as S3 does, to every request `identity()`'s
 * document does not allow, and records every request with its verdicts in `seen`.
 */
export function iamGate(identity: () => IamPolicyDocument, seen: GatedRequest[]): FaultRule {
  return {
    share: 1,
    fault: { kind: "s3-error", status: 403, code: "AccessDenied", message: "Access Denied" },
    match: (req, url) => {
      const authorizations = s3AuthorizationsOf(req.method ?? "GET", url, req.headers).map((a) => ({ ...a, verdict: iamVerdict(identity(), a) }));
      seen.push({ request: `${req.method} ${decodeURIComponent(url.pathname)}${url.search}`, authorizations });
      return authorizations.some((a) => a.verdict !== "allowed");
    },
  };
}

/** The requests of `seen` that were refused, as `METHOD path: action (verdict)` lines. */
export function refused(seen: readonly GatedRequest[]): string[] {
  return seen.flatMap((g) => g.authorizations.filter((a) => a.verdict !== "allowed").map((a) => `${g.request}: ${a.action} (${a.verdict})`));
}
