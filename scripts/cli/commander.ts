import { createRequire } from "node:module";

// commander is CommonJS: required, not imported, for the reason engine/lazy-modules.ts gives (the
// ES module loader's detection and export scan). The same module instance as any `import`.
const commander = createRequire(import.meta.url)("commander") as typeof import("commander");

export const { Command, CommanderError } = commander;
/** The class as a type too, for the modules that take both from here. */
export type Command = import("commander").Command;
