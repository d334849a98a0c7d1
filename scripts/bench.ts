// `npm run bench`: filled in by the snapshot (backup throughput, memory) and restore issues.
process.stderr.write("bench: no benchmarks yet\n");
