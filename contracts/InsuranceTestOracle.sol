// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IInferenceConsumer, IInferenceOracle} from "./IInferenceOracle.sol";

/// @title InsuranceTestOracle
/// @notice EXISTS FOR TESTS ONLY: never deploy it anywhere that matters. It stands in for the inference oracle
///         in CropInsurance's unit tests: `request` pulls the fee and records the request like the real
///         oracle, and the test (anyone, in fact) decides the answer with `fulfill`, fails a request with
///         `refund` (credited to the consumer's pull balance, as the real oracle does), or delivers an
///         arbitrary callback with `deliver`. No operators, no stakes, no checks.
contract InsuranceTestOracle is IInferenceOracle {
    using SafeERC20 for IERC20;

    /// @notice A recorded request.
    struct Request {
        address consumer;
        uint256 modelId;
        uint32 version;
        bytes32 inputCid;
        Aggregation aggregation;
        uint256 fee;
        bool open;
        int256[] input;
    }

    /// @notice The fee token.
    IERC20 public immutable token;
    /// @notice Requests made; ids are 0..requestCount-1.
    uint256 public requestCount;
    mapping(uint256 requestId => Request) internal _requests;
    mapping(address account => uint256) internal _balances;

    /// @notice A request was recorded.
    event Requested(uint256 indexed requestId, address indexed consumer, uint256 fee);
    /// @notice A request was answered.
    event Fulfilled(uint256 indexed requestId, int256 output);
    /// @notice A request failed and its fee was credited to the consumer's withdrawable balance.
    event Refunded(uint256 indexed requestId, uint256 fee);
    /// @notice `account` withdrew its balance.
    event Withdrawn(address indexed account, uint256 amount);

    /// @notice The request is not open.
    error RequestNotOpen(uint256 requestId);
    /// @notice The caller has no balance to withdraw.
    error NothingToWithdraw(address account);

    /// @notice A test oracle taking fees in `token_`.
    /// @param token_ The fee token.
    constructor(IERC20 token_) {
        token = token_;
    }

    /// @inheritdoc IInferenceOracle
    function request(
        uint256 modelId,
        uint32 version,
        int256[] calldata input,
        bytes32 inputCid,
        Aggregation aggregation,
        uint256 fee
    ) external returns (uint256 requestId) {
        requestId = requestCount++;
        token.safeTransferFrom(msg.sender, address(this), fee);
        Request storage r = _requests[requestId];
        r.consumer = msg.sender;
        r.modelId = modelId;
        r.version = version;
        r.inputCid = inputCid;
        r.aggregation = aggregation;
        r.fee = fee;
        r.open = true;
        r.input = input;
        emit Requested(requestId, msg.sender, fee);
    }

    /// @notice Answers an open request: calls the consumer back; the fee stays here (the "operators'").
    /// @param requestId The request.
    /// @param output The answer.
    /// @param weightsDigest The weights digest to report.
    function fulfill(uint256 requestId, int256 output, bytes32 weightsDigest) external {
        Request storage r = _requests[requestId];
        if (!r.open) revert RequestNotOpen(requestId);
        r.open = false;
        emit Fulfilled(requestId, output);
        IInferenceConsumer(r.consumer).onInference(requestId, output, weightsDigest);
    }

    /// @notice Fails an open request and credits its fee plus `slashed` (tokens the caller adds, standing for
    ///         the stake of silent operators) to the consumer's withdrawable balance, without a callback.
    /// @param requestId The request.
    /// @param slashed Extra tokens pulled from the caller (approve them first) and refunded with the fee.
    function refund(uint256 requestId, uint256 slashed) external {
        Request storage r = _requests[requestId];
        if (!r.open) revert RequestNotOpen(requestId);
        r.open = false;
        uint256 amount = r.fee + slashed;
        _balances[r.consumer] += amount;
        emit Refunded(requestId, amount);
        if (slashed != 0) token.safeTransferFrom(msg.sender, address(this), slashed);
    }

    /// @inheritdoc IInferenceOracle
    function withdraw() external {
        uint256 amount = _balances[msg.sender];
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        _balances[msg.sender] = 0;
        emit Withdrawn(msg.sender, amount);
        token.safeTransfer(msg.sender, amount);
    }

    /// @inheritdoc IInferenceOracle
    function withdrawable(address account) external view returns (uint256) {
        return _balances[account];
    }

    /// @inheritdoc IInferenceOracle
    function isPending(uint256 requestId) external view returns (bool) {
        return _requests[requestId].open;
    }

    /// @notice Calls `consumer.onInference` with anything: for testing how consumers refuse bad callbacks.
    /// @param consumer The consumer.
    /// @param requestId The request id to claim.
    /// @param output The output.
    /// @param weightsDigest The digest.
    function deliver(address consumer, uint256 requestId, int256 output, bytes32 weightsDigest) external {
        IInferenceConsumer(consumer).onInference(requestId, output, weightsDigest);
    }

    /// @notice A recorded request.
    /// @param requestId The request.
    /// @return The request.
    function getRequest(uint256 requestId) external view returns (Request memory) {
        return _requests[requestId];
    }
}
