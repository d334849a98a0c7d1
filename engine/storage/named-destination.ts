import { ConfigError } from "../errors.js";
import { destinationNameOf, type Destination } from "./destination.js";

/** The part of a policy that says where snapshots go: the primary destination and its copies. */
export interface DestinationsOf {
  destination: Destination;
  copies?: Destination[];
}

export interface NamedDestination {
  name: string;
  destination: Destination;
  /** True for the policy's `destination`; copies are false. */
  primary: boolean;
}

/** Every destination of a policy, the primary first, each with its name. */
export function destinationsOf(policy: DestinationsOf): NamedDestination[] {
  return [
    { name: destinationNameOf(policy.destination), destination: policy.destination, primary: true },
    ...(policy.copies ?? []).map((d, i) => ({ name: d.name ?? `copy-${i + 1}`, destination: d, primary: false })),
  ];
}

/**
 * The destination `--destination NAME` names (the primary without a name). An unknown name is a
 * ConfigError listing the names the policy has.
 */
export function destinationNamed(policy: DestinationsOf, name: string | undefined): NamedDestination {
  const all = destinationsOf(policy);
  if (name === undefined) return all[0]!;
  const found = all.find((d) => d.name === name);
  if (!found) {
    throw new ConfigError(`--destination '${name}' is not a destination of this policy; it has ${all.map((d) => `'${d.name}'`).join(", ")}`, {
      field: "--destination",
    });
  }
  return found;
}

/** Copies need a name each, and names are unique (they key reports, metrics and --destination). */
export function checkDestinationNames(policy: DestinationsOf, source = "policy"): void {
  const seen = new Map<string, string>([[destinationNameOf(policy.destination), "destination"]]);
  (policy.copies ?? []).forEach((copy, i) => {
    const field = `copies.${i}.name`;
    if (copy.name === undefined) throw new ConfigError(`${source}: ${field} is required: name each copy, e.g. 'offsite'`, { field });
    const other = seen.get(copy.name);
    if (other) throw new ConfigError(`${source}: ${field} '${copy.name}' is already the name of ${other}; give each destination its own name`, { field });
    seen.set(copy.name, `copies.${i}`);
  });
}
