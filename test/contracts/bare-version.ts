/** The smallest ModelRegistry.addVersion argument: an LMQ1 version whose weights digest names `label`. */
import { type Hex, keccak256, stringToHex } from "viem";

const ZERO: Hex = `0x${"0".repeat(64)}`;

export function bareVersion(label: string) {
  return {
    weightsDigest: keccak256(stringToHex(label)),
    format: stringToHex("LMQ1", { size: 8 }),
    parentModel: 0,
    parentVersion: 0,
    datasets: [],
    metrics: [],
    trainingRun: ZERO,
    licence: ZERO,
    modelCard: ZERO,
  };
}
