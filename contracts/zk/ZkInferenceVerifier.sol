// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {PoseidonT3} from "poseidon-solidity/PoseidonT3.sol";
import {PoseidonT4} from "poseidon-solidity/PoseidonT4.sol";
import {PoseidonT5} from "poseidon-solidity/PoseidonT5.sol";
import {PoseidonT6} from "poseidon-solidity/PoseidonT6.sol";
import {IZkInferenceVerifier} from "./IZkInferenceVerifier.sol";

/// @notice The Groth16 verifier snarkjs exports for a circuit with one public signal (generated per circuit
///         at run time by src/zk/verifier.ts, never committed).
interface IGroth16Verifier {
    /// @notice Whether the proof (a, b, c) is valid for the public signals; false for any malformed proof.
    function verifyProof(
        uint256[2] calldata a,
        uint256[2][2] calldata b,
        uint256[2] calldata c,
        uint256[1] calldata publicSignals
    ) external view returns (bool);
}

/// @title ZkInferenceVerifier
/// @notice Binds a circuit's single public signal to (commitment, input, answer, prover): it recomputes the
///         statement Poseidon4(commitment, sponge(input, 4), answer mod p, prover) and asks the circuit's Groth16
///         verifier whether the proof is valid for it. One wrapper per circuit (per model architecture).
/// @dev The Poseidon libraries have public functions: they are deployed once per chain and linked into this
///      bytecode (src/zk/verifier.ts). Signed values enter the field as v mod p; inputs are bounded by 2^40
///      (the circuit's range check) and the answer by (p - 1) / 2, so that no two accepted integers share a
///      field element: without the bounds, a proof for input x would also verify for x + p.
contract ZkInferenceVerifier is IZkInferenceVerifier {
    /// @notice The BN254 scalar field's modulus, the field of every circuit signal.
    uint256 public constant FIELD = 21888242871839275222246405745257275088548364400416034343698204186575808495617;
    /// @notice An input value must be strictly within (-2^40, 2^40), the circuit's range check.
    int256 public constant INPUT_BOUND = 2 ** 40;
    /// @notice The input digest's sponge absorbs this many values per Poseidon call (PoseidonT6).
    uint256 public constant SPONGE_RATE = 4;

    /// @notice The circuit's Groth16 verifier.
    IGroth16Verifier public immutable groth16;

    /// @notice The Groth16 verifier address is zero.
    error ZeroVerifier();
    /// @notice The commitment is not a field element (not below FIELD).
    /// @param commitment The refused commitment.
    error CommitmentOutOfField(bytes32 commitment);
    /// @notice The input has no values.
    error EmptyInput();
    /// @notice An input value is not strictly within (-2^40, 2^40).
    /// @param index The value's position in the input.
    /// @param value The refused value.
    error InputOutOfRange(uint256 index, int256 value);
    /// @notice The answer's magnitude exceeds (FIELD - 1) / 2, so it would alias another answer in the field.
    /// @param answer The refused answer.
    error AnswerOutOfField(int256 answer);

    /// @param groth16Verifier The circuit's Groth16 verifier (snarkjs's export, one public signal).
    constructor(address groth16Verifier) {
        if (groth16Verifier == address(0)) revert ZeroVerifier();
        groth16 = IGroth16Verifier(groth16Verifier);
    }

    /// @inheritdoc IZkInferenceVerifier
    function verifyInference(
        bytes32 commitment,
        int256[] calldata input,
        int256 answer,
        address prover,
        uint256[8] calldata proof
    ) external view returns (bool) {
        uint256 statement = statementOf(commitment, input, answer, prover);
        return groth16.verifyProof(
            [proof[0], proof[1]], [[proof[2], proof[3]], [proof[4], proof[5]]], [proof[6], proof[7]], [statement]
        );
    }

    /// @notice The circuit's public signal: Poseidon4(commitment, inputDigest(input), answer mod p, prover).
    /// @param commitment The model's weights commitment.
    /// @param input The model's input in fixed point.
    /// @param answer The answer.
    /// @param prover The account the proof is for (an address is below p as it stands).
    /// @return The statement, a field element.
    function statementOf(bytes32 commitment, int256[] calldata input, int256 answer, address prover)
        public
        pure
        returns (uint256)
    {
        if (uint256(commitment) >= FIELD) revert CommitmentOutOfField(commitment);
        if (answer > int256((FIELD - 1) / 2) || answer < -int256((FIELD - 1) / 2)) revert AnswerOutOfField(answer);
        return PoseidonT5.hash([uint256(commitment), inputDigest(input), _toField(answer), uint256(uint160(prover))]);
    }

    /// @notice The input digest sponge(input, 4): h = length; each chunk of rate = min(length, 4) values,
    ///         the last zero-padded, is absorbed as h = Poseidon(rate + 1)([h, ...chunk]).
    /// @param input The model's input in fixed point.
    /// @return The digest, a field element.
    function inputDigest(int256[] calldata input) public pure returns (uint256) {
        uint256 n = input.length;
        if (n == 0) revert EmptyInput();
        if (n == 1) return PoseidonT3.hash([n, _inputAt(input, 0)]);
        if (n == 2) return PoseidonT4.hash([n, _inputAt(input, 0), _inputAt(input, 1)]);
        if (n == 3) return PoseidonT5.hash([n, _inputAt(input, 0), _inputAt(input, 1), _inputAt(input, 2)]);
        uint256 h = n;
        for (uint256 i = 0; i < n; i += SPONGE_RATE) {
            h = PoseidonT6.hash(
                [h, _inputAt(input, i), _inputAt(input, i + 1), _inputAt(input, i + 2), _inputAt(input, i + 3)]
            );
        }
        return h;
    }

    /// @dev The value at `i` as a field element after the range check; zero past the end (the sponge's padding).
    function _inputAt(int256[] calldata input, uint256 i) private pure returns (uint256) {
        if (i >= input.length) return 0;
        int256 v = input[i];
        if (v >= INPUT_BOUND || v <= -INPUT_BOUND) revert InputOutOfRange(i, v);
        return _toField(v);
    }

    /// @dev v mod FIELD for |v| < FIELD (callers bound v): negatives become FIELD - |v|.
    function _toField(int256 v) private pure returns (uint256) {
        // Both casts are of non-negative values, and -v cannot overflow: callers bound |v| below FIELD.
        // forge-lint: disable-next-line(unsafe-typecast)
        return v >= 0 ? uint256(v) : FIELD - uint256(-v);
    }
}
