#!/usr/bin/env -S node --no-memory-reducer
// The Node flag is the shield's (see src/shield/node-flags.ts); the other commands do not mind it.
import { main } from "../dist/cli/main.js";
import { endQuietlyWhenPipeCloses } from "../dist/cli/pipe.js";

endQuietlyWhenPipeCloses();
process.exitCode = await main(process.argv);
