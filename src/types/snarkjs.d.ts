// snarkjs 0.7 ships no type declarations: these cover the calls Ledgermind makes (src/zk, scripts/zk-dev-ptau.ts, test/zk).
declare module "snarkjs" {
  /** snarkjs's logger: any object with these methods; progress goes to `info`/`debug`. */
  export interface SnarkLogger {
    debug(message: string): void;
    info(message: string): void;
    warn(message: string): void;
    error(message: string): void;
    /** Used by a few counters (powersOfTau.newAccumulator's, from 100,000 points up). */
    log(message: string): void;
  }

  /** A Groth16 proof as snarkjs writes it: projective coordinates as decimal strings. */
  export interface Groth16Proof {
    pi_a: string[];
    pi_b: string[][];
    pi_c: string[];
    protocol: string;
    curve: string;
  }

  /** An in-memory (or file-backed) buffer snarkjs reads and writes instead of a path. */
  export interface MemFile {
    type: "mem";
    data?: Uint8Array;
  }

  export type FileRef = string | MemFile | Uint8Array;

  /** The elliptic curve object from ffjavascript; holds worker threads until terminated. */
  export interface Curve {
    terminate(): Promise<void>;
  }

  export namespace curves {
    function getCurveFromName(name: string, options?: { singleThread?: boolean }): Promise<Curve>;
  }

  export namespace powersOfTau {
    function newAccumulator(
      curve: Curve,
      power: number,
      fileName: string,
      logger?: SnarkLogger,
    ): Promise<unknown>;
    function contribute(
      oldPtau: string,
      newPtau: string,
      name: string,
      entropy: string,
      logger?: SnarkLogger,
    ): Promise<unknown>;
    function preparePhase2(oldPtau: string, newPtau: string, logger?: SnarkLogger): Promise<void>;
  }

  export namespace r1cs {
    function info(
      r1csName: string,
      logger?: SnarkLogger,
    ): Promise<{
      nConstraints: number;
      nVars: number;
      nOutputs: number;
      nPubInputs: number;
      nPrvInputs: number;
    }>;
  }

  export namespace zKey {
    function newZKey(
      r1csName: string,
      ptauName: string,
      zkeyName: FileRef,
      logger?: SnarkLogger,
    ): Promise<unknown>;
    function contribute(
      zkeyOld: FileRef,
      zkeyNew: FileRef,
      name: string,
      entropy: string,
      logger?: SnarkLogger,
    ): Promise<Uint8Array>;
    function exportVerificationKey(zkeyName: FileRef, logger?: SnarkLogger): Promise<Record<string, unknown>>;
    function exportSolidityVerifier(
      zkeyName: FileRef,
      templates: { groth16: string },
      logger?: SnarkLogger,
    ): Promise<string>;
  }

  export namespace groth16 {
    function fullProve(
      input: Record<string, unknown>,
      wasmFile: FileRef,
      zkeyFile: FileRef,
      logger?: SnarkLogger,
    ): Promise<{ proof: Groth16Proof; publicSignals: string[] }>;
    function verify(
      vk: Record<string, unknown>,
      publicSignals: readonly string[],
      proof: Groth16Proof,
      logger?: SnarkLogger,
    ): Promise<boolean>;
  }
}
