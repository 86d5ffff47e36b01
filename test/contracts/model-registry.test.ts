import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import {
  type Abi,
  type AbiFunction,
  type Address,
  encodeFunctionData,
  getAddress,
  type Hex,
  isAddressEqual,
  keccak256,
  parseEventLogs,
  size,
  slice,
  stringToHex,
  type TransactionReceipt,
  toHex,
  zeroAddress,
  zeroHash,
} from "viem";
import type { LocalAccount } from "../../src/chain/accounts.ts";
import { connect, type LedgerChain } from "../../src/chain/connect.ts";
import { deployAll } from "../../src/chain/deploy.ts";
import { ModelRegistry } from "../../src/chain/generated/contracts.ts";
import { ContractRefusedError, decodeRevert, sendAndWait } from "../../src/chain/tx.ts";
import {
  type AttestationMessage,
  attestationDigest,
  attestationDomain,
  checkAttestationSignatures,
  PQ_PUBLIC_KEY_BYTES,
  PQ_SIGNATURE_BYTES,
  type PqKeyPair,
  pqKeygen,
  pqKeyHash,
  signAttestation,
  VERDICTS,
} from "../../src/registry/attestation.ts";
import { detailsHash } from "../../src/registry/client.ts";

const abi = ModelRegistry.abi;
const SOURCE = readFileSync(new URL("../../contracts/ModelRegistry.sol", import.meta.url), "utf8");

interface Metric {
  name: Hex;
  value: bigint;
}

interface VersionInput {
  weightsDigest: Hex;
  format: Hex;
  parentModel: number;
  parentVersion: number;
  datasets: Hex[];
  metrics: Metric[];
  trainingRun: Hex;
  licence: Hex;
  modelCard: Hex;
}

interface AttestationInput {
  attester: Address;
  modelId: bigint;
  version: number;
  claimDigest: Hex;
  verdict: number;
}

interface Auditor {
  index: number;
  account: LocalAccount;
  address: Address;
  pq: PqKeyPair;
}

let chain: LedgerChain;
let registry: Address;

/** Every custom error name a test saw the contract raise, checked against the source at the end. */
const observedErrors = new Set<string>();

// ---------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------

function h(label: string): Hex {
  return keccak256(stringToHex(label));
}

function metricName(name: string): Hex {
  return stringToHex(name, { size: 32 });
}

function account(i: number): LocalAccount {
  const a = chain.accounts[i];
  if (!a) throw new Error(`no dev account #${i}`);
  return a;
}

function addr(i: number): Address {
  return account(i).address;
}

function auditor(index: number): Auditor {
  const seed = new Uint8Array(32).fill(index + 1);
  return { index, account: account(index), address: addr(index), pq: pqKeygen(seed) };
}

function versionInput(label: string, overrides: Partial<VersionInput> = {}): VersionInput {
  return {
    weightsDigest: h(`weights:${label}`),
    format: stringToHex("tfjs", { size: 8 }),
    parentModel: 0,
    parentVersion: 0,
    datasets: [h(`dataset:${label}:0`), h(`dataset:${label}:1`), h(`dataset:${label}:2`)],
    metrics: [
      { name: metricName("accuracy"), value: 981_234n },
      { name: metricName("loss"), value: 61_000n },
      { name: metricName("calibration"), value: -12_500n },
      { name: metricName("f1"), value: 975_000n },
    ],
    trainingRun: h(`run:${label}`),
    licence: h("licence:Apache-2.0"),
    modelCard: h(`card:${label}`),
    ...overrides,
  };
}

async function read<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    throw decodeRevert(err);
  }
}

/** Asserts a refusal with exactly this custom error (and these arguments, when given), and records it. */
async function refused(p: Promise<unknown>, errorName: string, args?: readonly unknown[]): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof ContractRefusedError, `expected ContractRefusedError, got ${String(err)}`);
    assert.equal(err.errorName, errorName);
    if (args !== undefined) assert.deepEqual(err.args, args);
    observedErrors.add(err.errorName);
    return true;
  });
}

async function registerModel(
  i: number,
  name = "model",
): Promise<{ modelId: bigint; receipt: TransactionReceipt }> {
  const receipt = await sendAndWait(chain, () =>
    chain.wallet(i).writeContract({ address: registry, abi, functionName: "registerModel", args: [name] }),
  );
  const [log] = parseEventLogs({ abi, logs: receipt.logs, eventName: "ModelRegistered" });
  assert.ok(log, "ModelRegistered emitted");
  assert.ok(isAddressEqual(log.args.owner, addr(i)));
  assert.equal(log.args.name, name);
  return { modelId: log.args.modelId, receipt };
}

async function addVersion(
  i: number,
  modelId: bigint,
  input: VersionInput,
): Promise<{ version: number; receipt: TransactionReceipt }> {
  const receipt = await sendAndWait(chain, () =>
    chain
      .wallet(i)
      .writeContract({ address: registry, abi, functionName: "addVersion", args: [modelId, input] }),
  );
  const [log] = parseEventLogs({ abi, logs: receipt.logs, eventName: "VersionAdded" });
  assert.ok(log, "VersionAdded emitted");
  return { version: log.args.version, receipt };
}

function tryAddVersion(i: number, modelId: bigint, input: VersionInput): Promise<TransactionReceipt> {
  return sendAndWait(chain, () =>
    chain
      .wallet(i)
      .writeContract({ address: registry, abi, functionName: "addVersion", args: [modelId, input] }),
  );
}

function deprecate(i: number, modelId: bigint, version: number, reason: string): Promise<TransactionReceipt> {
  return sendAndWait(chain, () =>
    chain.wallet(i).writeContract({
      address: registry,
      abi,
      functionName: "deprecateVersion",
      args: [modelId, version, reason],
    }),
  );
}

function bindPqKey(i: number, publicKey: Hex): Promise<TransactionReceipt> {
  return sendAndWait(chain, () =>
    chain.wallet(i).writeContract({ address: registry, abi, functionName: "bindPqKey", args: [publicKey] }),
  );
}

function attest(
  submitter: number,
  input: AttestationInput,
  ecdsaSignature: Hex,
  pqSignature: Hex,
): Promise<TransactionReceipt> {
  return sendAndWait(chain, () =>
    chain.wallet(submitter).writeContract({
      address: registry,
      abi,
      functionName: "attest",
      args: [input, ecdsaSignature, pqSignature],
    }),
  );
}

function getVersion(modelId: bigint, version: number) {
  return read(
    chain.publicClient.readContract({
      address: registry,
      abi,
      functionName: "getVersion",
      args: [modelId, version],
    }),
  );
}

/** The BN254 scalar field modulus: a weights commitment must be below it. */
const SNARK_FIELD = 21888242871839275222246405745257275088548364400416034343698204186575808495617n;

function setZkVerifier(
  i: number,
  modelId: bigint,
  version: number,
  verifier: Address,
  commitment: Hex,
): Promise<TransactionReceipt> {
  return sendAndWait(chain, () =>
    chain.wallet(i).writeContract({
      address: registry,
      abi,
      functionName: "setZkVerifier",
      args: [modelId, version, verifier, commitment],
    }),
  );
}

