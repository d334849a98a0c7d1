import { expect } from "vitest";
import { ConfigError } from "../../engine/errors.js";

/** The ConfigError `f` throws (the test fails if it throws anything else, or nothing). */
export function configErrorOf(f: () => unknown): ConfigError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error("expected a ConfigError");
}
