// Zero-knowledge proofs of inference: constraints, setup, proving and verification time, on-chain gas.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Abi, encodeFunctionData, toHex } from "viem";
import { connect } from "../src/chain/connect.ts";
import { ZkInferenceVerifier } from "../src/chain/generated/contracts.ts";
import { prove, releaseCurve, toSolidityProof, verifyProof } from "../src/zk/groth16.ts";
import { type CircuitFiles, setupCircuit } from "../src/zk/setup.ts";
import {
  compileGroth16Verifier,
  deployGroth16Verifier,
  deployInferenceVerifier,
} from "../src/zk/verifier.ts";
import { compileStatementCircuit } from "../test/zk/fixtures/statement-circuit.ts";
import { circuitInput, HONEST, type Statement } from "../test/zk/fixtures/statement-proof.ts";
import type { Figures } from "./results-file.ts";

/** What a circuit's figures are measured on: its files, its input JSON and the statement it proves. */
export interface ZkBenchCase {
  name: string;
  circuit: (cacheDir: string) => Promise<CircuitFiles>;
  input: Record<string, unknown>;
  statement: Statement;
}

/** The statement alone (test/zk/fixtures/statement.circom): the floor under every model's circuit. */
const CASES: ZkBenchCase[] = [
  { name: "statement", circuit: compileStatementCircuit, input: circuitInput(HONEST), statement: HONEST },
];

const seconds = (since: number) => Math.round((performance.now() - since) / 10) / 100;

/** Per circuit: a cold setup (fresh key cache), one proof, one off-chain check, and gas on a fresh chain. */
export async function benchZk(): Promise<Figures> {
  const work = mkdtempSync(join(tmpdir(), "lm-bench-zk-"));
  const chain = await connect({ ephemeral: true });
  const figures: Figures = {};
  try {
    for (const c of CASES) {
      const circuit = await c.circuit(join(work, "circuits"));
      let t = performance.now();
      const setup = await setupCircuit(circuit, { cacheDir: join(work, "keys") });
      figures[`zk.setup_s.${c.name}`] = seconds(t);
      figures[`zk.constraints.${c.name}`] = setup.constraints;
      t = performance.now();
      const { proof, publicSignals } = await prove(setup, c.input);
      figures[`zk.prove_s.${c.name}`] = seconds(t);
      t = performance.now();
      if (!(await verifyProof(setup.verificationKey, proof, publicSignals)))
        throw new Error(`${c.name}: proof invalid`);
      figures[`zk.verify_s.${c.name}`] = seconds(t);

      const groth16 = await deployGroth16Verifier(chain, setup);
      const wrapper = await deployInferenceVerifier(chain, groth16);
      const p = toSolidityProof(proof);
      const { abi } = await compileGroth16Verifier(setup);
      const bareData = encodeFunctionData({
        abi,
        functionName: "verifyProof",
        args: [
          [p[0], p[1]],
          [
            [p[2], p[3]],
            [p[4], p[5]],
          ],
          [p[6], p[7]],
          publicSignals.map(BigInt),
        ],
      });
      const wrappedData = encodeFunctionData({
        abi: ZkInferenceVerifier.abi as Abi,
        functionName: "verifyInference",
        args: [
          toHex(c.statement.commitment, { size: 32 }),
          c.statement.input,
          c.statement.answer,
          c.statement.prover,
          p,
        ],
      });
      figures[`gas.zk.verify_groth16.${c.name}`] = Number(
        await chain.publicClient.estimateGas({ to: groth16, data: bareData }),
      );
      figures[`gas.zk.verify_inference.${c.name}`] = Number(
        await chain.publicClient.estimateGas({ to: wrapper, data: wrappedData }),
      );
    }
    return figures;
  } finally {
    await releaseCurve();
    await chain.close();
    rmSync(work, { recursive: true, force: true });
  }
}
