#!/usr/bin/env -S node --no-memory-reducer
// The Node flag is the shield's (see src/shield/node-flags.ts); the other commands do not mind it.
// `shield run` loads the daemon's modules only: a restarted shield serves again sooner.
const daemon = process.argv[2] === "shield" && process.argv[3] === "run";
const { main } = await import(daemon ? "../dist/cli/shield-run-main.js" : "../dist/cli/main.js");
const { endQuietlyWhenPipeCloses } = await import("../dist/cli/pipe.js");

endQuietlyWhenPipeCloses();
process.exitCode = await main(process.argv);
