// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title IZkInferenceVerifier
/// @notice Checks a zero-knowledge proof that the model committed to by `commitment` turns `input` into
///         `answer`, made by `prover` (the circuit's one public signal is Poseidon4(commitment, inputDigest,
///         answer mod p, prover), src/zk/commitment.ts). InferenceOracle calls it for `fulfillByProof`.
interface IZkInferenceVerifier {
    /// @notice Whether `proof` proves that the weights behind `commitment` map `input` to `answer`.
    /// @dev Must return false, not revert, for a malformed proof; the oracle treats a revert as false too.
    /// @param commitment The weights commitment recorded in the ModelRegistry for the version.
    /// @param input The fixed-point input, as requested.
    /// @param answer The claimed answer (the single output, or the argmax label).
    /// @param prover The account the proof was made for: a proof copied by anyone else does not verify.
    /// @param proof The Groth16 proof: a (2), b (2x2), c (2), flattened in that order.
    /// @return True when the proof verifies.
    function verifyInference(
        bytes32 commitment,
        int256[] calldata input,
        int256 answer,
        address prover,
        uint256[8] calldata proof
    ) external view returns (bool);
}
