// One lint config for the whole tree (`npm run lint`, run by `npm test`): ESLint's and
// typescript-eslint's recommended rules, and Pulumi's rules against Outputs in template literals
// (`${bucket.arn}` renders "Calling [toString] on an [Output<T>] ..."; use pulumi.interpolate), and
// AbortSignal.timeout in the product's code (below).
// Pulumi's rules need type information, so TypeScript files are linted with the test tsconfig,
// which covers every .ts file of the repository.
import js from "@eslint/js";
import pulumi from "@pulumi/eslint-plugin";
import globals from "globals";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", ".tools/", ".vrb/", "coverage/"] },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    languageOptions: { globals: globals.node },
    rules: {
      // A leading underscore marks a deliberately unused binding, e.g. `const { secret: _secret, ...rest } = x`.
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrorsIgnorePattern: "^_", ignoreRestSiblings: true }],
    },
  },
  {
    files: ["**/*.ts"],
    languageOptions: {
      parserOptions: { project: ["./tsconfig.test.json"], tsconfigRootDir: import.meta.dirname },
    },
    plugins: { "@pulumi": pulumi },
    rules: {
      "@pulumi/no-output-in-template-literal": "error",
      "@pulumi/no-output-instance-in-template-literal": "error",
    },
  },
  {
    // The product's code bounds its calls with timeoutSignal (engine/timeout-signal.ts): on Node 20 a
    // timeout passed through AbortSignal.any is lost to a garbage collection and never fires.
    files: ["engine/**/*.ts", "scripts/**/*.ts", "components/**/*.ts", "stacks/**/*.ts"],
    rules: {
      "no-restricted-properties": [
        "error",
        {
          object: "AbortSignal",
          property: "timeout",
          message: "use timeoutSignal(ms, ...signals) from engine/timeout-signal.ts: on Node 20 a timeout combined with AbortSignal.any is lost to garbage collection",
        },
      ],
    },
  },
);
