/** A participant's own data from CSV (src/ml/csv-dataset.ts): rows in, every malformed row named by line. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CsvDatasetError, parseCsvDataset } from "../../src/ml/csv-dataset.ts";

describe("parseCsvDataset", () => {
  it("reads labels and features, skips a header and blank lines, divides the features", () => {
    const d = parseCsvDataset("label,p0,p1,p2\n3,0,255,51\n\n7,255,0,102\r\n", 255);
    assert.equal(d.n, 2);
    assert.deepEqual([...d.y], [3, 7]);
    assert.deepEqual(
      [...d.x].map((v) => Math.round(v * 1000) / 1000),
      [0, 1, 0.2, 1, 0, 0.4],
    );
  });

  it("names the line of a row with the wrong width, a bad label or a bad feature", () => {
    const cases: [string, RegExp][] = [
      ["1,0.5,0.5\n2,0.5\n", /line 2: 2 columns, expected 3/],
      ["1,0.5\n-1,0.5\n", /line 2: the label "-1" is not a class/],
      ["1,0.5\n2.5,0.5\n", /line 2: the label "2.5" is not a class/],
      ["1,0.5\n2,x\n", /line 2: feature 1 "x" is not a number/],
      ["1,0.5\n2,\n", /line 2: feature 1 "" is not a number/],
      ["label,a\n", /no rows/],
      ["1\n", /a label and at least one feature/],
    ];
    for (const [text, message] of cases)
      assert.throws(
        () => parseCsvDataset(text, 1, "f.csv"),
        (e: Error) => e instanceof CsvDatasetError && message.test(e.message),
      );
  });
});
