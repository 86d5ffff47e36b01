// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

// These contracts exist for tests only (test/contracts/inference-oracle.test.ts): consumers that record
// results, revert, burn all their gas, return a huge revert payload, or try to re-enter the oracle. They are
// compiled with the rest of contracts/ because contracts/test/ is not compiled; never deploy them.

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IInferenceOracle} from "./IInferenceOracle.sol";
import {InferenceOracle} from "./InferenceOracle.sol";
import {OracleConsumer} from "./OracleConsumer.sol";
import {IZkInferenceVerifier} from "./zk/IZkInferenceVerifier.sol";

/// @notice Test consumer: requests with its own MIND and records every result it receives.
contract RecordingConsumer is OracleConsumer {
    uint256 public fulfilled;
    uint256 public lastRequestId;
    int256 public lastOutput;
    bytes32 public lastWeightsDigest;

    constructor(IInferenceOracle oracle_, IERC20 feeToken_) OracleConsumer(oracle_, feeToken_) {}

    /// @notice Requests an inference, paying `fee` from this contract's balance.
    function requestInference(
        uint256 modelId,
        uint32 version,
        int256[] calldata input,
        bytes32 inputCid,
        IInferenceOracle.Aggregation aggregation,
        uint256 fee
    ) external returns (uint256) {
        return _requestInference(modelId, version, input, inputCid, aggregation, fee);
    }

    function _fulfill(uint256 requestId, int256 output, bytes32 weightsDigest) internal virtual override {
        fulfilled += 1;
        lastRequestId = requestId;
        lastOutput = output;
        lastWeightsDigest = weightsDigest;
    }
}

/// @notice Test consumer whose callback always reverts with a custom error.
contract RevertingConsumer is RecordingConsumer {
    error Refused(uint256 requestId);

    constructor(IInferenceOracle oracle_, IERC20 feeToken_) RecordingConsumer(oracle_, feeToken_) {}

    function _fulfill(uint256 requestId, int256, bytes32) internal pure override {
        revert Refused(requestId);
    }
}

/// @notice Test consumer whose callback burns all the gas it is given.
contract GasBurningConsumer is RecordingConsumer {
    uint256 public sink;

    constructor(IInferenceOracle oracle_, IERC20 feeToken_) RecordingConsumer(oracle_, feeToken_) {}

    function _fulfill(uint256, int256, bytes32) internal override {
        while (true) {
            sink += 1;
        }
    }
}

/// @notice Test consumer whose callback reverts with 64 KiB of data (a "return bomb").
contract ReturnBombConsumer is RecordingConsumer {
    constructor(IInferenceOracle oracle_, IERC20 feeToken_) RecordingConsumer(oracle_, feeToken_) {}

    function _fulfill(uint256, int256, bytes32) internal pure override {
        assembly {
            revert(0, 65536)
        }
    }
}

/// @notice Test consumer whose callback tries to finalize again (and so re-enter the oracle).
contract ReentrantConsumer is RecordingConsumer {
    constructor(IInferenceOracle oracle_, IERC20 feeToken_) RecordingConsumer(oracle_, feeToken_) {}

    function _fulfill(uint256 requestId, int256 output, bytes32 weightsDigest) internal override {
        InferenceOracle(address(oracle)).finalize(requestId);
        super._fulfill(requestId, output, weightsDigest);
    }
}

/// @notice Test stand-in for a zk verifier (test/oracle/zk-fulfilment.test.ts): accepts exactly one
///         pre-agreed proof for one (commitment, input, answer), bound to its prover the way a real proof is
///         (here: the proof's first word XOR the prover's address), and refuses everything else. The real
///         Groth16 verifier (contracts/zk/ZkInferenceVerifier.sol) is tested end to end in test/zk.
contract StandInZkVerifier is IZkInferenceVerifier {
    bytes32 public immutable statement;

    constructor(bytes32 commitment, int256[] memory input, int256 answer, uint256[8] memory proof) {
        statement = keccak256(abi.encode(commitment, input, answer, proof));
    }

    function verifyInference(
        bytes32 commitment,
        int256[] calldata input,
        int256 answer,
        address prover,
        uint256[8] calldata proof
    ) external view returns (bool) {
        uint256[8] memory unbound = proof;
        unbound[0] ^= uint256(uint160(prover));
        return keccak256(abi.encode(commitment, input, answer, unbound)) == statement;
    }
}

/// @notice Test stand-in for a broken zk verifier: reverts on every proof, as a verifier might on a malformed one.
contract RevertingZkVerifier is IZkInferenceVerifier {
    error Malformed();

    function verifyInference(bytes32, int256[] calldata, int256, address, uint256[8] calldata)
        external
        pure
        returns (bool)
    {
        revert Malformed();
    }
}
