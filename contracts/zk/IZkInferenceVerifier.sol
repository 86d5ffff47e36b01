// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title IZkInferenceVerifier
/// @notice Checks a zero-knowledge proof that the model committed to by `commitment` turns `input` into
///         `answer` (the statement of the zk specification: Poseidon3(commitment, inputDigest,
///         answer mod p), the circuit's one public signal). InferenceOracle calls it for `fulfillByProof`.
interface IZkInferenceVerifier {
    /// @notice Whether `proof` proves that the weights behind `commitment` map `input` to `answer`.
    /// @dev Must return false, not revert, for a malformed proof; the oracle treats a revert as false too.
    /// @param commitment The weights commitment recorded in the ModelRegistry for the version.
    /// @param input The fixed-point input, as requested.
    /// @param answer The claimed answer (the single output, or the argmax label).
    /// @param proof The Groth16 proof: a (2), b (2x2), c (2), flattened in that order.
    /// @return True when the proof verifies.
    function verifyInference(bytes32 commitment, int256[] calldata input, int256 answer, uint256[8] calldata proof)
        external
        view
        returns (bool);
}