function zkVerifierOf(modelId: bigint, version: number) {
  return read(
    chain.publicClient.readContract({
      address: registry,
      abi,
      functionName: "zkVerifierOf",
      args: [modelId, version],
    }),
  );
}

function getAttestation(modelId: bigint, version: number, index: number) {
  return read(
    chain.publicClient.readContract({
      address: registry,
      abi,
      functionName: "getAttestation",
      args: [modelId, version, index],
    }),
  );
}

function nonces(a: Address): Promise<bigint> {
  return chain.publicClient.readContract({ address: registry, abi, functionName: "nonces", args: [a] });
}

function boundKeyHash(a: Address): Promise<Hex> {
  return chain.publicClient.readContract({ address: registry, abi, functionName: "pqKeyHash", args: [a] });
}

function versionCount(modelId: bigint): Promise<number> {
  return chain.publicClient.readContract({
    address: registry,
    abi,
    functionName: "versionCount",
    args: [modelId],
  });
}

function ownerOf(modelId: bigint): Promise<Address> {
  return chain.publicClient.readContract({
    address: registry,
    abi,
    functionName: "ownerOf",
    args: [modelId],
  });
}

/** The message an attester signs for `input`, at the attester's current nonce unless told otherwise. */
async function attestationMessage(input: AttestationInput, nonce?: bigint): Promise<AttestationMessage> {
  const v = await getVersion(input.modelId, input.version);
  return {
    attester: input.attester,
    modelId: input.modelId,
    version: input.version,
    weightsDigest: v.weightsDigest,
    claimDigest: input.claimDigest,
    verdict: input.verdict,
    pqKeyHash: await boundKeyHash(input.attester),
    nonce: nonce ?? (await nonces(input.attester)),
  };
}

async function sign(
  signer: Auditor,
  input: AttestationInput,
  tweak: (m: AttestationMessage) => AttestationMessage = (m) => m,
): Promise<{ ecdsaSignature: Hex; pqSignature: Hex; message: AttestationMessage }> {
  const message = tweak(await attestationMessage(input));
  const sigs = await signAttestation({
    account: signer.account,
    pqKey: signer.pq,
    domain: attestationDomain(chain.chainId, registry),
    message,
  });
  return { ...sigs, message };
}

