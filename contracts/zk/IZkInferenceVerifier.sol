// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title IZkInferenceVerifier
/// @notice Checks a zero-knowledge proof that a model whose weights are bound by `commitment` turned `input`
///         into `answer` (the statement of /work/notes/zk-spec.md, issue 15). What InferenceOracle calls.
interface IZkInferenceVerifier {
    /// @notice Whether `proof` proves that the committed model answers `answer` on `input`.
    /// @param commitment The model's weights commitment (a BN254 field element, as registered).
    /// @param input The model's input in fixed point (1e6 = 1.0), each |value| below 2^40.
    /// @param answer The oracle's answer: the single output, else the argmax index.
    /// @param proof The Groth16 proof as [a.x, a.y, b.x1, b.x0, b.y1, b.y0, c.x, c.y] (Solidity's order).
    /// @return True only for a valid proof of exactly this statement; a malformed proof gives false.
    function verifyInference(bytes32 commitment, int256[] calldata input, int256 answer, uint256[8] calldata proof)
        external
        view
        returns (bool);
}
