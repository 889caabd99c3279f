import { describe, expect, it } from "vitest";
import { batchesOf, parseSerial, stopsAfter } from "../../src/fleet/rollout.js";

const hosts = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];

describe("rollout batches", () => {
  it("one at a time by default: a canary, then the rest one by one", () => {
    expect(batchesOf(hosts.slice(0, 3), parseSerial("1"))).toEqual([["a"], ["b"], ["c"]]);
  });

  it("a percentage of the hosts to change, at least one", () => {
    expect(batchesOf(hosts, parseSerial("30%")).map((b) => b.length)).toEqual([3, 3, 3, 1]);
    expect(batchesOf(hosts.slice(0, 3), parseSerial("10%")).map((b) => b.length)).toEqual([1, 1, 1]);
  });

  it("a list of sizes whose last repeats: a canary, then halves", () => {
    expect(batchesOf(hosts, parseSerial("1,50%"))).toEqual([
      ["a"],
      ["b", "c", "d", "e", "f"],
      ["g", "h", "i", "j"],
    ]);
    expect(batchesOf(hosts, parseSerial("2, 3"))).toEqual([
      ["a", "b"],
      ["c", "d", "e"],
      ["f", "g", "h"],
      ["i", "j"],
    ]);
  });

  it("refuses sizes that mean nothing", () => {
    for (const bad of ["0", "-1", "x", "150%", "1,,2", ""])
      expect(() => parseSerial(bad), bad).toThrow(/--serial: ".*" is not a batch size/);
  });

  it("stops once more hosts failed than --max-fail allows", () => {
    expect(stopsAfter(0, 0)).toBe(false);
    expect(stopsAfter(1, 0)).toBe(true);
    expect(stopsAfter(2, 2)).toBe(false);
    expect(stopsAfter(3, 2)).toBe(true);
  });
});
