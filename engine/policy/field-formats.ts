import { z } from "zod";
import { parseDuration } from "../schedule.js";

/*
 * The two string formats the schema checks with a function (a refinement). The docs generator
 * (scripts/docs/policy-reference.ts) recognises these very objects and gives the JSON Schema an
 * equivalent pattern, so every field of these formats uses them rather than a copy.
 */

/** A node's API address (a refinement: the JSON Schema gets an equivalent pattern from the docs generator). */
export const nodeUrlSchema = z.string().refine((v) => {
  try {
    const u = new URL(v);
    return (u.protocol === "http:" || u.protocol === "https:") && u.pathname === "/" && !u.search;
  } catch {
    return false;
  }
}, "must be a node's API address like https://vault-0.example:8200 (scheme, host, port; no path)");

/** A duration of at least one minute (a refinement: the JSON Schema checks only the syntax). */
export const durationSchema = z.string().refine((v) => {
  try {
    return parseDuration(v) >= 60_000;
  } catch {
    return false;
  }
}, "must be a duration of at least 1m like '30m', '6h' or '1d'");
