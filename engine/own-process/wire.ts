import { ConfigError, IntegrityError, InterruptedError, OperationError, VrbError, type StopSignal } from "../errors.js";
import { redact } from "../redact.js";

/** An error as it crosses to the parent process: its engine class by name, the message already redacted. */
export interface WireError {
  name: string;
  message: string;
  stage?: string;
  field?: string;
  signal?: StopSignal;
}

export function toWire(err: unknown): WireError {
  const e = err instanceof Error ? err : new Error(String(err));
  return {
    name: e.name,
    message: redact(e.message),
    stage: e instanceof VrbError ? e.stage : undefined,
    field: e instanceof ConfigError ? e.field : undefined,
    signal: e instanceof InterruptedError ? e.signal : undefined,
  };
}

/** The engine error a WireError stands for (so the same exit code and field); any other error comes back an OperationError. */
export function fromWire(w: WireError): VrbError {
  const options = { stage: w.stage };
  if (w.name === "ConfigError") return new ConfigError(w.message, { ...options, field: w.field });
  if (w.name === "IntegrityError") return new IntegrityError(w.message, options);
  if (w.name === "InterruptedError") return new InterruptedError(w.message, { ...options, signal: w.signal });
  return new OperationError(w.message, options);
}
