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
