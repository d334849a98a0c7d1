export * from "./keys.js";
export * from "./staged.js";
export { GenerateRootRefused, generateRootAdvice, generateRootToken, decodeRootToken, revokeOwnToken } from "./root-token.js";
export { compareVersions, parseVersion } from "./targets.js";
export * from "./inventory.js";
export * from "./drill.js";
export * from "./seal.js";
export { checkRestartCommand, RESTART_PLACEHOLDERS } from "./restart.js";
