// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IInferenceConsumer, IInferenceOracle} from "./IInferenceOracle.sol";

/// @title OracleConsumer
/// @notice Base for contracts that request inferences: it pays the fee from the contract's own MIND, sends the
///         request, and accepts the result only from the oracle.
/// @dev Refunds of failed requests are credited in the oracle, not sent: `_withdrawOracleBalance` fetches them.
///      The oracle calls `onInference` with a fixed gas limit; a `_fulfill` that reverts or runs out of gas
///      loses the callback (the oracle logs `CallbackFailed`) but the result stays readable with
///      `InferenceOracle.getResult`.
abstract contract OracleConsumer is IInferenceConsumer {
    using SafeERC20 for IERC20;

    /// @notice The oracle whose callbacks this contract accepts.
    IInferenceOracle public immutable oracle;
    /// @notice The token the oracle's fees are paid in.
    IERC20 public immutable feeToken;

    /// @notice Only the oracle calls `onInference`; `caller` is not it.
    error OnlyOracle(address caller);

    /// @param oracle_ The oracle that requests go to and callbacks come from.
    /// @param feeToken_ The oracle's fee token (MIND).
    constructor(IInferenceOracle oracle_, IERC20 feeToken_) {
        oracle = oracle_;
        feeToken = feeToken_;
    }

    /// @inheritdoc IInferenceConsumer
    function onInference(uint256 requestId, int256 output, bytes32 weightsDigest) external {
        if (msg.sender != address(oracle)) revert OnlyOracle(msg.sender);
        _fulfill(requestId, output, weightsDigest);
    }

    /// @dev Approves exactly `fee` to the oracle and requests; this contract must hold the fee.
    function _requestInference(
        uint256 modelId,
        uint32 version,
        int256[] memory input,
        bytes32 inputCid,
        IInferenceOracle.Aggregation aggregation,
        uint256 fee
    ) internal returns (uint256 requestId) {
        if (fee != 0) feeToken.forceApprove(address(oracle), fee);
        requestId = oracle.request(modelId, version, input, inputCid, aggregation, fee);
    }

    /// @dev Pulls what the oracle holds for this contract (refunds of failed requests: fees and slashed stake)
    ///      into its own balance; the oracle pays only on request (pull payments), so without this call the
    ///      refunds would stay there for good.
    /// @return amount What the oracle said it held for this contract (zero: nothing was called).
    function _withdrawOracleBalance() internal returns (uint256 amount) {
        amount = oracle.withdrawable(address(this));
        if (amount != 0) oracle.withdraw();
    }

    /// @dev Receives a final result; runs within the oracle's callback gas limit.
    function _fulfill(uint256 requestId, int256 output, bytes32 weightsDigest) internal virtual;
}
