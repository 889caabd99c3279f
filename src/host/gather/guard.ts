import { failed, type Fact } from "../../facts/fact.js";
import { toProblem } from "../errors.js";

/** Run a gatherer; anything it throws becomes an `error` fact instead of a crash. */
export async function gather<T>(source: string, fn: () => Promise<Fact<T>>): Promise<Fact<T>> {
  try {
    return await fn();
  } catch (err) {
    return failed(toProblem(source, err));
  }
}
