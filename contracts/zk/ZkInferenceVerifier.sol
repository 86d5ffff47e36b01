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
///         statement Poseidon4(commitment, inputDigest(input), answer mod p, prover) and asks the circuit's Groth16
///         verifier whether the proof is valid for it. One wrapper per circuit (per model architecture, or per
///         version for a circuit with constant weights).
/// @dev The Poseidon libraries have public functions: they are deployed once per chain and linked into this
///      bytecode (src/zk/verifier.ts). Signed values enter the field as v mod p; inputs are bounded by
///      2^inputBits (the circuit's range check) and the answer by (p - 1) / 2, so that no two accepted integers
///      share a field element: without the bounds, a proof for input x would also verify for x + p.
contract ZkInferenceVerifier is IZkInferenceVerifier {
    /// @notice The BN254 scalar field's modulus, the field of every circuit signal.
    uint256 public constant FIELD = 21888242871839275222246405745257275088548364400416034343698204186575808495617;
    /// @notice The input digest's sponge absorbs this many packed elements per Poseidon call (PoseidonT6).
    uint256 public constant SPONGE_RATE = 4;
    /// @notice The widest input range a circuit may prove.
    uint256 public constant MAX_INPUT_BITS = 64;
    /// @dev A packed element uses at most this many bits, so it stays below FIELD.
    uint256 private constant _PACKED_BITS = 253;

    /// @notice The circuit's Groth16 verifier.
    IGroth16Verifier public immutable groth16;
    /// @notice The circuit proves inputs strictly within (-2^inputBits, 2^inputBits).
    uint256 public immutable inputBits;
    /// @notice 2^inputBits.
    int256 public immutable inputBound;
    /// @notice How many inputs the digest packs into one field element: floor(253 / (inputBits + 1)).
    uint256 public immutable inputsPerElement;

    /// @notice The Groth16 verifier address is zero.
    error ZeroVerifier();
    /// @notice The input bits are not from 1 to MAX_INPUT_BITS.
    /// @param inputBits The refused value.
    error InputBitsOutOfRange(uint256 inputBits);
    /// @notice The commitment is not a field element (not below FIELD).
    /// @param commitment The refused commitment.
    error CommitmentOutOfField(bytes32 commitment);
    /// @notice The input has no values.
    error EmptyInput();
    /// @notice An input value is not strictly within (-2^inputBits, 2^inputBits).
    /// @param index The value's position in the input.
    /// @param value The refused value.
    error InputOutOfRange(uint256 index, int256 value);
    /// @notice The answer's magnitude exceeds (FIELD - 1) / 2, so it would alias another answer in the field.
    /// @param answer The refused answer.
    error AnswerOutOfField(int256 answer);

    /// @param groth16Verifier The circuit's Groth16 verifier (snarkjs's export, one public signal).
    /// @param inputBits_ The circuit's input range: inputs lie in [-2^inputBits_, 2^inputBits_).
    constructor(address groth16Verifier, uint256 inputBits_) {
        if (groth16Verifier == address(0)) revert ZeroVerifier();
        if (inputBits_ == 0 || inputBits_ > MAX_INPUT_BITS) revert InputBitsOutOfRange(inputBits_);
        groth16 = IGroth16Verifier(groth16Verifier);
        inputBits = inputBits_;
        // 2^64 at most: the cast cannot overflow.
        // forge-lint: disable-next-line(unsafe-typecast)
        inputBound = int256(2 ** inputBits_);
        inputsPerElement = _PACKED_BITS / (inputBits_ + 1);
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
        view
        returns (uint256)
    {
        if (uint256(commitment) >= FIELD) revert CommitmentOutOfField(commitment);
        if (answer > int256((FIELD - 1) / 2) || answer < -int256((FIELD - 1) / 2)) revert AnswerOutOfField(answer);
        return PoseidonT5.hash([uint256(commitment), inputDigest(input), _toField(answer), uint256(uint160(prover))]);
    }

    /// @notice The input digest: each input u = x + 2^inputBits is packed, inputsPerElement to a field element
    ///         (the first in the lowest bits); then h = length, and each chunk of min(elements, 4) elements, the
    ///         last zero-padded, is absorbed as h = Poseidon(rate + 1)([h, ...chunk]).
    /// @param input The model's input in fixed point.
    /// @return The digest, a field element.
    function inputDigest(int256[] calldata input) public view returns (uint256) {
        uint256 n = input.length;
        if (n == 0) revert EmptyInput();
        uint256 elements = (n + inputsPerElement - 1) / inputsPerElement;
        if (elements == 1) return PoseidonT3.hash([n, _element(input, 0)]);
        if (elements == 2) return PoseidonT4.hash([n, _element(input, 0), _element(input, 1)]);
        if (elements == 3) return PoseidonT5.hash([n, _element(input, 0), _element(input, 1), _element(input, 2)]);
        uint256 h = n;
        for (uint256 e = 0; e < elements; e += SPONGE_RATE) {
            h = PoseidonT6.hash(
                [h, _element(input, e), _element(input, e + 1), _element(input, e + 2), _element(input, e + 3)]
            );
        }
        return h;
    }

    /// @dev Packed element `e` after the range checks of its values; zero past the end (the sponge's padding).
    function _element(int256[] calldata input, uint256 e) private view returns (uint256 packed) {
        uint256 first = e * inputsPerElement;
        uint256 end = first + inputsPerElement;
        if (end > input.length) end = input.length;
        uint256 width = inputBits + 1;
        int256 bound = inputBound;
        for (uint256 i = first; i < end; ++i) {
            int256 v = input[i];
            if (v >= bound || v <= -bound) revert InputOutOfRange(i, v);
            // v + bound lies in (0, 2^(inputBits + 1)) after the check, and the shifts stay below 2^253.
            // forge-lint: disable-next-line(unsafe-typecast)
            packed |= uint256(v + bound) << (width * (i - first));
        }
    }

    /// @dev v mod FIELD for |v| < FIELD (callers bound v): negatives become FIELD - |v|.
    function _toField(int256 v) private pure returns (uint256) {
        // Both casts are of non-negative values, and -v cannot overflow: callers bound |v| below FIELD.
        // forge-lint: disable-next-line(unsafe-typecast)
        return v >= 0 ? uint256(v) : FIELD - uint256(-v);
    }
}
