import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { UsageError } from "../../src/cli/context.ts";
import { parseConditions } from "../../src/cli/insurance.ts";

const full = "rainfallDeficit=0.4,heatDays=12,soilMoisture=0.18,growingDegreeDays=1600";

describe("insurance --conditions", () => {
  it("reads every feature, in any order", () => {
    assert.deepEqual(
      parseConditions("heatDays=12, rainfallDeficit=0.4,growingDegreeDays=1600,soilMoisture=0.18"),
      {
        rainfallDeficit: 0.4,
        heatDays: 12,
        soilMoisture: 0.18,
        growingDegreeDays: 1600,
      },
    );
    assert.equal(parseConditions(full).heatDays, 12);
  });

  for (const [why, text, message] of [
    ["an empty value", full.replace("heatDays=12", "heatDays="), /--conditions takes/],
    ["a second '='", full.replace("heatDays=12", "heatDays=1=2"), /--conditions takes/],
    ["hex", full.replace("heatDays=12", "heatDays=0x10"), /--conditions takes/],
    ["an exponent", full.replace("growingDegreeDays=1600", "growingDegreeDays=1e3"), /--conditions takes/],
    ["an unknown name", `${full},rain=1`, /--conditions takes/],
    ["a repeated name", `${full},heatDays=3`, /names heatDays twice/],
    ["a missing feature", "rainfallDeficit=0.4,heatDays=12,soilMoisture=0.18", /lacks growingDegreeDays/],
  ] as const) {
    it(`refuses ${why}`, () => {
      assert.throws(
        () => parseConditions(text),
        (err: unknown) => err instanceof UsageError && message.test(err.message),
      );
    });
  }
});
