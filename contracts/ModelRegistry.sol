// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";

/// @title ModelRegistry
/// @notice Every model is an ERC-721 token owned by its publisher; its versions are appended and never
///         changed or removed. A version records the digest of its canonical weights (the CID v1 raw
///         sha256 derives from the digest), its format, its parent, and a commitment to its datasets,
///         metrics, training run and licence, which are emitted in full in `VersionAdded`. Auditors
///         attest versions with two signatures over one EIP-712 digest: ECDSA, checked here, and
///         ML-DSA-65, stored in the log and checked off-chain against the key each auditor bound once.
/// @dev Gas: a version costs four storage slots. Lists (datasets, metrics) live in the event log and are
///      bound by `detailsHash`, so clients read them from logs and check them against storage.
contract ModelRegistry is ERC721, EIP712, Nonces {
    /// @notice Fixed-point scale of metric values: 1_000_000 means 1.0.
    int256 public constant METRIC_SCALE = 1e6;
    /// @notice Byte length of an ML-DSA-65 public key (FIPS 204).
    uint256 public constant PQ_PUBLIC_KEY_LENGTH = 1952;
    /// @notice Byte length of an ML-DSA-65 signature (FIPS 204).
    uint256 public constant PQ_SIGNATURE_LENGTH = 3309;
    /// @notice At most this many datasets and this many metrics per version.
    uint256 public constant MAX_ENTRIES = 64;
    /// @notice The BN254 scalar field modulus: a weights commitment is a Poseidon hash, an element below it.
    uint256 public constant SNARK_SCALAR_FIELD =
        21888242871839275222246405745257275088548364400416034343698204186575808495617;

    bytes32 public constant ATTESTATION_TYPEHASH = keccak256(
        "Attestation(address attester,uint256 modelId,uint32 version,bytes32 weightsDigest,bytes32 claimDigest,uint8 verdict,bytes32 pqKeyHash,uint256 nonce)"
    );

    enum Verdict {
        None,
        Pass,
        Fail,
        Inconclusive
    }

    struct Metric {
        bytes32 name;
        int256 value;
    }

    struct VersionInput {
        bytes32 weightsDigest;
        bytes8 format;
        uint48 parentModel;
        uint32 parentVersion;
        bytes32[] datasets;
        Metric[] metrics;
        bytes32 trainingRun;
        bytes32 licence;
        bytes32 modelCard;
    }

    struct Version {
        bytes32 weightsDigest;
        bytes32 detailsHash;
        uint40 createdAt;
        uint48 parentModel;
        uint32 parentVersion;
        bytes8 format;
        uint32 attestationCount;
        bool deprecated;
    }

    struct AttestationInput {
        address attester;
        uint256 modelId;
        uint32 version;
        bytes32 claimDigest;
        Verdict verdict;
    }

    struct Attestation {
        address attester;
        uint40 createdAt;
        Verdict verdict;
        bytes32 claimDigest;
        bytes32 pqSignatureHash;
    }

    /// @dev `registeredAt` makes the slot non-zero at registration, so the first version pays for a
    ///      warm update of `versionCount` rather than a fresh slot.
    struct Model {
        uint32 versionCount;
        uint40 registeredAt;
    }

    /// @notice A version's zero-knowledge verifier and the Poseidon commitment to its weights (docs: zk-spec).
    /// @param verifier The `IZkInferenceVerifier` contract that checks proofs of this version's inferences.
    /// @param commitment The weights commitment the proofs are checked against (a BN254 field element).
    struct ZkVerifier {
        address verifier;
        bytes32 commitment;
    }

    uint48 public modelCount;
    mapping(uint256 modelId => Model) private _models;
    mapping(uint256 modelId => mapping(uint256 version => Version)) private _versions;
    mapping(uint256 modelId => mapping(uint256 version => mapping(uint256 index => Attestation))) private _attestations;
    mapping(address attester => bytes32) public pqKeyHash;
    /// @dev Beside `_versions` rather than in `Version`, so that versions without one stay at four slots.
    mapping(uint256 modelId => mapping(uint256 version => ZkVerifier)) private _zkVerifiers;

    event ModelRegistered(uint256 indexed modelId, address indexed owner, string name);
    event VersionAdded(
        uint256 indexed modelId,
        uint32 indexed version,
        bytes32 indexed weightsDigest,
        address publisher,
        VersionInput input
    );
    event VersionDeprecated(uint256 indexed modelId, uint32 indexed version, string reason);
    /// @notice A version got its zero-knowledge verifier and weights commitment, for good.
    event ZkVerifierSet(uint256 indexed modelId, uint32 indexed version, address indexed verifier, bytes32 commitment);
    event PqKeyBound(address indexed attester, bytes32 keyHash, bytes publicKey);
    event Attested(
        uint256 indexed modelId,
        uint32 indexed version,
        address indexed attester,
        uint32 index,
        AttestationInput input,
        uint256 nonce,
        bytes ecdsaSignature,
        bytes pqSignature
    );

    error UnknownModel(uint256 modelId);
    error NotModelOwner(uint256 modelId, address caller);
    error EmptyWeightsDigest();
    error UnknownVersion(uint256 modelId, uint32 version);
    error UnknownParentVersion(uint48 parentModel, uint32 parentVersion);
    error TooManyEntries(uint256 datasets, uint256 metrics);
    error VersionAlreadyDeprecated(uint256 modelId, uint32 version);
    error EmptyReason();
    error InvalidVerdict();
    error PqKeyAlreadyBound(address attester);
    error PqKeyNotBound(address attester);
    error InvalidPqKeyLength(uint256 length);
    error InvalidPqSignatureLength(uint256 length);
    error InvalidAttestationSignature(address attester);
    error UnknownAttestation(uint256 modelId, uint32 version, uint32 index);
    /// @notice The version already has a zk verifier: like the version itself, it is set once and never changed.
    error ZkVerifierAlreadySet(uint256 modelId, uint32 version);
    /// @notice The weights commitment is zero or not below the BN254 scalar field modulus, so no circuit
    ///         could have produced it.
    error InvalidWeightsCommitment(bytes32 commitment);
    /// @notice The verifier address holds no contract code (an account, or a contract not deployed yet).
    error VerifierHasNoCode(address verifier);

    constructor() ERC721("Ledgermind Model", "LMODEL") EIP712("Ledgermind ModelRegistry", "1") {}

    /// @notice Registers a new model, minted as an ERC-721 token to the caller.
    /// @param name A human-readable name, kept in the log only.
    /// @return modelId The new model's token id, counting from 1.
    function registerModel(string calldata name) external returns (uint256 modelId) {
        modelId = ++modelCount;
        _models[modelId] = Model({versionCount: 0, registeredAt: uint40(block.timestamp)});
        _mint(msg.sender, modelId);
        emit ModelRegistered(modelId, msg.sender, name);
    }

    /// @notice Appends a version to a model. Versions count from 1 and can never be changed or removed.
    /// @dev Only the model's owner, or an account it approved, may append (a training protocol, say).
    /// @param modelId The model to extend.
    /// @param input The version's weights digest, format, parent (0 for none) and details.
    /// @return version The new version's number.
    function addVersion(uint256 modelId, VersionInput calldata input) external returns (uint32 version) {
        address owner = _ownerOf(modelId);
        if (owner == address(0)) revert UnknownModel(modelId);
        if (!_isAuthorized(owner, msg.sender, modelId)) revert NotModelOwner(modelId, msg.sender);
        if (input.weightsDigest == bytes32(0)) revert EmptyWeightsDigest();
        if (input.datasets.length > MAX_ENTRIES || input.metrics.length > MAX_ENTRIES) {
            revert TooManyEntries(input.datasets.length, input.metrics.length);
        }
        // No parent is (0, 0); any other pair must name an existing version.
        if (input.parentModel != 0 || input.parentVersion != 0) {
            if (input.parentVersion == 0 || input.parentVersion > _models[input.parentModel].versionCount) {
                revert UnknownParentVersion(input.parentModel, input.parentVersion);
            }
        }

        version = ++_models[modelId].versionCount;
        _versions[modelId][version] = Version({
            weightsDigest: input.weightsDigest,
            detailsHash: detailsHash(input.datasets, input.metrics, input.trainingRun, input.licence, input.modelCard),
            createdAt: uint40(block.timestamp),
            parentModel: input.parentModel,
            parentVersion: input.parentVersion,
            format: input.format,
            attestationCount: 0,
            deprecated: false
        });
        emit VersionAdded(modelId, version, input.weightsDigest, msg.sender, input);
    }

    /// @notice Marks a version deprecated, with a reason. Nothing is erased; the flag cannot be undone.
    /// @param modelId The model.
    /// @param version The version to flag.
    /// @param reason Why users should stop using it, kept in the log.
    function deprecateVersion(uint256 modelId, uint32 version, string calldata reason) external {
        Version storage v = _existingVersion(modelId, version);
        address owner = _ownerOf(modelId);
        if (!_isAuthorized(owner, msg.sender, modelId)) revert NotModelOwner(modelId, msg.sender);
        if (v.deprecated) revert VersionAlreadyDeprecated(modelId, version);
        if (bytes(reason).length == 0) revert EmptyReason();
        v.deprecated = true;
        emit VersionDeprecated(modelId, version, reason);
    }

    /// @notice Gives a version the verifier of zero-knowledge proofs of its inferences and the Poseidon
    ///         commitment to its weights, once: the pair is as immutable as the version. A deprecated version
    ///         may still get it, and keeps it.
    /// @dev Only the model's owner, or an account it approved (as for `addVersion`). The verifier is trusted
    ///      to be the circuit of this version's architecture; the commitment is what binds it to the weights.
    /// @param modelId The model.
    /// @param version The version.
    /// @param verifier An `IZkInferenceVerifier` contract (it must have code).
    /// @param commitment The weights commitment, non-zero and below SNARK_SCALAR_FIELD.
    function setZkVerifier(uint256 modelId, uint32 version, address verifier, bytes32 commitment) external {
        _existingVersion(modelId, version);
        if (!_isAuthorized(_ownerOf(modelId), msg.sender, modelId)) revert NotModelOwner(modelId, msg.sender);
        ZkVerifier storage zk = _zkVerifiers[modelId][version];
        if (zk.verifier != address(0)) revert ZkVerifierAlreadySet(modelId, version);
        if (commitment == bytes32(0) || uint256(commitment) >= SNARK_SCALAR_FIELD) {
            revert InvalidWeightsCommitment(commitment);
        }
        if (verifier.code.length == 0) revert VerifierHasNoCode(verifier);
        zk.verifier = verifier;
        zk.commitment = commitment;
        emit ZkVerifierSet(modelId, version, verifier, commitment);
    }

    /// @notice Binds the caller's ML-DSA-65 public key to its address, once and for good.
    /// @param publicKey The 1,952-byte public key, kept in the log; its hash is stored.
    function bindPqKey(bytes calldata publicKey) external {
        if (publicKey.length != PQ_PUBLIC_KEY_LENGTH) revert InvalidPqKeyLength(publicKey.length);
        if (pqKeyHash[msg.sender] != bytes32(0)) revert PqKeyAlreadyBound(msg.sender);
        bytes32 keyHash = keccak256(publicKey);
        pqKeyHash[msg.sender] = keyHash;
        emit PqKeyBound(msg.sender, keyHash, publicKey);
    }

    /// @notice Records an attestation signed by `input.attester`; anyone may submit it.
    /// @dev The ECDSA signature is checked here against the EIP-712 digest; the ML-DSA signature of the same
    ///      digest is stored by hash and emitted, since verifying it on-chain would cost millions of gas.
    /// @param input Who attests which version, the digest of the claim document, and the verdict.
    /// @param ecdsaSignature The attester's 65-byte signature of `attestationDigest(input, nonces(attester))`.
    /// @param pqSignature The attester's ML-DSA-65 signature of the same digest.
    /// @return index The attestation's position among the version's attestations.
    function attest(AttestationInput calldata input, bytes calldata ecdsaSignature, bytes calldata pqSignature)
        external
        returns (uint32 index)
    {
        Version storage v = _existingVersion(input.modelId, input.version);
        if (input.verdict == Verdict.None) revert InvalidVerdict();
        if (pqKeyHash[input.attester] == bytes32(0)) revert PqKeyNotBound(input.attester);
        if (pqSignature.length != PQ_SIGNATURE_LENGTH) revert InvalidPqSignatureLength(pqSignature.length);

        uint256 nonce = _useNonce(input.attester);
        bytes32 digest = attestationDigest(input, nonce);
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, ecdsaSignature);
        if (err != ECDSA.RecoverError.NoError || signer != input.attester) {
            revert InvalidAttestationSignature(input.attester);
        }

        index = v.attestationCount++;
        _attestations[input.modelId][input.version][index] = Attestation({
            attester: input.attester,
            createdAt: uint40(block.timestamp),
            verdict: input.verdict,
            claimDigest: input.claimDigest,
            pqSignatureHash: keccak256(pqSignature)
        });
        _emitAttested(input, index, nonce, ecdsaSignature, pqSignature);
    }

    /// @dev A function of its own so that `attest` stays within the legacy pipeline's stack.
    function _emitAttested(
        AttestationInput calldata input,
        uint32 index,
        uint256 nonce,
        bytes calldata ecdsaSignature,
        bytes calldata pqSignature
    ) private {
        emit Attested(input.modelId, input.version, input.attester, index, input, nonce, ecdsaSignature, pqSignature);
    }

    /// @notice The EIP-712 digest that both of an attester's signatures sign.
    /// @param input The attestation.
    /// @param nonce The attester's nonce at submission (`nonces(attester)`).
    function attestationDigest(AttestationInput calldata input, uint256 nonce) public view returns (bytes32) {
        bytes32 weightsDigest = _versions[input.modelId][input.version].weightsDigest;
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    ATTESTATION_TYPEHASH,
                    input.attester,
                    input.modelId,
                    input.version,
                    weightsDigest,
                    input.claimDigest,
                    input.verdict,
                    pqKeyHash[input.attester],
                    nonce
                )
            )
        );
    }

    /// @notice The commitment to a version's details, as stored in `Version.detailsHash`.
    /// @param datasets Digests of the datasets the version was trained on.
    /// @param metrics Metric names and fixed-point values.
    /// @param trainingRun Digest of the training-run record.
    /// @param licence The SPDX licence id as a short string.
    /// @param modelCard Digest of the model card document.
    function detailsHash(
        bytes32[] calldata datasets,
        Metric[] calldata metrics,
        bytes32 trainingRun,
        bytes32 licence,
        bytes32 modelCard
    ) public pure returns (bytes32) {
        return keccak256(abi.encode(datasets, metrics, trainingRun, licence, modelCard));
    }

    /// @notice How many versions a model has; its versions are numbered 1 to this.
    /// @param modelId The model.
    function versionCount(uint256 modelId) public view returns (uint32) {
        return _models[modelId].versionCount;
    }

    /// @notice A version's stored record.
    /// @param modelId The model.
    /// @param version The version, from 1.
    function getVersion(uint256 modelId, uint32 version) external view returns (Version memory) {
        return _existingVersion(modelId, version);
    }

    /// @notice A version's zk verifier and weights commitment; both zero when it has none.
    /// @param modelId The model.
    /// @param version The version, from 1.
    function zkVerifierOf(uint256 modelId, uint32 version) external view returns (address, bytes32) {
        _existingVersion(modelId, version);
        ZkVerifier storage zk = _zkVerifiers[modelId][version];
        return (zk.verifier, zk.commitment);
    }

    /// @notice One attestation of a version.
    /// @param modelId The model.
    /// @param version The version.
    /// @param index The attestation's position, from 0.
    function getAttestation(uint256 modelId, uint32 version, uint32 index) external view returns (Attestation memory) {
        Version storage v = _existingVersion(modelId, version);
        if (index >= v.attestationCount) revert UnknownAttestation(modelId, version, index);
        return _attestations[modelId][version][index];
    }

    function _existingVersion(uint256 modelId, uint32 version) private view returns (Version storage v) {
        if (_ownerOf(modelId) == address(0)) revert UnknownModel(modelId);
        if (version == 0 || version > _models[modelId].versionCount) revert UnknownVersion(modelId, version);
        return _versions[modelId][version];
    }
}
