#!/usr/bin/env -S node --no-memory-reducer
// The Node flag is the shield's (see src/shield/node-flags.ts); the other commands do not mind it.
// main loads only the modules of the command it is given: `shield run` reads the daemon's and no
// other, so a restarted shield serves again sooner, and every other command starts as fast.
const { main } = await import("../dist/cli/main.js");
const { endQuietlyWhenPipeCloses } = await import("../dist/cli/pipe.js");

endQuietlyWhenPipeCloses();
process.exitCode = await main(process.argv);
