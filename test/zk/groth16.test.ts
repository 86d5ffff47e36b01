import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { curves, powersOfTau } from "snarkjs";
import {
  type Groth16Proof,
  prove,
  releaseCurve,
  toSolidityProof,
  verifyProof,
} from "../../src/zk/groth16.ts";
import { PtauTooSmallError, readPtauPower, requiredPower, resolvePtau } from "../../src/zk/ptau.ts";
import { type CircuitFiles, type CircuitSetup, setupCircuit } from "../../src/zk/setup.ts";
import { compileStatementCircuit } from "./fixtures/statement-circuit.ts";
import { circuitInput, expectedStatement, HONEST } from "./fixtures/statement-proof.ts";

describe("powers of tau", () => {
  it("requiredPower: the domain holds constraints, public signals and the constant, rounded up to 2^k", () => {
    assert.equal(requiredPower(1000, 1), 10); // 1002 <= 1024
    assert.equal(requiredPower(1022, 1), 10); // 1024
    assert.equal(requiredPower(1023, 1), 11); // 1025
    assert.equal(requiredPower(16_000, 1), 14);
  });

  it("the committed development file has power 15, and $LEDGERMIND_PTAU overrides it", () => {
    assert.equal(readPtauPower(resolvePtau()), 15);
    assert.equal(resolvePtau(undefined, { LEDGERMIND_PTAU: "/srv/hez_20.ptau" }), "/srv/hez_20.ptau");
    assert.equal(resolvePtau("/x.ptau", { LEDGERMIND_PTAU: "/srv/hez_20.ptau" }), "/x.ptau");
    // A relative path the user gives is relative to where they run, not to the package.
    assert.equal(resolvePtau("hez_16.ptau", {}), join(process.cwd(), "hez_16.ptau"));
  });
});

describe("Groth16 setup, proof and off-chain verification (statement fixture)", () => {
  const work = mkdtempSync(join(tmpdir(), "ledgermind-zk-"));
  const lines: string[] = [];
  let circuit: CircuitFiles;
  let setup: CircuitSetup;
  let proof: Groth16Proof;
  let publicSignals: string[];

  before(async () => {
    circuit = await compileStatementCircuit(join(work, "circuits"));
  });
  after(async () => {
    await releaseCurve();
    rmSync(work, { recursive: true, force: true });
  });

  it("refuses a ptau too small for the circuit, naming the power it needs", async () => {
    const small = join(work, "small.ptau");
    const curve = await curves.getCurveFromName("bn128", { singleThread: true });
    try {
      await powersOfTau.newAccumulator(curve, 4, small);
    } finally {
      await curve.terminate();
    }
    await assert.rejects(
      setupCircuit(circuit, { cacheDir: join(work, "keys"), ptau: small }),
      (err: unknown) => {
        assert.ok(err instanceof PtauTooSmallError, String(err));
        assert.equal(err.ptauPower, 4);
        assert.ok(err.neededPower > 4);
        assert.match(err.message, new RegExp(`needs power ${err.neededPower}`));
        return true;
      },
    );
  });

  it("sets up once, reporting progress, then reuses the cached keys by digest", async () => {
    setup = await setupCircuit(circuit, { cacheDir: join(work, "keys"), log: (l) => lines.push(l) });
    assert.equal(setup.fromCache, false);
    assert.ok(setup.zkey.includes(circuit.digest));
    assert.equal(setup.verificationKey.nPublic, 1, "one public signal: the statement");
    assert.ok(lines.some((l) => l.startsWith("setup: Groth16 key")) && lines.includes("setup: done"));
    console.log(`statement fixture: ${setup.constraints} constraints`);
    const mtime = statSync(setup.zkey).mtimeMs;
    const again = await setupCircuit(circuit, { cacheDir: join(work, "keys"), log: (l) => lines.push(l) });
    assert.equal(again.fromCache, true);
    assert.equal(statSync(again.zkey).mtimeMs, mtime, "the proving key is not rewritten");
    assert.deepEqual(again.verificationKey, setup.verificationKey);
  });

  it("remakes the keys after a switch of ptau file (as to a public ceremony's)", async () => {
    const other = join(work, "ceremony.ptau");
    copyFileSync(resolvePtau(), other);
    const remade = await setupCircuit(circuit, { cacheDir: join(work, "keys"), ptau: other });
    assert.equal(remade.fromCache, false);
    assert.notDeepEqual(remade.verificationKey, setup.verificationKey, "a fresh phase-2 contribution");
    setup = remade;
  });

  it("proves the statement and verifies off-chain; the public signal is the TypeScript statement", async () => {
    ({ proof, publicSignals } = await prove(setup, circuitInput(HONEST)));
    assert.deepEqual(publicSignals, [expectedStatement(HONEST).toString()]);
    assert.equal(await verifyProof(setup.verificationKey, proof, publicSignals), true);
  });

  it("a proof for another answer: the proof does not verify against that answer's statement", async () => {
    const other = expectedStatement({ ...HONEST, answer: HONEST.answer + 1n });
    assert.equal(await verifyProof(setup.verificationKey, proof, [other.toString()]), false);
  });

  it("a malformed proof (a tampered point, garbage) is false, not an error", async () => {
    const tampered = { ...proof, pi_a: [proof.pi_a[1] as string, proof.pi_a[0] as string, "1"] };
    assert.equal(await verifyProof(setup.verificationKey, tampered, publicSignals), false);
    const garbage = { ...proof, pi_c: ["x", "y", "1"] };
    assert.equal(await verifyProof(setup.verificationKey, garbage, publicSignals), false);
  });

  it("toSolidityProof swaps each pair of b (EIP-197 takes Fp2 as imaginary, real)", () => {
    const p = {
      pi_a: ["1", "2", "1"],
      pi_b: [
        ["3", "4"],
        ["5", "6"],
        ["1", "0"],
      ],
      pi_c: ["7", "8", "1"],
      protocol: "groth16",
      curve: "bn128",
    };
    assert.deepEqual(toSolidityProof(p), [1n, 2n, 4n, 3n, 6n, 5n, 7n, 8n]);
    assert.throws(() => toSolidityProof({ ...p, pi_c: ["7"] }), /malformed proof coordinate/);
  });
});
