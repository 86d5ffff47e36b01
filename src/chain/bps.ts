/** Basis points, as every Ledgermind contract counts shares of stakes and pools: 10,000 = 100%. */
export const BPS = 10_000n;

/** A slash as the contracts compute it: the stake times the rate in basis points, rounded down. */
export function slashAmount(stake: bigint, slashBps: number | bigint): bigint {
  return (stake * BigInt(slashBps)) / BPS;
}
