// The fault proxy lives with the benchmarks (they run the CLI behind it too); tests import it from here.
export * from "../../scripts/bench/fault-proxy.js";
