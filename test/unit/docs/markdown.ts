import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";

/** The repository root (this file is test/unit/docs/markdown.ts). */
export const repoRoot = join(import.meta.dirname, "..", "..", "..");

/** README.md and every page under docs/, as repository-relative paths. */
export function markdownFiles(): string[] {
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith(".md") ? [join(dir, e.name)] : []));
  return ["README.md", ...walk(join(repoRoot, "docs")).map((f) => relative(repoRoot, f))].sort();
}

export interface FencedBlock {
  file: string;
  /** 1-based line of the first line inside the fence. */
  line: number;
  lang: string;
  text: string;
}

/** Fenced code blocks (```lang ... ```) of a markdown file. */
export function fencedBlocks(file: string): FencedBlock[] {
  const lines = readFileSync(join(repoRoot, file), "utf8").split("\n");
  const blocks: FencedBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,})\s*([\w-]*)/.exec(lines[i]!);
    if (!open) continue;
    const fence = open[2]!;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length && !lines[j]!.trimStart().startsWith(fence); j++) body.push(lines[j]!);
    blocks.push({ file, line: i + 2, lang: open[3]!.toLowerCase(), text: body.join("\n") });
    i = j;
  }
  return blocks;
}

/** Splits a shell line into words: single and double quotes, backslash escapes, `#` comments. */
export function shellWords(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      word = (word ?? "") + line.slice(i + 1, end < 0 ? undefined : end);
      i = end < 0 ? line.length : end;
    } else if (c === '"') {
      let j = i + 1;
      let s = "";
      for (; j < line.length && line[j] !== '"'; j++) s += line[j] === "\\" ? line[++j] : line[j];
      word = (word ?? "") + s;
      i = j;
    } else if (c === "\\") {
      word = (word ?? "") + (line[++i] ?? "");
    } else if (/\s/.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (c === "#" && word === undefined) {
      break;
    } else {
      word = (word ?? "") + c;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}

/** Drops shell redirections (`> file`, `2>&1`, `<file`) from a word list. */
function withoutRedirections(words: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < words.length; i++) {
    if (/^\d*(>>?|<)(&\d+)?$/.test(words[i]!)) {
      if (!/&\d+$/.test(words[i]!)) i++; // the target is the next word
    } else if (!/^\d*(>>?|<)./.test(words[i]!)) out.push(words[i]!);
  }
  return out;
}

export interface DocCommand {
  file: string;
  line: number;
  /** The command as written (one logical line). */
  text: string;
  /** Arguments after `vrb`. */
  args: string[];
}

/**
 * Every `vrb` command line in the shell blocks (```sh, ```bash) of README.md and docs/: lines, or
 * parts of lines after `&&`, `;`, `|` or inside `$( )`, that start with `vrb ` or `npx vrb `, after
 * any `NAME=value` environment assignments. Lines ending in `\` continue on the next line.
 */
export function docCommands(): DocCommand[] {
  const out: DocCommand[] = [];
  for (const file of markdownFiles()) {
    for (const block of fencedBlocks(file)) {
      if (!["sh", "bash"].includes(block.lang)) continue;
      const lines = block.text.split("\n");
      for (let i = 0; i < lines.length; i++) {
        const start = i;
        let logical = lines[i]!;
        while (logical.trimEnd().endsWith("\\") && i + 1 < lines.length) logical = logical.trimEnd().slice(0, -1) + " " + lines[++i]!;
        const parts = [...logical.matchAll(/\$\(([^)]*)\)/g)].map((m) => m[1]!);
        parts.push(...logical.replace(/\$\([^)]*\)/g, "SUBST").split(/&&|\|\||;|\|/));
        for (const part of parts) {
          const words = withoutRedirections(shellWords(part));
          while (words.length && /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[0]!)) words.shift();
          if (words[0] === "npx" && words[1] === "vrb") words.shift();
          if (words[0] !== "vrb") continue;
          out.push({ file, line: block.line + start, text: part.trim(), args: words.slice(1) });
        }
      }
    }
  }
  return out;
}
