/**
 * The envelope of a trainer's update: the bytes whose sha256 digest a trainer commits to and then
 * publishes. It names the task contract, the task, the round and the trainer ahead of the canonical model,
 * so an update is bound to its trainer: a digest copied from another trainer's commit (front-running it)
 * names its victim, validators score it 0, and the copier is rejected and slashed, while the victim's own
 * commit stands (LearningTasks keys digests by trainer and refuses no duplicate).
 *
 * Layout: "LMU1" (4 bytes) | task contract (20) | taskId (uint64, big-endian) | round (uint32, big-endian) |
 * trainer (20) | the canonical model's bytes (ml/encoding.ts).
 */
import { type Address, bytesToHex, getAddress, hexToBytes, isAddressEqual } from "viem";

/** Bytes that are no update envelope, or a binding that does not fit one. */
export class EnvelopeError extends Error {
  override name = "EnvelopeError";
}

/** The envelope's first four bytes. */
export const ENVELOPE_MAGIC = new TextEncoder().encode("LMU1");
/** Bytes before the model: magic, contract, task id, round, trainer. */
export const ENVELOPE_HEADER_BYTES = 4 + 20 + 8 + 4 + 20;

/** Whose update an envelope holds: the contract, task and round it was made for, and its trainer. */
export interface UpdateBinding {
  contract: Address;
  taskId: bigint;
  round: number;
  trainer: Address;
}

/** The envelope of `model` (canonical bytes) for `binding`. */
export function sealUpdate(binding: UpdateBinding, model: Uint8Array): Uint8Array {
  if (binding.taskId < 0n || binding.taskId >= 2n ** 64n)
    throw new EnvelopeError(`task id ${binding.taskId} does not fit an update envelope`);
  if (!Number.isInteger(binding.round) || binding.round < 0 || binding.round >= 2 ** 32)
    throw new EnvelopeError(`round ${binding.round} does not fit an update envelope`);
  const out = new Uint8Array(ENVELOPE_HEADER_BYTES + model.length);
  const view = new DataView(out.buffer);
  out.set(ENVELOPE_MAGIC, 0);
  out.set(hexToBytes(binding.contract), 4);
  view.setBigUint64(24, binding.taskId);
  view.setUint32(32, binding.round);
  out.set(hexToBytes(binding.trainer), 36);
  out.set(model, ENVELOPE_HEADER_BYTES);
  return out;
}

/** An envelope's binding and model bytes; throws EnvelopeError for bytes that are no envelope. */
export function openUpdate(bytes: Uint8Array): { binding: UpdateBinding; model: Uint8Array } {
  if (bytes.length < ENVELOPE_HEADER_BYTES || ENVELOPE_MAGIC.some((b, i) => bytes[i] !== b))
    throw new EnvelopeError("not an update envelope (no LMU1 header)");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return {
    binding: {
      contract: getAddress(bytesToHex(bytes.subarray(4, 24))),
      taskId: view.getBigUint64(24),
      round: view.getUint32(32),
      trainer: getAddress(bytesToHex(bytes.subarray(36, 56))),
    },
    model: bytes.subarray(ENVELOPE_HEADER_BYTES),
  };
}

/** Why an envelope's binding is not `expected` (undefined when it is). */
export function bindingMismatch(actual: UpdateBinding, expected: UpdateBinding): string | undefined {
  if (!isAddressEqual(actual.trainer, expected.trainer))
    return `the update names trainer ${actual.trainer}, not its committer ${expected.trainer} (a copied digest)`;
  if (!isAddressEqual(actual.contract, expected.contract) || actual.taskId !== expected.taskId)
    return `the update was made for task ${actual.taskId} of ${actual.contract}, not task ${expected.taskId} of ${expected.contract}`;
  if (actual.round !== expected.round)
    return `the update was made for round ${actual.round}, not round ${expected.round} (a replay)`;
  return undefined;
}
