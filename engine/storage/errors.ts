import { OperationError } from "../errors.js";

/** A conditional write lost its race (the object changed, or appeared, since it was read). */
export class StoreConflictError extends OperationError {}

/** A delete or overwrite refused because the object is locked (retention or legal hold). */
export class StoreLockedError extends OperationError {}

/** The store lacks a capability the operation needs (e.g. legal holds on a directory). */
export class StoreCapabilityError extends OperationError {}
