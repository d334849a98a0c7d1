export * from "./recover.js";
export { checkRecoverInput, resolveTargets, type KvTarget } from "./targets.js";
