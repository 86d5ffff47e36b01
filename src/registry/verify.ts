import type { Address, Hex } from "viem";
import { cidFromDigest } from "../storage/cid.ts";
import { attestationDomain, checkAttestationSignatures, type SignatureCheck } from "./attestation.ts";
import {
  type AttestationRecord,
  getPqPublicKey,
  getVersion,
  listAttestations,
  type Registry,
  type VersionRecord,
} from "./client.ts";

export interface AttestationVerdict {
  index: number;
  attester: Address;
  verdict: string;
  claimCid: string;
  signatures: SignatureCheck;
}

export interface VerifyReport {
  ok: boolean;
  modelId: string;
  version: number;
  /** What the file hashes to, and what the chain holds. */
  actual: { digest: Hex; cid: string };
  expected: { digest: Hex; cid: string };
  deprecated: boolean;
  attestations: AttestationVerdict[];
  /** One line per failure, each naming its cause; empty when `ok`. */
  problems: string[];
}

/** Pure: judges the evidence gathered from the chain against the file's digest. */
export function judge(
  record: VersionRecord,
  fileDigest: Hex,
  attestations: { record: AttestationRecord; signatures: SignatureCheck }[],
): VerifyReport {
  const problems: string[] = [];
  if (fileDigest !== record.weightsDigest) {
    problems.push(
      `weights differ: given ${cidFromDigest(fileDigest)}, model ${record.modelId} version ${record.version} registered ${record.weightsCid}`,
    );
  }
  for (const { record: a, signatures } of attestations) {
    if (!signatures.ecdsa.ok)
      problems.push(`attestation #${a.index} by ${a.attester}: ${signatures.ecdsa.reason}`);
    if (!signatures.pq.ok) problems.push(`attestation #${a.index} by ${a.attester}: ${signatures.pq.reason}`);
  }
  return {
    ok: problems.length === 0,
    modelId: record.modelId.toString(),
    version: record.version,
    actual: { digest: fileDigest, cid: cidFromDigest(fileDigest) },
    expected: { digest: record.weightsDigest, cid: record.weightsCid },
    deprecated: record.deprecated,
    attestations: attestations.map(({ record: a, signatures }) => ({
      index: a.index,
      attester: a.attester,
      verdict: a.verdict,
      claimCid: a.claimCid,
      signatures,
    })),
    problems,
  };
}

/**
 * Checks a weights digest against the registry: the digest must equal the version's, and every
 * attestation's ECDSA and ML-DSA signatures must verify from the record alone.
 */
export async function verifyVersion(
  reg: Registry,
  modelId: bigint,
  version: number,
  fileDigest: Hex,
): Promise<VerifyReport> {
  const record = await getVersion(reg, modelId, version);
  const attestations = await listAttestations(reg, record);
  const domain = attestationDomain(reg.chain.chainId, reg.address);
  const checked = [];
  for (const a of attestations) {
    const pqPublicKey = await getPqPublicKey(reg, a.attester);
    const signatures = await checkAttestationSignatures({
      domain,
      message: a.message,
      ecdsaSignature: a.ecdsaSignature,
      pqSignature: a.pqSignature,
      pqPublicKey,
    });
    checked.push({ record: a, signatures });
  }
  return judge(record, fileDigest, checked);
}