/** Custom errors declared in contracts/ModelRegistry.sol (not the ones inherited from OpenZeppelin). */
function declaredErrors(): string[] {
  return [...SOURCE.matchAll(/^\s*error\s+(\w+)\s*\(/gm)].map((m) => m[1] as string);
}

function stateChangingFunctions(): string[] {
  return (abi as Abi)
    .filter((item): item is AbiFunction => item.type === "function")
    .filter((item) => item.stateMutability === "nonpayable" || item.stateMutability === "payable")
    .map((item) => `${item.name}/${item.inputs.length}`)
    .sort();
}

/** The fields of the stored Version struct, in order, from getVersion's ABI. */
const VERSION_FIELDS: string[] = (() => {
  const fn = (abi as Abi).find((i): i is AbiFunction => i.type === "function" && i.name === "getVersion");
  const out = fn?.outputs[0];
  return out && "components" in out ? out.components.map((c) => c.name ?? "") : [];
})();
/** Only these may ever change, and only through deprecateVersion and attest. */
const MUTABLE_VERSION_FIELDS = ["attestationCount", "deprecated"];
const IMMUTABLE_VERSION_FIELDS = VERSION_FIELDS.filter((f) => !MUTABLE_VERSION_FIELDS.includes(f));

const EXPECTED_STATE_CHANGING = [
  "addVersion/2",
  "approve/2",
  "attest/3",
  "bindPqKey/1",
  "deprecateVersion/3",
  "registerModel/1",
  "safeTransferFrom/3",
  "safeTransferFrom/4",
  "setApprovalForAll/2",
  "setZkVerifier/4",
  "transferFrom/3",
].sort();

// ---------------------------------------------------------------------------------------------------------

before(async () => {
  chain = await connect({ ephemeral: true });
  const manifest = await deployAll(chain);
  registry = manifest.contracts.ModelRegistry.address;
});

after(async () => {
  await chain?.close();
});

describe("ModelRegistry custom errors", () => {
  const owner = 1;
  const stranger = 6;
  let modelId: bigint;

  before(async () => {
    ({ modelId } = await registerModel(owner, "errors"));
    await addVersion(owner, modelId, versionInput("errors-v1"));
    await addVersion(owner, modelId, versionInput("errors-v2"));
  });

  it("UnknownModel: adding to, deprecating or reading a model that was never registered", async () => {
    await refused(tryAddVersion(owner, 999n, versionInput("x")), "UnknownModel", [999n]);
    await refused(tryAddVersion(owner, 0n, versionInput("x")), "UnknownModel", [0n]);
    await refused(deprecate(owner, 999n, 1, "gone"), "UnknownModel", [999n]);
    await refused(getVersion(999n, 1), "UnknownModel", [999n]);
    await refused(getAttestation(999n, 1, 0), "UnknownModel", [999n]);
  });

  it("NotModelOwner: a stranger may neither add nor deprecate", async () => {
    await refused(tryAddVersion(stranger, modelId, versionInput("intruder")), "NotModelOwner", [
      modelId,
      addr(stranger),
    ]);
    await refused(deprecate(stranger, modelId, 1, "sabotage"), "NotModelOwner", [modelId, addr(stranger)]);
    assert.equal(await versionCount(modelId), 2);
    assert.equal((await getVersion(modelId, 1)).deprecated, false);
  });

  it("EmptyWeightsDigest: a version must name its weights", async () => {
    await refused(
      tryAddVersion(owner, modelId, versionInput("empty", { weightsDigest: zeroHash })),
      "EmptyWeightsDigest",
      [],
    );
  });

  it("UnknownVersion: version 0, a version past the count, on read, deprecate and attest", async () => {
    await refused(getVersion(modelId, 0), "UnknownVersion", [modelId, 0]);
    await refused(getVersion(modelId, 3), "UnknownVersion", [modelId, 3]);
    await refused(deprecate(owner, modelId, 3, "never existed"), "UnknownVersion", [modelId, 3]);
    await refused(getAttestation(modelId, 0, 0), "UnknownVersion", [modelId, 0]);
    const input = {
      attester: addr(11),
      modelId,
      version: 7,
      claimDigest: h("claim"),
      verdict: VERDICTS.pass,
    };
    await refused(attest(0, input, "0x", toHex(new Uint8Array(PQ_SIGNATURE_BYTES))), "UnknownVersion", [
      modelId,
      7,
    ]);
  });

  it("UnknownParentVersion: parent version beyond the parent's count", async () => {
    const m = Number(modelId);
    await refused(
      tryAddVersion(owner, modelId, versionInput("p", { parentModel: m, parentVersion: 3 })),
      "UnknownParentVersion",
      [m, 3],
    );
    // A parent model that was never registered has no versions at all.
    await refused(
      tryAddVersion(owner, modelId, versionInput("p", { parentModel: 4242, parentVersion: 1 })),
      "UnknownParentVersion",
      [4242, 1],
    );
    // The last existing version is a valid parent.
    const { version } = await addVersion(
      owner,
      modelId,
      versionInput("p-ok", { parentModel: m, parentVersion: 2 }),
    );
    assert.equal(version, 3);
  });

  it("UnknownParentVersion: parentVersion 0 with parentModel set", async () => {
    const m = Number(modelId);
    await refused(
      tryAddVersion(owner, modelId, versionInput("p0", { parentModel: m, parentVersion: 0 })),
      "UnknownParentVersion",
      [m, 0],
    );
  });

  it("TooManyEntries: more than MAX_ENTRIES datasets or metrics; exactly MAX_ENTRIES passes", async () => {
    const max = await chain.publicClient.readContract({
      address: registry,
      abi,
      functionName: "MAX_ENTRIES",
    });
    assert.equal(max, 64n);
    const datasets = (n: number) => Array.from({ length: n }, (_, k) => h(`ds-${k}`));
    const metrics = (n: number) =>
      Array.from({ length: n }, (_, k) => ({ name: metricName(`m${k}`), value: BigInt(k) }));
    await refused(
      tryAddVersion(owner, modelId, versionInput("many-ds", { datasets: datasets(65), metrics: [] })),
      "TooManyEntries",
      [65n, 0n],
    );
    await refused(
      tryAddVersion(owner, modelId, versionInput("many-m", { datasets: [], metrics: metrics(65) })),
      "TooManyEntries",
      [0n, 65n],
    );
    const before = await versionCount(modelId);
    await addVersion(owner, modelId, versionInput("max", { datasets: datasets(64), metrics: metrics(64) }));
    assert.equal(await versionCount(modelId), before + 1);
  });

  it("VersionAlreadyDeprecated and EmptyReason", async () => {
    await refused(deprecate(owner, modelId, 1, ""), "EmptyReason", []);
    assert.equal((await getVersion(modelId, 1)).deprecated, false);
    await deprecate(owner, modelId, 1, "superseded by v2");
    assert.equal((await getVersion(modelId, 1)).deprecated, true);
    await refused(deprecate(owner, modelId, 1, "again"), "VersionAlreadyDeprecated", [modelId, 1]);
    // The already-deprecated check comes first, so an empty reason on a deprecated version names that.
    await refused(deprecate(owner, modelId, 1, ""), "VersionAlreadyDeprecated", [modelId, 1]);
  });

  describe("post-quantum keys and attestations", () => {
    const a = () => auditor(11);
    const keyless = 12;
    const forger = () => auditor(13);

    it("InvalidPqKeyLength: a key one byte short or long", async () => {
      await refused(bindPqKey(11, toHex(new Uint8Array(PQ_PUBLIC_KEY_BYTES - 1))), "InvalidPqKeyLength", [
        BigInt(PQ_PUBLIC_KEY_BYTES - 1),
      ]);
      await refused(bindPqKey(11, toHex(new Uint8Array(PQ_PUBLIC_KEY_BYTES + 1))), "InvalidPqKeyLength", [
        BigInt(PQ_PUBLIC_KEY_BYTES + 1),
      ]);
      await refused(bindPqKey(11, "0x"), "InvalidPqKeyLength", [0n]);
      assert.equal(await boundKeyHash(addr(11)), zeroHash);
    });

    it("PqKeyAlreadyBound: a key binds once, for good", async () => {
      const first = a().pq.publicKey;
      await bindPqKey(11, toHex(first));
      assert.equal(await boundKeyHash(addr(11)), pqKeyHash(first));
      const other = pqKeygen(new Uint8Array(32).fill(99)).publicKey;
      await refused(bindPqKey(11, toHex(other)), "PqKeyAlreadyBound", [addr(11)]);
      await refused(bindPqKey(11, toHex(first)), "PqKeyAlreadyBound", [addr(11)]);
      assert.equal(await boundKeyHash(addr(11)), pqKeyHash(first));
    });

    it("InvalidVerdict: verdict None is refused (and an out-of-range enum never decodes)", async () => {
      const input = { attester: addr(11), modelId, version: 2, claimDigest: h("claim"), verdict: 0 };
      const { ecdsaSignature, pqSignature } = await sign(a(), input);
      await refused(attest(0, input, ecdsaSignature, pqSignature), "InvalidVerdict", []);
      const outOfRange = { ...input, verdict: 4 };
      await assert.rejects(attest(0, outOfRange, ecdsaSignature, pqSignature));
      assert.equal((await getVersion(modelId, 2)).attestationCount, 0);
    });

    it("PqKeyNotBound: an attester without a bound key cannot attest", async () => {
      const input = {
        attester: addr(keyless),
        modelId,
        version: 2,
        claimDigest: h("claim"),
        verdict: VERDICTS.pass,
      };
      const { ecdsaSignature, pqSignature } = await sign(auditor(keyless), input);
      await refused(attest(0, input, ecdsaSignature, pqSignature), "PqKeyNotBound", [addr(keyless)]);
    });

    it("InvalidPqSignatureLength: the ML-DSA-65 signature must be 3,309 bytes", async () => {
      const input = {
        attester: addr(11),
        modelId,
        version: 2,
        claimDigest: h("claim"),
        verdict: VERDICTS.pass,
      };
      const { ecdsaSignature, pqSignature } = await sign(a(), input);
      assert.equal(size(pqSignature), PQ_SIGNATURE_BYTES);
      const short = slice(pqSignature, 0, PQ_SIGNATURE_BYTES - 1);
      await refused(attest(0, input, ecdsaSignature, short), "InvalidPqSignatureLength", [
        BigInt(PQ_SIGNATURE_BYTES - 1),
      ]);
      await refused(attest(0, input, ecdsaSignature, `${pqSignature}00`), "InvalidPqSignatureLength", [
        BigInt(PQ_SIGNATURE_BYTES + 1),
      ]);
      await refused(attest(0, input, ecdsaSignature, "0x"), "InvalidPqSignatureLength", [0n]);
    });

    it("InvalidAttestationSignature: signed by another account", async () => {
      const input = {
        attester: addr(11),
        modelId,
        version: 2,
        claimDigest: h("claim"),
        verdict: VERDICTS.pass,
      };
      const nonceBefore = await nonces(addr(11));
      // The forger signs the very message naming auditor 11 as attester.
      const { ecdsaSignature, pqSignature } = await sign(forger(), input);
      await refused(attest(0, input, ecdsaSignature, pqSignature), "InvalidAttestationSignature", [addr(11)]);
      // A malformed signature is refused the same way, never with an ECDSA library error.
      await refused(attest(0, input, "0x1234", pqSignature), "InvalidAttestationSignature", [addr(11)]);
      await refused(attest(0, input, `0x${"00".repeat(65)}`, pqSignature), "InvalidAttestationSignature", [
        addr(11),
      ]);
      assert.equal(await nonces(addr(11)), nonceBefore, "a refused attestation does not use the nonce");
      assert.equal((await getVersion(modelId, 2)).attestationCount, 0);
    });

    it("InvalidAttestationSignature: a genuine signature over a different verdict, claim, version or nonce", async () => {
      const input = {
        attester: addr(11),
        modelId,
        version: 2,
        claimDigest: h("claim"),
        verdict: VERDICTS.pass,
      };
      const signed = await sign(a(), input);
      const asFail = { ...input, verdict: VERDICTS.fail };
      await refused(
        attest(0, asFail, signed.ecdsaSignature, signed.pqSignature),
        "InvalidAttestationSignature",
        [addr(11)],
      );
      const otherClaim = { ...input, claimDigest: h("other claim") };
      await refused(
        attest(0, otherClaim, signed.ecdsaSignature, signed.pqSignature),
        "InvalidAttestationSignature",
        [addr(11)],
      );
      const otherVersion = { ...input, version: 1 };
      await refused(
        attest(0, otherVersion, signed.ecdsaSignature, signed.pqSignature),
        "InvalidAttestationSignature",
        [addr(11)],
      );
      const future = await sign(a(), input, (m) => ({ ...m, nonce: m.nonce + 1n }));
      await refused(
        attest(0, input, future.ecdsaSignature, future.pqSignature),
        "InvalidAttestationSignature",
        [addr(11)],
      );
      const wrongKeyHash = await sign(a(), input, (m) => ({ ...m, pqKeyHash: h("not my key") }));
      await refused(
        attest(0, input, wrongKeyHash.ecdsaSignature, wrongKeyHash.pqSignature),
        "InvalidAttestationSignature",
        [addr(11)],
      );
      // The untouched signature still works.
      await attest(0, input, signed.ecdsaSignature, signed.pqSignature);
      assert.equal((await getVersion(modelId, 2)).attestationCount, 1);
    });

    it("UnknownAttestation: an index at or past the version's attestation count", async () => {
      await refused(getAttestation(modelId, 1, 0), "UnknownAttestation", [modelId, 1, 0]);
      const count = (await getVersion(modelId, 2)).attestationCount;
      assert.equal(count, 1);
      const stored = await getAttestation(modelId, 2, 0);
      assert.ok(isAddressEqual(stored.attester, addr(11)));
      await refused(getAttestation(modelId, 2, 1), "UnknownAttestation", [modelId, 2, 1]);
      await refused(getAttestation(modelId, 2, 4_000_000_000), "UnknownAttestation", [
        modelId,
        2,
        4_000_000_000,
      ]);
    });
  });
});

describe("ModelRegistry behaviour", () => {
  it("models and versions count from 1, and addVersion returns the new number", async () => {
    const { modelId } = await registerModel(7, "counting");
    const count = await chain.publicClient.readContract({
      address: registry,
      abi,
      functionName: "modelCount",
    });
    assert.equal(BigInt(count), modelId);
    assert.ok(modelId >= 1n);
    assert.equal(await versionCount(modelId), 0);
    await refused(getVersion(modelId, 1), "UnknownVersion", [modelId, 1]);
    const sim = await chain.publicClient.simulateContract({
      account: account(7),
      address: registry,
      abi,
      functionName: "addVersion",
      args: [modelId, versionInput("count-1")],
    });
    assert.equal(sim.result, 1);
    for (const expected of [1, 2, 3]) {
      const { version } = await addVersion(7, modelId, versionInput(`count-${expected}`));
      assert.equal(version, expected);
      assert.equal(await versionCount(modelId), expected);
    }
    const next = await registerModel(7, "counting-2");
    assert.equal(next.modelId, modelId + 1n);
  });

  it("an account approved with ERC-721 approve may add versions; its approval ends on revoke", async () => {
    const owner = 7;
    const approved = 9;
    const { modelId } = await registerModel(owner, "approvals");
    await refused(tryAddVersion(approved, modelId, versionInput("ap-0")), "NotModelOwner", [
      modelId,
      addr(approved),
    ]);
    await sendAndWait(chain, () =>
      chain.wallet(owner).writeContract({
        address: registry,
        abi,
        functionName: "approve",
        args: [addr(approved), modelId],
      }),
    );
    const { version, receipt } = await addVersion(approved, modelId, versionInput("ap-1"));
    assert.equal(version, 1);
    const [log] = parseEventLogs({ abi, logs: receipt.logs, eventName: "VersionAdded" });
    assert.ok(log && isAddressEqual(log.args.publisher, addr(approved)));
    await deprecate(approved, modelId, 1, "approved accounts may deprecate too");
    assert.equal((await getVersion(modelId, 1)).deprecated, true);
    await sendAndWait(chain, () =>
      chain
        .wallet(owner)
        .writeContract({ address: registry, abi, functionName: "approve", args: [zeroAddress, modelId] }),
    );
    await refused(tryAddVersion(approved, modelId, versionInput("ap-2")), "NotModelOwner", [
      modelId,
      addr(approved),
    ]);
  });

  it("an operator (setApprovalForAll) may add versions", async () => {
    const owner = 7;
    const operator = 9;
    const { modelId } = await registerModel(owner, "operators");
    await sendAndWait(chain, () =>
      chain.wallet(owner).writeContract({
        address: registry,
        abi,
        functionName: "setApprovalForAll",
        args: [addr(operator), true],
      }),
    );
    assert.equal((await addVersion(operator, modelId, versionInput("op-1"))).version, 1);
    await sendAndWait(chain, () =>
      chain.wallet(owner).writeContract({
        address: registry,
        abi,
        functionName: "setApprovalForAll",
        args: [addr(operator), false],
      }),
    );
    await refused(tryAddVersion(operator, modelId, versionInput("op-2")), "NotModelOwner", [
      modelId,
      addr(operator),
    ]);
  });

  it("after an ERC-721 transfer the new owner adds versions and the old one is refused", async () => {
    const oldOwner = 7;
    const newOwner = 8;
    const { modelId } = await registerModel(oldOwner, "transfer");
    await addVersion(oldOwner, modelId, versionInput("tr-1"));
    await sendAndWait(chain, () =>
      chain.wallet(oldOwner).writeContract({
        address: registry,
        abi,
        functionName: "transferFrom",
        args: [addr(oldOwner), addr(newOwner), modelId],
      }),
    );
    assert.ok(isAddressEqual(await ownerOf(modelId), addr(newOwner)));
    assert.equal((await addVersion(newOwner, modelId, versionInput("tr-2"))).version, 2);
    await refused(tryAddVersion(oldOwner, modelId, versionInput("tr-3")), "NotModelOwner", [
      modelId,
      addr(oldOwner),
    ]);
    await refused(deprecate(oldOwner, modelId, 1, "not mine any more"), "NotModelOwner", [
      modelId,
      addr(oldOwner),
    ]);
    await deprecate(newOwner, modelId, 1, "new owner's call");
    assert.equal((await getVersion(modelId, 1)).deprecated, true);
  });

  it("detailsHash: storage, the detailsHash() view and viem's encoding agree", async () => {
    const { modelId } = await registerModel(7, "details");
    const cases: VersionInput[] = [
      versionInput("d-3x4"),
      versionInput("d-empty", { datasets: [], metrics: [] }),
      versionInput("d-neg", {
        datasets: [h("only")],
        metrics: [{ name: metricName("bias"), value: -(2n ** 255n) }],
        trainingRun: zeroHash,
        licence: zeroHash,
      }),
    ];
    const seen = new Set<Hex>();
    for (const input of cases) {
      const local = detailsHash(input);
      const view = await chain.publicClient.readContract({
        address: registry,
        abi,
        functionName: "detailsHash",
        args: [input.datasets, input.metrics, input.trainingRun, input.licence, input.modelCard],
      });
      assert.equal(view, local);
      const { version } = await addVersion(7, modelId, input);
      assert.equal((await getVersion(modelId, version)).detailsHash, local);
      seen.add(local);
    }
    assert.equal(seen.size, cases.length, "different details give different hashes");
    // Order matters: the commitment binds the lists as given.
    const swapped = versionInput("d-3x4");
    swapped.datasets.reverse();
    assert.notEqual(detailsHash(swapped), detailsHash(versionInput("d-3x4")));
    // Every committed field counts, the model card included.
    const base = versionInput("d-3x4");
    for (const field of ["trainingRun", "licence", "modelCard"] as const) {
      const changed = { ...base, [field]: h(`changed ${field}`) };
      const view = await chain.publicClient.readContract({
        address: registry,
        abi,
        functionName: "detailsHash",
        args: [changed.datasets, changed.metrics, changed.trainingRun, changed.licence, changed.modelCard],
      });
      assert.equal(view, detailsHash(changed));
      assert.notEqual(view, detailsHash(base), `${field} is committed`);
    }
  });

  it("VersionAdded decodes to the input; getVersion stores the same fields", async () => {
    const { modelId } = await registerModel(7, "events");
    await addVersion(7, modelId, versionInput("ev-parent"));
    const input = versionInput("ev-child", { parentModel: Number(modelId), parentVersion: 1 });
    const { receipt } = await addVersion(7, modelId, input);
    const logs = parseEventLogs({ abi, logs: receipt.logs, eventName: "VersionAdded" });
    assert.equal(logs.length, 1);
    const args = logs[0]?.args;
    assert.ok(args);
    assert.equal(args.modelId, modelId);
    assert.equal(args.version, 2);
    assert.equal(args.weightsDigest, input.weightsDigest);
    assert.ok(isAddressEqual(args.publisher, addr(7)));
    assert.deepEqual(args.input, input);
    const block = await chain.publicClient.getBlock({ blockNumber: receipt.blockNumber });
    const stored = await getVersion(modelId, 2);
    assert.deepEqual(stored, {
      weightsDigest: input.weightsDigest,
      detailsHash: detailsHash(input),
      createdAt: Number(block.timestamp),
      parentModel: Number(modelId),
      parentVersion: 1,
      format: input.format,
      attestationCount: 0,
      deprecated: false,
    });
  });

  it("attest stores attester, verdict, claimDigest and keccak256(pqSignature); the nonce moves; a replay fails", async () => {
    const owner = 7;
    const submitter = 0;
    const aud = auditor(10);
    const { modelId } = await registerModel(owner, "attested");
    await addVersion(owner, modelId, versionInput("att-1"));
    const bindReceipt = await bindPqKey(aud.index, toHex(aud.pq.publicKey));
    const [bound] = parseEventLogs({ abi, logs: bindReceipt.logs, eventName: "PqKeyBound" });
    assert.ok(bound);
    assert.equal(bound.args.publicKey, toHex(aud.pq.publicKey));
    assert.equal(bound.args.keyHash, pqKeyHash(aud.pq.publicKey));
    assert.equal(await boundKeyHash(aud.address), pqKeyHash(aud.pq.publicKey));

    const input: AttestationInput = {
      attester: aud.address,
      modelId,
      version: 1,
      claimDigest: h("claim: accuracy >= 0.98 on held-out set"),
      verdict: VERDICTS.pass,
    };
    const nonce0 = await nonces(aud.address);
    const { ecdsaSignature, pqSignature, message } = await sign(aud, input);
    const domain = attestationDomain(chain.chainId, registry);
    const check = await checkAttestationSignatures({
      domain,
      message,
      ecdsaSignature,
      pqSignature,
      pqPublicKey: toHex(aud.pq.publicKey),
    });
    assert.deepEqual(check, { ecdsa: { ok: true }, pq: { ok: true } });

    const receipt = await attest(submitter, input, ecdsaSignature, pqSignature);
    assert.equal(await nonces(aud.address), nonce0 + 1n);
    const block = await chain.publicClient.getBlock({ blockNumber: receipt.blockNumber });
    const stored = await getAttestation(modelId, 1, 0);
    assert.deepEqual(stored, {
      attester: aud.address,
      createdAt: Number(block.timestamp),
      verdict: VERDICTS.pass,
      claimDigest: input.claimDigest,
      pqSignatureHash: keccak256(pqSignature),
    });
    assert.equal((await getVersion(modelId, 1)).attestationCount, 1);

    const [log] = parseEventLogs({ abi, logs: receipt.logs, eventName: "Attested" });
    assert.ok(log);
    assert.equal(log.args.modelId, modelId);
    assert.equal(log.args.version, 1);
    assert.ok(isAddressEqual(log.args.attester, aud.address));
    assert.equal(log.args.index, 0);
    assert.deepEqual(log.args.input, input);
    assert.equal(log.args.nonce, nonce0);
    assert.equal(log.args.ecdsaSignature, ecdsaSignature);
    assert.equal(log.args.pqSignature, pqSignature);

    await refused(attest(submitter, input, ecdsaSignature, pqSignature), "InvalidAttestationSignature", [
      aud.address,
    ]);
    assert.equal(await nonces(aud.address), nonce0 + 1n);
    assert.equal((await getVersion(modelId, 1)).attestationCount, 1);

    // A second, freshly signed attestation lands at index 1.
    const second = { ...input, verdict: VERDICTS.inconclusive, claimDigest: h("second claim") };
    const s2 = await sign(aud, second);
    const r2 = await attest(submitter, second, s2.ecdsaSignature, s2.pqSignature);
    const [log2] = parseEventLogs({ abi, logs: r2.logs, eventName: "Attested" });
    assert.equal(log2?.args.index, 1);
    assert.equal((await getAttestation(modelId, 1, 1)).verdict, VERDICTS.inconclusive);
    assert.equal(await nonces(aud.address), nonce0 + 2n);
  });

  it("attestationDigest() view equals attestationDigest() in src/registry/attestation.ts", async () => {
    const { modelId } = await registerModel(7, "digest");
    await addVersion(7, modelId, versionInput("dg-1"));
    const aud = auditor(10); // bound in the previous test
    const domain = attestationDomain(chain.chainId, registry);
    const eip712 = await chain.publicClient.readContract({
      address: registry,
      abi,
      functionName: "eip712Domain",
    });
    assert.equal(eip712[1], domain.name);
    assert.equal(eip712[2], domain.version);
    assert.equal(eip712[3], BigInt(chain.chainId));
    assert.ok(isAddressEqual(eip712[4], registry));
    const seen = new Set<Hex>();
    for (const [verdict, nonce] of [
      [VERDICTS.pass, 0n],
      [VERDICTS.fail, 5n],
      [VERDICTS.inconclusive, 2n ** 200n],
    ] as const) {
      const input: AttestationInput = {
        attester: aud.address,
        modelId,
        version: 1,
        claimDigest: h("c"),
        verdict,
      };
      const onChain = await chain.publicClient.readContract({
        address: registry,
        abi,
        functionName: "attestationDigest",
        args: [input, nonce],
      });
      const local = attestationDigest(domain, await attestationMessage(input, nonce));
      assert.equal(onChain, local);
      seen.add(local);
    }
    assert.equal(seen.size, 3);
    // The type hash in the contract is the one the TypeScript types describe.
    const typehash = await chain.publicClient.readContract({
      address: registry,
      abi,
      functionName: "ATTESTATION_TYPEHASH",
    });
    assert.equal(
      typehash,
      keccak256(
        stringToHex(
          "Attestation(address attester,uint256 modelId,uint32 version,bytes32 weightsDigest,bytes32 claimDigest,uint8 verdict,bytes32 pqKeyHash,uint256 nonce)",
        ),
      ),
    );
  });
});

describe("ModelRegistry immutability of versions", () => {
  it("the ABI's state-changing functions are exactly the known ones", () => {
    assert.deepEqual(stateChangingFunctions(), EXPECTED_STATE_CHANGING);
  });

  it("a stored Version has only static fields, of which only attestationCount and deprecated are mutable", () => {
    for (const f of ["weightsDigest", "detailsHash", "createdAt", "parentModel", "parentVersion", "format"]) {
      assert.ok(IMMUTABLE_VERSION_FIELDS.includes(f), `Version.${f} is recorded`);
    }
    for (const f of MUTABLE_VERSION_FIELDS) assert.ok(VERSION_FIELDS.includes(f), `Version.${f} exists`);
    const fn = (abi as Abi).find((i): i is AbiFunction => i.type === "function" && i.name === "getVersion");
    const out = fn?.outputs[0];
    assert.ok(out && "components" in out);
    for (const c of out.components) {
      assert.match(c.type, /^(bytes\d+|uint\d+|int\d+|bool|address)$/, `Version.${c.name} is one word`);
    }
  });

  it("no call, succeeding or failing, alters an earlier version's recorded fields", async () => {
    const owner = 1;
    const newOwner = 2;
    const approved = 3;
    const operator = 4;
    const aud = auditor(5);
    const stranger = 6;
    const called = new Set<string>();
    const call = (key: string) => called.add(key);

    const { modelId: a } = await registerModel(owner, "immutable-a");
    const { modelId: b } = await registerModel(owner, "immutable-b");
    const inputs = new Map<string, VersionInput>();
    const add = async (i: number, m: bigint, input: VersionInput) => {
      const { version } = await addVersion(i, m, input);
      inputs.set(`${m}/${version}`, input);
      return version;
    };
    const a1 = await add(owner, a, versionInput("im-a1", { datasets: [], metrics: [] }));
    const a2 = await add(owner, a, versionInput("im-a2", { parentModel: Number(a), parentVersion: a1 }));
    const b1 = await add(
      owner,
      b,
      versionInput("im-b1", {
        parentModel: Number(a),
        parentVersion: a2,
        datasets: [h("b-ds")],
        metrics: [{ name: metricName("mse"), value: 42n }],
        format: stringToHex("onnx", { size: 8 }),
      }),
    );
    const a3 = await add(owner, a, versionInput("im-a3", { parentModel: Number(b), parentVersion: b1 }));
    const tracked: [bigint, number][] = [
      [a, a1],
      [a, a2],
      [b, b1],
      [a, a3],
    ];

    const rawVersion = async (m: bigint, v: number): Promise<Hex> => {
      const { data } = await chain.publicClient.call({
        to: registry,
        data: encodeFunctionData({ abi, functionName: "getVersion", args: [m, v] }),
      });
      assert.ok(data);
      return data;
    };
    // Version is a static struct: field i is word i of getVersion's return data. Every field but the two
    // mutable ones must keep its bytes.
    const immutableBytes = (raw: Hex) =>
      IMMUTABLE_VERSION_FIELDS.map((f) =>
        slice(raw, 32 * VERSION_FIELDS.indexOf(f), 32 * (VERSION_FIELDS.indexOf(f) + 1)),
      );
    const snapshots = new Map<string, { raw: Hex; decoded: Awaited<ReturnType<typeof getVersion>> }>();
    for (const [m, v] of tracked) {
      const decoded = await getVersion(m, v);
      const input = inputs.get(`${m}/${v}`);
      assert.ok(input);
      assert.equal(decoded.weightsDigest, input.weightsDigest);
      assert.equal(decoded.detailsHash, detailsHash(input));
      assert.equal(decoded.parentModel, input.parentModel);
      assert.equal(decoded.parentVersion, input.parentVersion);
      assert.equal(decoded.format, input.format);
      assert.ok(decoded.createdAt > 0);
      snapshots.set(`${m}/${v}`, { raw: await rawVersion(m, v), decoded });
    }
    const expectedMutable = new Map<string, { deprecated: boolean; attestationCount: number }>(
      tracked.map(([m, v]) => [`${m}/${v}`, { deprecated: false, attestationCount: 0 }]),
    );

    let checks = 0;
    const assertUnchanged = async (step: string) => {
      for (const [m, v] of tracked) {
        const key = `${m}/${v}`;
        const snap = snapshots.get(key);
        const mutable = expectedMutable.get(key);
        assert.ok(snap && mutable);
        const raw = await rawVersion(m, v);
        assert.deepEqual(immutableBytes(raw), immutableBytes(snap.raw), `${key} changed after ${step}`);
        const now = await getVersion(m, v);
        for (const field of IMMUTABLE_VERSION_FIELDS) {
          assert.equal(
            (now as Record<string, unknown>)[field],
            (snap.decoded as Record<string, unknown>)[field],
            `${key}.${field} after ${step}`,
          );
        }
        assert.equal(now.deprecated, mutable.deprecated, `${key}.deprecated after ${step}`);
        assert.equal(now.attestationCount, mutable.attestationCount, `${key}.attestationCount after ${step}`);
      }
      checks++;
    };
    await assertUnchanged("snapshot");

    // --- Every state-changing function, succeeding ---
    await registerModel(owner, "immutable-c");
    call("registerModel/1");
    await assertUnchanged("registerModel");

    const a4 = await add(owner, a, versionInput("im-a4", { parentModel: Number(a), parentVersion: a3 }));
    assert.equal(a4, 4);
    call("addVersion/2");
    await assertUnchanged("addVersion");

    await deprecate(owner, a, a1, "superseded");
    call("deprecateVersion/3");
    expectedMutable.set(`${a}/${a1}`, { deprecated: true, attestationCount: 0 });
    await assertUnchanged("deprecateVersion");

    // Any contract will do as the verifier here: the registry only checks that it has code.
    await setZkVerifier(owner, a, a1, registry, toHex(7n, { size: 32 }));
    call("setZkVerifier/4");
    await assertUnchanged("setZkVerifier on a deprecated version");

    await bindPqKey(aud.index, toHex(aud.pq.publicKey));
    call("bindPqKey/1");
    await assertUnchanged("bindPqKey");

    const attInput: AttestationInput = {
      attester: aud.address,
      modelId: a,
      version: a2,
      claimDigest: h("immutability claim"),
      verdict: VERDICTS.fail,
    };
    const signed = await sign(aud, attInput);
    await attest(0, attInput, signed.ecdsaSignature, signed.pqSignature);
    call("attest/3");
    expectedMutable.set(`${a}/${a2}`, { deprecated: false, attestationCount: 1 });
    await assertUnchanged("attest");

    await sendAndWait(chain, () =>
      chain
        .wallet(owner)
        .writeContract({ address: registry, abi, functionName: "approve", args: [addr(approved), a] }),
    );
    call("approve/2");
    await assertUnchanged("approve");
    assert.equal(await add(approved, a, versionInput("im-a5")), 5);
    await assertUnchanged("addVersion by the approved account");

    await sendAndWait(chain, () =>
      chain.wallet(owner).writeContract({
        address: registry,
        abi,
        functionName: "setApprovalForAll",
        args: [addr(operator), true],
      }),
    );
    call("setApprovalForAll/2");
    await assertUnchanged("setApprovalForAll");
    assert.equal(await add(operator, b, versionInput("im-b2")), 2);
    await assertUnchanged("addVersion by the operator");

    await sendAndWait(chain, () =>
      chain.wallet(owner).writeContract({
        address: registry,
        abi,
        functionName: "transferFrom",
        args: [addr(owner), addr(newOwner), a],
      }),
    );
    call("transferFrom/3");
    assert.ok(isAddressEqual(await ownerOf(a), addr(newOwner)));
    await assertUnchanged("transferFrom");

    await sendAndWait(chain, () =>
      chain.wallet(newOwner).writeContract({
        address: registry,
        abi,
        functionName: "safeTransferFrom",
        args: [addr(newOwner), addr(owner), a],
      }),
    );
    call("safeTransferFrom/3");
    assert.ok(isAddressEqual(await ownerOf(a), addr(owner)));
    await assertUnchanged("safeTransferFrom(from,to,id)");

    await sendAndWait(chain, () =>
      chain.wallet(owner).writeContract({
        address: registry,
        abi,
        functionName: "safeTransferFrom",
        args: [addr(owner), addr(newOwner), a, "0xc0ffee"],
      }),
    );
    call("safeTransferFrom/4");
    assert.ok(isAddressEqual(await ownerOf(a), addr(newOwner)));
    await assertUnchanged("safeTransferFrom(from,to,id,data)");

    // --- Every failing way to touch an existing version ---
    let failures = 0;
    const tryFail = async (
      step: string,
      p: Promise<unknown>,
      errorName: string,
      args: readonly unknown[],
    ) => {
      await refused(p, errorName, args);
      failures++;
      await assertUnchanged(step);
    };
    await tryFail(
      "addVersion by the old owner",
      tryAddVersion(owner, a, versionInput("x")),
      "NotModelOwner",
      [a, addr(owner)],
    );
    await tryFail(
      "addVersion by the approved account after transfer",
      tryAddVersion(approved, a, versionInput("x")),
      "NotModelOwner",
      [a, addr(approved)],
    );
    await tryFail(
      "addVersion by the old owner's operator",
      tryAddVersion(operator, a, versionInput("x")),
      "NotModelOwner",
      [a, addr(operator)],
    );
    await tryFail(
      "addVersion by a stranger",
      tryAddVersion(stranger, b, versionInput("x")),
      "NotModelOwner",
      [b, addr(stranger)],
    );
    await tryFail(
      "addVersion with empty weights",
      tryAddVersion(newOwner, a, versionInput("x", { weightsDigest: zeroHash })),
      "EmptyWeightsDigest",
      [],
    );
    await tryFail(
      "addVersion with a parent past the count",
      tryAddVersion(newOwner, a, versionInput("x", { parentModel: Number(a), parentVersion: 6 })),
      "UnknownParentVersion",
      [Number(a), 6],
    );
    await tryFail(
      "addVersion with parentVersion 0",
      tryAddVersion(newOwner, a, versionInput("x", { parentModel: Number(b), parentVersion: 0 })),
      "UnknownParentVersion",
      [Number(b), 0],
    );
    await tryFail(
      "addVersion with too many datasets",
      tryAddVersion(newOwner, a, versionInput("x", { datasets: Array(65).fill(h("d")) })),
      "TooManyEntries",
      [65n, 4n],
    );
    await tryFail("deprecate twice", deprecate(newOwner, a, a1, "again"), "VersionAlreadyDeprecated", [
      a,
      a1,
    ]);
    await tryFail("deprecate by the old owner", deprecate(owner, a, a2, "mine?"), "NotModelOwner", [
      a,
      addr(owner),
    ]);
    await tryFail("deprecate by a stranger", deprecate(stranger, b, b1, "vandal"), "NotModelOwner", [
      b,
      addr(stranger),
    ]);
    await tryFail("deprecate with no reason", deprecate(newOwner, a, a2, ""), "EmptyReason", []);
    await tryFail(
      "setZkVerifier twice",
      setZkVerifier(newOwner, a, a1, registry, toHex(8n, { size: 32 })),
      "ZkVerifierAlreadySet",
      [a, a1],
    );
    await tryFail("deprecate version 0", deprecate(newOwner, a, 0, "zero"), "UnknownVersion", [a, 0]);
    await tryFail(
      "attest replay",
      attest(0, attInput, signed.ecdsaSignature, signed.pqSignature),
      "InvalidAttestationSignature",
      [aud.address],
    );
    const forged = await sign(auditor(stranger), { ...attInput, version: a3 });
    await tryFail(
      "attest forged",
      attest(0, { ...attInput, version: a3 }, forged.ecdsaSignature, forged.pqSignature),
      "InvalidAttestationSignature",
      [aud.address],
    );
    const fresh = await sign(aud, { ...attInput, version: a3 });
    await tryFail(
      "attest with verdict None",
      attest(0, { ...attInput, version: a3, verdict: 0 }, fresh.ecdsaSignature, fresh.pqSignature),
      "InvalidVerdict",
      [],
    );
    await tryFail(
      "attest with a short ML-DSA signature",
      attest(0, { ...attInput, version: a3 }, fresh.ecdsaSignature, "0x01"),
      "InvalidPqSignatureLength",
      [1n],
    );
    await tryFail("rebind a PQ key", bindPqKey(aud.index, toHex(aud.pq.publicKey)), "PqKeyAlreadyBound", [
      aud.address,
    ]);
    assert.equal(failures, 19);

    // The lists committed by detailsHash are still those in the VersionAdded logs.
    const logs = await chain.publicClient.getContractEvents({
      address: registry,
      abi,
      eventName: "VersionAdded",
      args: { modelId: [a, b] },
      fromBlock: 0n,
    });
    for (const [m, v] of tracked) {
      const log = logs.find((l) => l.args.modelId === m && l.args.version === v);
      assert.ok(log?.args.input, `VersionAdded for ${m}/${v}`);
      const { input } = log.args;
      assert.equal(
        detailsHash({ ...input, datasets: [...input.datasets], metrics: [...input.metrics] }),
        (await getVersion(m, v)).detailsHash,
      );
    }

    assert.deepEqual(
      [...called].sort(),
      stateChangingFunctions(),
      "every state-changing function was exercised",
    );
    assert.ok(checks >= 30);
  });
});

describe("ModelRegistry zk verifier", () => {
  const owner = 1;
  const approved = 3;
  const stranger = 6;
  let modelId: bigint;
  let verifier: Address;
  const commitment = toHex(SNARK_FIELD - 1n, { size: 32 });

  before(async () => {
    ({ modelId } = await registerModel(owner, "zk"));
    for (const v of ["zk-v1", "zk-v2", "zk-v3"]) await addVersion(owner, modelId, versionInput(v));
    // Any contract will do as the verifier here: the registry only checks that it has code.
    verifier = getAddress(registry);
  });

  it("a version has no verifier until its owner sets one; setZkVerifier emits ZkVerifierSet", async () => {
    assert.deepEqual(await zkVerifierOf(modelId, 1), [zeroAddress, zeroHash]);
    const receipt = await setZkVerifier(owner, modelId, 1, verifier, commitment);
    const [log] = parseEventLogs({ abi, logs: receipt.logs, eventName: "ZkVerifierSet" });
    assert.ok(log, "ZkVerifierSet emitted");
    assert.deepEqual(log.args, { modelId, version: 1, verifier, commitment });
    assert.deepEqual(await zkVerifierOf(modelId, 1), [verifier, commitment]);
    assert.deepEqual(await zkVerifierOf(modelId, 2), [zeroAddress, zeroHash], "other versions unaffected");
  });

  it("ZkVerifierAlreadySet: a second call, even with the same values, is refused and changes nothing", async () => {
    await refused(setZkVerifier(owner, modelId, 1, verifier, commitment), "ZkVerifierAlreadySet", [
      modelId,
      1,
    ]);
    await refused(
      setZkVerifier(owner, modelId, 1, verifier, toHex(1n, { size: 32 })),
      "ZkVerifierAlreadySet",
      [modelId, 1],
    );
    assert.deepEqual(await zkVerifierOf(modelId, 1), [verifier, commitment]);
  });

  it("InvalidWeightsCommitment: zero, the field modulus and above are refused", async () => {
    for (const bad of [zeroHash, toHex(SNARK_FIELD, { size: 32 }), toHex(2n ** 256n - 1n, { size: 32 })]) {
      await refused(setZkVerifier(owner, modelId, 2, verifier, bad), "InvalidWeightsCommitment", [bad]);
    }
    assert.deepEqual(await zkVerifierOf(modelId, 2), [zeroAddress, zeroHash]);
  });

  it("VerifierHasNoCode: an account without code is refused", async () => {
    await refused(setZkVerifier(owner, modelId, 2, addr(stranger), commitment), "VerifierHasNoCode", [
      addr(stranger),
    ]);
    await refused(setZkVerifier(owner, modelId, 2, zeroAddress, commitment), "VerifierHasNoCode", [
      zeroAddress,
    ]);
  });

  it("NotModelOwner and UnknownVersion: a stranger, a missing version, a missing model", async () => {
    await refused(setZkVerifier(stranger, modelId, 2, verifier, commitment), "NotModelOwner", [
      modelId,
      addr(stranger),
    ]);
    await refused(setZkVerifier(owner, modelId, 4, verifier, commitment), "UnknownVersion", [modelId, 4]);
    await refused(setZkVerifier(owner, modelId, 0, verifier, commitment), "UnknownVersion", [modelId, 0]);
    await refused(setZkVerifier(owner, 999n, 1, verifier, commitment), "UnknownModel", [999n]);
    await refused(zkVerifierOf(modelId, 4), "UnknownVersion", [modelId, 4]);
  });

  it("an approved account may set it, as for addVersion; a deprecated version keeps it", async () => {
    await sendAndWait(chain, () =>
      chain
        .wallet(owner)
        .writeContract({ address: registry, abi, functionName: "approve", args: [addr(approved), modelId] }),
    );
    await setZkVerifier(approved, modelId, 2, verifier, toHex(2n, { size: 32 }));
    await deprecate(owner, modelId, 2, "superseded");
    assert.deepEqual(await zkVerifierOf(modelId, 2), [verifier, toHex(2n, { size: 32 })]);
    assert.equal((await getVersion(modelId, 2)).deprecated, true);
  });
});

describe("ModelRegistry gas", () => {
  const owner = 14;
  const aud = () => auditor(15);

  it("prints gas; addVersion with 3 datasets and 4 metrics stays within 150,000 (first, later, with parent)", async () => {
    const { modelId, receipt: reg } = await registerModel(owner, "gas");
    const input = versionInput("gas-1");
    assert.equal(input.datasets.length, 3);
    assert.equal(input.metrics.length, 4);
    const first = await addVersion(owner, modelId, input);
    const second = await addVersion(owner, modelId, versionInput("gas-2"));
    const withParent = await addVersion(
      owner,
      modelId,
      versionInput("gas-3", { parentModel: Number(modelId), parentVersion: 2 }),
    );
    const bind = await bindPqKey(aud().index, toHex(aud().pq.publicKey));
    const attInput: AttestationInput = {
      attester: aud().address,
      modelId,
      version: 1,
      claimDigest: h("gas claim"),
      verdict: VERDICTS.pass,
    };
    const s = await sign(aud(), attInput);
    const att = await attest(0, attInput, s.ecdsaSignature, s.pqSignature);
    console.log(
      [
        `gas registerModel: ${reg.gasUsed}`,
        `gas addVersion (3 datasets, 4 metrics, first version of the model): ${first.receipt.gasUsed}`,
        `gas addVersion (3 datasets, 4 metrics, second version): ${second.receipt.gasUsed}`,
        `gas addVersion (3 datasets, 4 metrics, third version, with parent): ${withParent.receipt.gasUsed}`,
        `gas bindPqKey: ${bind.gasUsed}`,
        `gas attest (first attestation of the version): ${att.gasUsed}`,
      ].join("\n"),
    );
    for (const r of [reg, first.receipt, second.receipt, withParent.receipt, bind, att]) {
      assert.ok(r.gasUsed > 21_000n);
    }
    assert.ok(first.receipt.gasUsed <= 150_000n, `first addVersion used ${first.receipt.gasUsed} gas`);
    assert.ok(second.receipt.gasUsed <= 150_000n, `second addVersion used ${second.receipt.gasUsed} gas`);
    assert.ok(
      withParent.receipt.gasUsed <= 150_000n,
      `addVersion with parent used ${withParent.receipt.gasUsed} gas`,
    );
  });
});

describe("ModelRegistry parent validation", () => {
  it("a parentVersion without a parentModel is refused", async () => {
    const { modelId } = await registerModel(7, "orphan");
    await refused(
      tryAddVersion(7, modelId, versionInput("orphan", { parentModel: 0, parentVersion: 5 })),
      "UnknownParentVersion",
      [0, 5],
    );
  });
});

describe("ModelRegistry error coverage", () => {
  it("every custom error declared in ModelRegistry.sol is in the ABI and was observed by a test", () => {
    const declared = declaredErrors();
    assert.ok(declared.length >= 15, `parsed only ${declared.join(", ")}`);
    const abiErrors = new Set<string>(abi.filter((item) => item.type === "error").map((item) => item.name));
    for (const name of declared) assert.ok(abiErrors.has(name), `${name} is in the ABI`);
    const missing = declared.filter((name) => !observedErrors.has(name));
    assert.deepEqual(missing, [], `custom errors never reached by a test: ${missing.join(", ")}`);
  });
});
