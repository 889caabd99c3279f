// Child process for log-crash.test.ts: appends without pause and reports each durable point.
import { openLogStore } from "../../src/shield/log/index.js";
import { record } from "./log-records.js";

const store = openLogStore(process.argv[2]!, { intervalMs: 5 });
let i = 0;
for (;;) {
  for (let k = 0; k < 250; k++, i++)
    store.append(record(i, { reason: `seq ${i}`, path: `/${i}/` + "p".repeat(400) }));
  await store.flush();
  process.stdout.write(`committed ${i}\n`);
}
