import * as pulumi from "@pulumi/pulumi";
import { expect } from "vitest";
import { ConfigError } from "../../engine/index.js";

/** A resource as the Pulumi engine would receive it: type token, name, resolved inputs. */
export interface Registered {
  type: string;
  name: string;
  // Inputs are whatever the component sent; tests read them as plain JSON values.
  inputs: Record<string, unknown>;
}

/** Attributes the cloud would compute, so outputs like `bucket.arn` resolve as they would on AWS. */
function computed(args: pulumi.runtime.MockResourceArgs): Record<string, unknown> {
  const i = args.inputs as Record<string, unknown>;
  switch (args.type) {
    case "aws:s3/bucket:Bucket":
      return { arn: `arn:aws:s3:::${String(i.bucket)}`, bucket: i.bucket };
    case "aws:kms/key:Key":
      return { arn: `arn:aws:kms:${String(i.region ?? "us-east-1")}:111122223333:key/${args.name}`, keyId: args.name };
    case "aws:iam/role:Role":
      return { arn: `arn:aws:iam::111122223333:role/${args.name}` };
    default:
      return {};
  }
}

/**
 * Installs Pulumi mocks that record every registered resource. Call before constructing any
 * component; each vitest file runs in its own process, so the recording is per file.
 */
export function recordResources(): Registered[] {
  const registered: Registered[] = [];
  pulumi.runtime.setMocks(
    {
      newResource(args) {
        registered.push({ type: args.type, name: args.name, inputs: args.inputs as Record<string, unknown> });
        return { id: `${args.name}-id`, state: { ...(args.inputs as Record<string, unknown>), ...computed(args) } };
      },
      call(args) {
        return args.inputs;
      },
    },
    "vault-raft-backup",
    "test",
    false,
  );
  return registered;
}

/** Waits until no new registration has arrived for a few ticks (children register after their parents' outputs resolve). */
export async function settle(registered: Registered[]): Promise<void> {
  let last = -1;
  let quiet = 0;
  while (quiet < 4) {
    await new Promise((r) => setTimeout(r, 25));
    if (registered.length === last) quiet++;
    else {
      quiet = 0;
      last = registered.length;
    }
  }
}

export function valueOf<T>(output: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => output.apply((v) => resolve(v)));
}

/** The registered resource of `type` called exactly `name`; fails loudly when there is not exactly one. */
export function named(registered: Registered[], type: string, name: string): Registered {
  const found = registered.filter((r) => r.type === type && r.name === name);
  if (found.length !== 1) {
    const sameType = registered.filter((r) => r.type === type).map((r) => r.name);
    throw new Error(`expected one ${type} named ${name}, found ${found.length} (of this type: ${sameType.join(", ") || "none"})`);
  }
  return found[0]!;
}

/**
 * A component that must refuse its arguments: `construct` throws a ConfigError naming `field`,
 * with a message matching `message`, and registers nothing (no half-declared stack).
 */
export async function expectRefused(registered: Registered[], construct: () => unknown, field: string, message: RegExp): Promise<void> {
  // Whatever earlier tests registered has arrived, so any new registration is this constructor's.
  await settle(registered);
  const before = registered.length;
  let error: unknown;
  try {
    construct();
  } catch (err) {
    error = err;
  }
  expect(error).toBeInstanceOf(ConfigError);
  expect((error as ConfigError).field).toBe(field);
  expect((error as ConfigError).message).toMatch(message);
  await settle(registered);
  expect(registered.length).toBe(before);
}
