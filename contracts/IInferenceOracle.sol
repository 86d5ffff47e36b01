// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title IInferenceOracle
/// @notice What a consumer contract needs of the inference oracle. Values are fixed point with
///         `1_000_000` meaning 1.0 (scores, regressions) or plain class indices (labels).
interface IInferenceOracle {
    /// @notice How operators' answers become one result: the median for scores and regressions,
    ///         the most frequent value for labels.
    enum Aggregation {
        Median,
        Majority
    }

    /// @notice Requests an inference from a registered model version; the caller is called back with
    ///         `IInferenceConsumer.onInference` once the result is final. The fee, in MIND, is pulled from
    ///         the caller (approve it first) and refunded if too few operators answer in time, or if their answers
    ///         split with no strict majority of the revealed stake behind one result.
    /// @param modelId The model in the ModelRegistry.
    /// @param version The model's version.
    /// @param input Inline fixed-point features (empty when `inputCid` is given).
    /// @param inputCid The sha256 digest of the input's content (CID v1 raw), or zero for inline input.
    /// @param aggregation How answers are combined.
    /// @param fee The fee offered to the operators who agree with the result.
    /// @return requestId The request's id.
    function request(
        uint256 modelId,
        uint32 version,
        int256[] calldata input,
        bytes32 inputCid,
        Aggregation aggregation,
        uint256 fee
    ) external returns (uint256 requestId);

    /// @notice Pays out the caller's withdrawable balance (for a requester: refunded fees and the stake
    ///         slashed from silent operators of its failed requests). Pull payment.
    function withdraw() external;

    /// @notice What `account` may withdraw now.
    /// @param account The account.
    /// @return The amount.
    function withdrawable(address account) external view returns (uint256);

    /// @notice Whether `requestId` is still open: neither finalized nor failed. A consumer renews a request
    ///         only once this is false, so that a live request is never abandoned nor its fee paid twice.
    /// @param requestId The request.
    /// @return True while the request may still be answered or fail.
    function isPending(uint256 requestId) external view returns (bool);
}

/// @title IInferenceConsumer
/// @notice Implemented by contracts that request inferences.
interface IInferenceConsumer {
    /// @notice Called by the oracle, with a gas limit, when a request's result is final.
    /// @param requestId The request.
    /// @param output The aggregated output (fixed point, 1_000_000 = 1.0, or a label).
    /// @param weightsDigest The sha256 digest of the weights of the model version that answered.
    function onInference(uint256 requestId, int256 output, bytes32 weightsDigest) external;
}

/// @title IZkInferenceOracle
/// @notice Fulfilment by zero-knowledge proof: one registered operator of a version that has a verifier in the
///         ModelRegistry proves that the committed weights turn the request's inline input into its output.
interface IZkInferenceOracle {
    /// @notice A request was finalized by `prover`'s proof, checked by `verifier` against `commitment`.
    event InferenceProven(uint256 indexed requestId, address indexed prover, address verifier, bytes32 commitment);

    /// @notice The request's input came as a CID: the contract never saw it, so no proof can be bound to it.
    ///         Such a request is answered by commit-reveal or by a report.
    error ProofNeedsInlineInput(uint256 requestId);
    /// @notice The input given with the proof does not hash to the request's input.
    error InputMismatch(uint256 requestId);
    /// @notice The model version has no zk verifier in the ModelRegistry (`setZkVerifier`).
    error NoZkVerifier(uint256 modelId, uint32 version);
    /// @notice The verifier refused the proof (or reverted on it); the request stays open.
    error InvalidProof(uint256 requestId);

    /// @notice Finalizes an open request with `output`, proven by a zero-knowledge proof checked on-chain by the
    ///         version's verifier against the weights commitment in the registry. The caller must be an
    ///         active operator of the request's version; it earns the whole fee.
    /// @param requestId The request (open, with inline input).
    /// @param input The request's input, exactly as requested.
    /// @param output The proven answer.
    /// @param proof The Groth16 proof (a, b, c flattened).
    function fulfillByProof(uint256 requestId, int256[] calldata input, int256 output, uint256[8] calldata proof)
        external;
}
