// circom_runtime ships JavaScript only; this declares the one entry point src/zk/witness.ts uses.
declare module "circom_runtime" {
  export function WitnessCalculatorBuilder(
    code: Uint8Array,
    options?: { sanityCheck?: boolean },
  ): Promise<unknown>;
}
