// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IInferenceConsumer, IInferenceOracle, IZkInferenceOracle} from "./IInferenceOracle.sol";
import {ModelRegistry} from "./ModelRegistry.sol";
import {IZkInferenceVerifier} from "./zk/IZkInferenceVerifier.sol";

/// @title InferenceOracle
/// @notice Answers inference requests against model versions of the ModelRegistry. Staked operators of a
///         version either commit and reveal their outputs, which are aggregated (median or majority) with
///         deviating and silent operators slashed, or sign one report off-chain (as Chainlink OCR) that anyone
///         submits with signatures of more than two thirds of the version's stake, or, for a version with a zk
///         verifier in the registry, one operator proves its output (`fulfillByProof`). The requester is called
///         back with the result.
/// @dev Thresholds are shares of stake, never counts: a result needs reveals from more than half of the
///      version's active stake (besides `minResponses` reveals), a median or a label needs more than half of
///      the revealed stake behind it (an even split fails and is refunded), and a report needs signatures of
///      more than two thirds of the active stake, only before the first reveal. "Active" stake is that of
///      operators whose stake is still at least `minStake`: an operator slashed below it can no longer commit,
///      reveal or sign, and counts for nothing. The base of every share is the larger of the active stake
///      snapshotted at request time and the active stake now, so that neither exits after the request nor
///      fresh registrations lower the bar.
/// @dev Payments are pulled: fees, refunds, slashed stake and returned stakes are credited and withdrawn
///      later. An operator's fees accrue in its per-version record (the record is read anyway to check the
///      operator, so crediting costs one warm write) and move to its withdrawable balance with
///      `collectFees` or `exitOperator`. Amounts are bounded: a fee or stake up to 2^96 - 1 and accrued
///      fees up to 2^120 - 1 per operator and version, far above any real token supply.
contract InferenceOracle is IInferenceOracle, IZkInferenceOracle, EIP712, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice Deployment parameters, fixed for the oracle's life.
    /// @param minStake The least stake an operator may register with.
    /// @param commitWindow Blocks after a request during which operators commit.
    /// @param revealWindow Blocks after the commit window during which operators reveal.
    /// @param minResponses The least number of reveals (or report signers) that yields a result.
    /// @param tolerance For the median, the absolute fixed-point distance from the result beyond which an
    ///        answer deviates; for the majority any other label deviates.
    /// @param slashBps The share of its stake, in basis points, that a deviating or silent operator loses.
    /// @param callbackGasLimit Gas given to the consumer's `onInference`, at most MAX_CALLBACK_GAS.
    /// @param maxOperators The most operators one model version may have (at most 255).
    struct Params {
        uint256 minStake;
        uint32 commitWindow;
        uint32 revealWindow;
        uint16 minResponses;
        uint256 tolerance;
        uint16 slashBps;
        uint32 callbackGasLimit;
        uint16 maxOperators;
    }

    /// @notice A request's life: Open until finalized, then Finalized (a result) or Failed (refunded).
    enum Status {
        None,
        Open,
        Finalized,
        Failed
    }

    /// @notice The stored request: four slots, plus the result's output slot that the request allocates.
    /// @dev `inputHash` is keccak256(abi.encodePacked(input)) for inline input (`inlineInput`), else the CID's
    ///      sha256 digest. The input itself is only in the `InferenceRequested` log. `callback` records whether
    ///      the requester had code when it requested (contracts are called back, accounts are not).
    struct Request {
        address requester;
        uint96 fee;
        uint48 modelId;
        uint32 version;
        uint40 commitDeadline;
        uint40 revealDeadline;
        uint40 finalizedAt;
        Status status;
        Aggregation aggregation;
        uint8 commits;
        uint8 reveals;
        bool inlineInput;
        bool callback;
        bytes32 inputHash;
        bytes32 weightsDigest;
    }

    /// @notice A final result: the aggregated output and the weights digest of the version that produced it.
    struct Result {
        int256 output;
        bytes32 weightsDigest;
        uint40 finalizedAt;
    }

    /// @notice An operator of one model version; one slot.
    /// @param stake Its remaining stake.
    /// @param fees Fees earned and not yet collected.
    /// @param pending Requests it committed to that are not finalized yet.
    /// @param slot Its position in the version's operator list, plus one (zero: not registered).
    struct Operator {
        uint96 stake;
        uint120 fees;
        uint32 pending;
        uint8 slot;
    }

    /// @dev `activeStake` and `activeCount` cover the operators whose stake is at least `minStake`; kept up
    ///      to date on registration, exit and every slash, so that no threshold needs a loop over the set.
    struct OperatorSet {
        address[] list;
        mapping(address operator => Operator) ops;
        uint128 activeStake;
        uint16 activeCount;
    }

    /// @dev `weight` is the operator's stake when it revealed: its say in the median and in the shares.
    struct Reveal {
        address operator;
        uint96 weight;
        int256 output;
    }

    /// @dev Finalization working set, in memory to keep the legacy pipeline's stack small.
    struct Settlement {
        uint256 requestId;
        uint256 pot;
        uint256 agreeing;
        int256 result;
        uint256 revealedStake;
        address[] revealers;
        int256[] outputs;
        uint256[] weights;
        bool[] agrees;
    }

    /// @notice The EIP-712 type of what report signers sign. The signer list (ascending addresses) is part of
    ///         it, so that nobody can submit a subset of the signatures and drop signers from the fee.
    bytes32 public constant REPORT_TYPEHASH =
        keccak256("Report(uint256 requestId,int256 output,bytes32 weightsDigest,address[] signers)");
    /// @notice The largest `callbackGasLimit`: finalize of a 255-operator request in the worst order (5.0M gas),
    ///         or a report of 255 signatures that releases 255 commitments (3.9M), plus the callback stays under
    ///         the 10M gas that any transaction may need (measured with the callback: 7.0M and 5.9M).
    uint256 public constant MAX_CALLBACK_GAS = 2_000_000;
    /// @notice The largest operator set a version may have: slots and counters are uint8.
    uint256 public constant MAX_OPERATORS_CAP = 255;
    /// @notice At most this many bytes of a failed callback's revert data are kept in `CallbackFailed`.
    uint256 public constant MAX_REASON_BYTES = 256;
    /// @dev Gas kept back, on top of the EIP-150 sixty-fourth, to finish after the callback.
    uint256 private constant CALLBACK_RESERVE = 10_000;
    bytes32 private constant REVEALED = bytes32(uint256(1));
    uint256 private constant BPS = 10_000;
    /// @dev Half the secp256k1 group order: larger `s` values are the malleable twins of valid signatures.
    uint256 private constant HALF_CURVE_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    /// @notice The ERC-20 of stakes and fees.
    IERC20 public immutable token;
    /// @notice The registry whose model versions this oracle serves.
    ModelRegistry public immutable registry;
    uint256 private immutable _minStake;
    uint32 private immutable _commitWindow;
    uint32 private immutable _revealWindow;
    uint16 private immutable _minResponses;
    uint256 private immutable _tolerance;
    uint16 private immutable _slashBps;
    uint32 private immutable _callbackGasLimit;
    uint16 private immutable _maxOperators;

    /// @notice How many requests were made; request ids count from 1.
    uint256 public requestCount;
    mapping(uint256 modelId => mapping(uint32 version => uint16)) private _inputSize;
    mapping(uint256 modelId => mapping(uint32 version => OperatorSet)) private _sets;
    mapping(uint256 requestId => Request) private _requests;
    /// @dev While a request is open, the version's active stake when it was made (the snapshot its shares
    ///      start from); the result then overwrites it. The request pays for the slot, and finalization
    ///      writes over a non-zero value instead of paying for a new slot.
    mapping(uint256 requestId => int256) private _outputs;
    mapping(uint256 requestId => mapping(address operator => bytes32)) private _commitments;
    mapping(uint256 requestId => mapping(uint256 index => address)) private _committers;
    mapping(uint256 requestId => mapping(uint256 index => Reveal)) private _reveals;
    mapping(address account => uint256) private _balances;

    /// @notice A model version's input size was declared.
    event ModelSpecSet(uint256 indexed modelId, uint32 indexed version, uint16 inputSize);
    /// @notice An operator joined a model version with `stake`.
    event OperatorRegistered(uint256 indexed modelId, uint32 indexed version, address indexed operator, uint256 stake);
    /// @notice An operator left a model version; its stake and fees became withdrawable.
    event OperatorExited(
        uint256 indexed modelId, uint32 indexed version, address indexed operator, uint256 stake, uint256 fees
    );
    /// @notice An operator moved its fees on a model version to its withdrawable balance.
    event FeesCollected(uint256 indexed modelId, uint32 indexed version, address indexed operator, uint256 amount);
    /// @notice A request was made; operators read the inline input (or fetch `inputCid`) from this log.
    event InferenceRequested(
        uint256 indexed requestId,
        uint256 indexed modelId,
        uint32 indexed version,
        address requester,
        Aggregation aggregation,
        uint256 fee,
        bytes32 inputCid,
        int256[] input,
        uint256 commitDeadline,
        uint256 revealDeadline
    );
    /// @notice An operator committed to an answer.
    event Committed(uint256 indexed requestId, address indexed operator, bytes32 commitment);
    /// @notice An operator revealed its answer.
    event Revealed(uint256 indexed requestId, address indexed operator, int256 output);
    /// @notice An operator lost `amount` of its stake on a request.
    /// @param revealed True for a deviating answer, false for an operator that committed but never revealed.
    event OperatorSlashed(uint256 indexed requestId, address indexed operator, uint256 amount, bool revealed);
    /// @notice A request has a result; `responders` is the number of agreeing revealers or report signers.
    event InferenceFinalized(
        uint256 indexed requestId,
        uint256 indexed modelId,
        uint32 indexed version,
        int256 output,
        bytes32 weightsDigest,
        uint256 responders
    );
    /// @notice No result: too few operators (or too little stake) revealed, or no value had more than half of
    ///         the revealed stake behind it. `refund` (the fee plus silent operators' slashed stake) went back.
    event InferenceFailed(
        uint256 indexed requestId, uint256 indexed modelId, uint32 indexed version, uint256 reveals, uint256 refund
    );
    /// @notice The consumer's `onInference` reverted or ran out of gas; `reason` is its revert data, truncated.
    event CallbackFailed(uint256 indexed requestId, address indexed consumer, bytes reason);
    /// @notice An account withdrew its balance.
    event Withdrawn(address indexed account, uint256 amount);

    /// @notice The token or the registry is the zero address.
    error ZeroAddress(address token, address registry);
    /// @notice A window of zero blocks: operators could never commit or reveal.
    error EmptyWindow(uint256 commitWindow, uint256 revealWindow);
    /// @notice `minResponses` is zero, or above `maxOperators` (no request could ever be made).
    error InvalidMinResponses(uint256 minResponses, uint256 maxOperators);
    /// @notice `maxOperators` exceeds MAX_OPERATORS_CAP (slots and counters are uint8).
    error MaxOperatorsTooHigh(uint256 maxOperators, uint256 cap);
    /// @notice `slashBps` exceeds 10,000 (all of the stake).
    error SlashTooHigh(uint256 slashBps, uint256 max);
    /// @notice `callbackGasLimit` exceeds MAX_CALLBACK_GAS, which would push finalize past the gas bound.
    error CallbackGasTooHigh(uint256 callbackGasLimit, uint256 maxCallbackGas);
    /// @notice The registry knows no such model version.
    error UnknownModelVersion(uint256 modelId, uint32 version);
    /// @notice The model version is deprecated in the registry: no new specs, operators or requests.
    error DeprecatedModelVersion(uint256 modelId, uint32 version);
    /// @notice Only the model's owner may declare a version's input size.
    error NotModelOwner(uint256 modelId, address caller);
    /// @notice A model spec needs a non-zero input size.
    error EmptyInputSize();
    /// @notice The version's input size was already declared; it is fixed once set.
    error ModelSpecAlreadySet(uint256 modelId, uint32 version);
    /// @notice The version's input size was never declared: it cannot take requests.
    error ModelSpecNotSet(uint256 modelId, uint32 version);
    /// @notice The inline input has `got` values; the version takes `expected`.
    error WrongInputShape(uint256 expected, uint256 got);
    /// @notice A request needs exactly one of inline input and an input CID.
    error InvalidInput();
    /// @notice A stake or fee does not fit 96 bits.
    error AmountTooLarge(uint256 amount);
    /// @notice A registration's stake is below `minStake`.
    error StakeTooLow(uint256 stake, uint256 minStake);
    /// @notice The operator's stake fell below `minStake` (it was slashed): it may no longer commit, reveal
    ///         or sign reports.
    error InsufficientStake(address operator, uint256 stake, uint256 minStake);
    /// @notice The version already has `maxOperators` operators.
    error TooManyOperators(uint256 maxOperators);
    /// @notice The caller already operates this version.
    error AlreadyRegistered(address operator);
    /// @notice The account does not operate this version.
    error NotOperator(address account);
    /// @notice The operator committed to requests that are not settled yet; it may exit once they are.
    error OperatorBusy(address operator, uint256 pending);
    /// @notice The version has fewer active operators (stake at least `minStake`) than `minResponses`.
    error NotEnoughOperators(uint256 registered, uint256 needed);
    /// @notice No request has this id.
    error UnknownRequest(uint256 requestId);
    /// @notice The request is settled, or (for reports) past its reveal deadline.
    error RequestClosed(uint256 requestId);
    /// @notice The commit window ended at block `deadline`.
    error CommitClosed(uint256 requestId, uint256 deadline);
    /// @notice A commitment may not be zero or the internal "revealed" marker.
    error InvalidCommitment();
    /// @notice The operator already committed to this request.
    error AlreadyCommitted(uint256 requestId, address operator);
    /// @notice Reveals open after block `commitDeadline`.
    error RevealNotOpen(uint256 requestId, uint256 commitDeadline);
    /// @notice The reveal window ended at block `deadline`.
    error RevealClosed(uint256 requestId, uint256 deadline);
    /// @notice The operator never committed to this request.
    error NoCommit(uint256 requestId, address operator);
    /// @notice The operator already revealed.
    error AlreadyRevealed(uint256 requestId, address operator);
    /// @notice The output and salt do not hash to the operator's commitment.
    error RevealMismatch(uint256 requestId, address operator);
    /// @notice Finalize waits for the reveal deadline, or for every committed operator to reveal.
    error TooEarly(uint256 requestId, uint256 revealDeadline);
    /// @notice The request has no result (still open, or failed).
    error ResultNotReady(uint256 requestId);
    /// @notice A report has `signers` signatures; `minResponses` are needed.
    error QuorumNotMet(uint256 signers, uint256 needed);
    /// @notice A report's signers hold `signedStake`, not more than two thirds of the request's `stakeBase`.
    error StakeQuorumNotMet(uint256 signedStake, uint256 stakeBase);
    /// @notice A report arrived after `reveals` operators revealed: once reveals start, only they decide.
    error ReportAfterReveal(uint256 requestId, uint256 reveals);
    /// @notice A report lists `signers` signers but carries `signatures` signatures.
    error SignerCountMismatch(uint256 signers, uint256 signatures);
    /// @notice Signature `index` recovers to `recovered`, not to the listed signer (or another report).
    error WrongSigner(uint256 index, address listed, address recovered);
    /// @notice Signature `index` is malformed, malleable (high s) or unrecoverable.
    error InvalidSignature(uint256 index);
    /// @notice Listed signer `index` is not above the previous one: signers ascend, each at most once.
    error UnsortedSigners(uint256 index);
    /// @notice Finalize got less gas than the callback's limit needs (`needed`); `left` remained.
    error InsufficientGas(uint256 needed, uint256 left);
    /// @notice The account has nothing to withdraw or collect.
    error NothingToWithdraw(address account);

    /// @notice Deploys the oracle for `token` payments and `registry` models.
    /// @param token_ The ERC-20 of stakes and fees (MIND).
    /// @param registry_ The model registry.
    /// @param p The parameters; see `Params`.
    constructor(IERC20 token_, ModelRegistry registry_, Params memory p)
        EIP712("Ledgermind InferenceOracle", "1")
    {
        if (address(token_) == address(0) || address(registry_) == address(0)) {
            revert ZeroAddress(address(token_), address(registry_));
        }
        if (p.commitWindow == 0 || p.revealWindow == 0) revert EmptyWindow(p.commitWindow, p.revealWindow);
        if (p.minResponses == 0 || p.minResponses > p.maxOperators) {
            revert InvalidMinResponses(p.minResponses, p.maxOperators);
        }
        if (p.maxOperators > MAX_OPERATORS_CAP) revert MaxOperatorsTooHigh(p.maxOperators, MAX_OPERATORS_CAP);
        if (p.slashBps > BPS) revert SlashTooHigh(p.slashBps, BPS);
        if (p.minStake > type(uint96).max) revert AmountTooLarge(p.minStake);
        if (p.callbackGasLimit > MAX_CALLBACK_GAS) revert CallbackGasTooHigh(p.callbackGasLimit, MAX_CALLBACK_GAS);
        token = token_;
        registry = registry_;
        _minStake = p.minStake;
        _commitWindow = p.commitWindow;
        _revealWindow = p.revealWindow;
        _minResponses = p.minResponses;
        _tolerance = p.tolerance;
        _slashBps = p.slashBps;
        _callbackGasLimit = p.callbackGasLimit;
        _maxOperators = p.maxOperators;
    }

    // -----------------------------------------------------------------------------------------------------
    // Model IO spec and operators
    // -----------------------------------------------------------------------------------------------------

    /// @notice Declares, once, how many inline input values a model version takes. Only the model's owner
    ///         may declare it, and requests need it.
    /// @param modelId The model.
    /// @param version The version.
    /// @param inputSize The number of fixed-point features of one input (not zero).
    function setModelSpec(uint256 modelId, uint32 version, uint16 inputSize) external nonReentrant {
        _liveVersion(modelId, version);
        if (registry.ownerOf(modelId) != msg.sender) revert NotModelOwner(modelId, msg.sender);
        if (inputSize == 0) revert EmptyInputSize();
        if (_inputSize[modelId][version] != 0) revert ModelSpecAlreadySet(modelId, version);
        _inputSize[modelId][version] = inputSize;
        emit ModelSpecSet(modelId, version, inputSize);
    }

    /// @notice Registers the caller as an operator of a model version, pulling its stake (approve it first).
    /// @param modelId The model.
    /// @param version The version (known and not deprecated).
    /// @param stake The stake, at least `minStake`.
    function registerOperator(uint256 modelId, uint32 version, uint256 stake) external nonReentrant {
        _liveVersion(modelId, version);
        if (stake < _minStake) revert StakeTooLow(stake, _minStake);
        if (stake > type(uint96).max) revert AmountTooLarge(stake);
        OperatorSet storage set = _sets[modelId][version];
        if (set.ops[msg.sender].slot != 0) revert AlreadyRegistered(msg.sender);
        if (set.list.length >= _maxOperators) revert TooManyOperators(_maxOperators);
        set.list.push(msg.sender);
        // stake <= type(uint96).max (checked above); list.length <= _maxOperators <= 255.
        // forge-lint: disable-next-line(unsafe-typecast)
        set.ops[msg.sender] = Operator({stake: uint96(stake), fees: 0, pending: 0, slot: uint8(set.list.length)});
        // stake <= type(uint96).max (checked above).
        // forge-lint: disable-next-line(unsafe-typecast)
        set.activeStake += uint128(stake);
        set.activeCount += 1;
        emit OperatorRegistered(modelId, version, msg.sender, stake);
        token.safeTransferFrom(msg.sender, address(this), stake);
    }

    /// @notice Leaves a model version: the remaining stake and uncollected fees become withdrawable. Refused
    ///         while the operator has committed to a request that is not finalized.
    /// @param modelId The model.
    /// @param version The version.
    function exitOperator(uint256 modelId, uint32 version) external nonReentrant {
        OperatorSet storage set = _sets[modelId][version];
        Operator memory op = set.ops[msg.sender];
        if (op.slot == 0) revert NotOperator(msg.sender);
        if (op.pending != 0) revert OperatorBusy(msg.sender, op.pending);
        uint256 index = op.slot - 1;
        uint256 last = set.list.length - 1;
        if (index != last) {
            address moved = set.list[last];
            set.list[index] = moved;
            set.ops[moved].slot = op.slot;
        }
        set.list.pop();
        delete set.ops[msg.sender];
        if (op.stake >= _minStake) {
            set.activeStake -= op.stake;
            set.activeCount -= 1;
        }
        _balances[msg.sender] += uint256(op.stake) + op.fees;
        emit OperatorExited(modelId, version, msg.sender, op.stake, op.fees);
    }

    /// @notice Moves the caller's fees earned on a model version to its withdrawable balance.
    /// @param modelId The model.
    /// @param version The version.
    function collectFees(uint256 modelId, uint32 version) external nonReentrant {
        Operator storage op = _sets[modelId][version].ops[msg.sender];
        if (op.slot == 0) revert NotOperator(msg.sender);
        uint256 amount = op.fees;
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        op.fees = 0;
        _balances[msg.sender] += amount;
        emit FeesCollected(modelId, version, msg.sender, amount);
    }

    /// @notice Pays out the caller's withdrawable balance: collected fees, refunds, returned stakes.
    function withdraw() external nonReentrant {
        uint256 amount = _balances[msg.sender];
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        _balances[msg.sender] = 0;
        emit Withdrawn(msg.sender, amount);
        token.safeTransfer(msg.sender, amount);
    }

    // -----------------------------------------------------------------------------------------------------
    // Requests, commit and reveal
    // -----------------------------------------------------------------------------------------------------

    /// @inheritdoc IInferenceOracle
    /// @dev Exactly one of `input` and `inputCid` is given; inline input must have the declared length.
    function request(
        uint256 modelId,
        uint32 version,
        int256[] calldata input,
        bytes32 inputCid,
        Aggregation aggregation,
        uint256 fee
    ) external nonReentrant returns (uint256 requestId) {
        if ((input.length == 0) == (inputCid == bytes32(0))) revert InvalidInput();
        bytes32 weightsDigest = _liveVersion(modelId, version);
        uint256 spec = _inputSize[modelId][version];
        if (spec == 0) revert ModelSpecNotSet(modelId, version);
        if (input.length != 0 && input.length != spec) revert WrongInputShape(spec, input.length);
        OperatorSet storage set = _sets[modelId][version];
        uint256 active = set.activeCount;
        if (active < _minResponses) revert NotEnoughOperators(active, _minResponses);
        if (fee > type(uint96).max) revert AmountTooLarge(fee);

        requestId = ++requestCount;
        _store(requestId, modelId, version, input, inputCid, aggregation, fee, weightsDigest);
        _emitRequested(requestId, modelId, version, input, inputCid, aggregation, fee);
        if (fee != 0) token.safeTransferFrom(msg.sender, address(this), fee);
    }

    /// @notice Commits to an answer during the commit window.
    /// @param requestId The request.
    /// @param commitment keccak256(abi.encode(requestId, operator, output, salt)).
    function commit(uint256 requestId, bytes32 commitment) external nonReentrant {
        Request storage r = _openRequest(requestId);
        if (block.number > r.commitDeadline) revert CommitClosed(requestId, r.commitDeadline);
        Operator storage op = _sets[r.modelId][r.version].ops[msg.sender];
        if (op.slot == 0) revert NotOperator(msg.sender);
        _requireActive(msg.sender, op.stake);
        if (commitment == bytes32(0) || commitment == REVEALED) revert InvalidCommitment();
        if (_commitments[requestId][msg.sender] != bytes32(0)) revert AlreadyCommitted(requestId, msg.sender);
        _commitments[requestId][msg.sender] = commitment;
        uint8 index = r.commits;
        _committers[requestId][index] = msg.sender;
        r.commits = index + 1;
        op.pending += 1;
        emit Committed(requestId, msg.sender, commitment);
    }

    /// @notice Reveals a committed answer, after the commit window and until the reveal deadline. The answer
    ///         weighs the operator's stake at this moment; an operator slashed below `minStake` since it
    ///         committed is refused (and settled as silent: it misbehaved before).
    /// @param requestId The request.
    /// @param output The answer (fixed point, or a label).
    /// @param salt The secret that hid the answer in the commitment.
    function reveal(uint256 requestId, int256 output, bytes32 salt) external nonReentrant {
        Request storage r = _openRequest(requestId);
        if (block.number <= r.commitDeadline) revert RevealNotOpen(requestId, r.commitDeadline);
        if (block.number > r.revealDeadline) revert RevealClosed(requestId, r.revealDeadline);
        bytes32 stored = _commitments[requestId][msg.sender];
        if (stored == bytes32(0)) revert NoCommit(requestId, msg.sender);
        if (stored == REVEALED) revert AlreadyRevealed(requestId, msg.sender);
        if (keccak256(abi.encode(requestId, msg.sender, output, salt)) != stored) {
            revert RevealMismatch(requestId, msg.sender);
        }
        uint96 stake = _sets[r.modelId][r.version].ops[msg.sender].stake;
        _requireActive(msg.sender, stake);
        _commitments[requestId][msg.sender] = REVEALED;
        uint8 index = r.reveals;
        _reveals[requestId][index] = Reveal({operator: msg.sender, weight: stake, output: output});
        r.reveals = index + 1;
        emit Revealed(requestId, msg.sender, output);
    }

    /// @notice Settles a request after its reveal deadline, or once the commit window closed and every
    ///         committed operator revealed. The request fails, and the fee goes back to the requester, when
    ///         fewer than `minResponses` operators revealed, when the revealed stake is not more than half of
    ///         the version's active stake, when the answers agreeing with the result (within tolerance) hold
    ///         no more than half of the active stake, or when no value has more than half of the revealed
    ///         stake behind it
    ///         (a split: nobody is slashed for deviating, since neither side is provably wrong). Otherwise the
    ///         result is stored, deviating and silent operators are slashed, the agreeing ones paid, and the
    ///         requester called back. Silent committers are slashed in every case.
    /// @dev Bounded at MAX_OPERATORS_CAP reveals: one heap sort (O(n log n)) for the median, a linear vote for
    ///      the majority, and one pass per operator: 5.0M gas at 255 operators in the worst order, 7.0M with a
    ///      callback that burns all of MAX_CALLBACK_GAS (test/contracts/inference-oracle-attacks.test.ts).
    /// @param requestId The request.
    function finalize(uint256 requestId) external nonReentrant {
        Request storage r = _openRequest(requestId);
        bool allRevealed = block.number > r.commitDeadline && r.reveals == r.commits;
        if (block.number <= r.revealDeadline && !allRevealed) revert TooEarly(requestId, r.revealDeadline);
        if (r.reveals < _minResponses) {
            _fail(requestId, r);
            return;
        }
        Settlement memory s = _loadReveals(requestId, r);
        uint256 base = _baseStake(requestId, r);
        if (s.revealedStake * 2 <= base) {
            _fail(requestId, r);
            return;
        }
        bool decided;
        (decided, s.result) = _aggregate(s, r.aggregation);
        if (!decided || _agreeingStake(s, r.aggregation == Aggregation.Majority) * 2 <= base) {
            _fail(requestId, r);
            return;
        }
        _judge(s, r);
        _slashSilent(s, r);
        _pay(s, r);
        _complete(requestId, r, s.result, s.agreeing);
    }

    /// @notice Finalizes a request with one output signed (EIP-712 `Report(uint256 requestId,int256 output,
    ///         bytes32 weightsDigest,address[] signers)`) by operators holding more than two thirds of the
    ///         version's active stake, and at least `minResponses` of them, as in OCR. Only before the first
    ///         reveal: once operators reveal, commit-reveal decides and deviating answers are slashed, so a
    ///         report cannot override an honest majority that revealed. The fee is split among the signers.
    ///         Anyone may submit it, before the reveal deadline.
    /// @dev The threshold is stake-weighted, like the medians: a Sybil that splits its stake over many
    ///      operators gains nothing. Signing binds the signer list, so the same signatures cannot be replayed
    ///      with fewer signers to take their fee shares.
    /// @param requestId The request.
    /// @param output The agreed output.
    /// @param signers The signers, distinct operators sorted by ascending address; the list they signed.
    /// @param signatures Their signatures (65-byte r,s,v or 64-byte EIP-2098 r,vs), in the order of `signers`.
    function submitReport(
        uint256 requestId,
        int256 output,
        address[] calldata signers,
        bytes[] calldata signatures
    ) external nonReentrant {
        Request storage r = _openRequest(requestId);
        if (block.number > r.revealDeadline) revert RequestClosed(requestId);
        if (r.reveals != 0) revert ReportAfterReveal(requestId, r.reveals);
        uint256 n = signers.length;
        if (signatures.length != n) revert SignerCountMismatch(n, signatures.length);
        if (n < _minResponses) revert QuorumNotMet(n, _minResponses);
        uint256 signedStake =
            _creditSigners(r, _reportDigest(requestId, output, r.weightsDigest, signers), signers, signatures);
        uint256 base = _baseStake(requestId, r);
        if (signedStake * 3 <= base * 2) revert StakeQuorumNotMet(signedStake, base);
        if (r.commits != 0) _release(requestId, r);
        _complete(requestId, r, output, n);
    }

    /// @inheritdoc IZkInferenceOracle
    /// @dev A proof settles the request on its own, at any time while it is open: commit-reveal's judgement is
    ///      not run, so this path slashes nobody. Operators that committed (or revealed) are released, their
    ///      `pending` count decremented as a report does, and keep their stake and earn nothing; even a revealed
    ///      answer far from the proven one is not slashed, since slashing belongs to the stake-weighted judgement
    ///      that the proof replaces. The proof is not bound to the request or the prover: it proves that the
    ///      version's weights map this input to this output, so it is valid for any open request of the same
    ///      version with the same input. A refused proof reverts and leaves the request open. The verifier is
    ///      called with a static call before any effect.
    function fulfillByProof(uint256 requestId, int256[] calldata input, int256 output, uint256[8] calldata proof)
        external
        nonReentrant
    {
        Request storage r = _openRequest(requestId);
        Operator storage op = _sets[r.modelId][r.version].ops[msg.sender];
        if (op.slot == 0) revert NotOperator(msg.sender);
        _requireActive(msg.sender, op.stake);
        if (!r.inlineInput) revert ProofNeedsInlineInput(requestId);
        if (keccak256(abi.encodePacked(input)) != r.inputHash) revert InputMismatch(requestId);
        (address verifier, bytes32 commitment) = registry.zkVerifierOf(r.modelId, r.version);
        if (verifier == address(0)) revert NoZkVerifier(r.modelId, r.version);
        bool valid;
        try IZkInferenceVerifier(verifier).verifyInference(commitment, input, output, msg.sender, proof) returns (bool ok) {
            valid = ok;
        } catch {
            // A verifier that reverts on a malformed proof refuses it like one that returns false.
        }
        if (!valid) revert InvalidProof(requestId);
        if (r.commits != 0) _release(requestId, r);
        op.fees += r.fee;
        emit InferenceProven(requestId, msg.sender, verifier, commitment);
        _complete(requestId, r, output, 1);
    }

    // -----------------------------------------------------------------------------------------------------
    // Views
    // -----------------------------------------------------------------------------------------------------

    /// @notice A request's stored record (`modelId` fits 48 bits: the registry counts models in a uint48).
    /// @param requestId The request.
    function getRequest(uint256 requestId) external view returns (Request memory) {
        Request memory r = _requests[requestId];
        if (r.status == Status.None) revert UnknownRequest(requestId);
        return r;
    }

    /// @notice A finalized request's result; refused for open and failed requests.
    /// @param requestId The request.
    function getResult(uint256 requestId) external view returns (Result memory) {
        Request storage r = _requests[requestId];
        if (r.status == Status.None) revert UnknownRequest(requestId);
        if (r.status != Status.Finalized) revert ResultNotReady(requestId);
        return Result({output: _outputs[requestId], weightsDigest: r.weightsDigest, finalizedAt: r.finalizedAt});
    }

    /// @notice Whether a request can still complete: true while it is open (neither finalized nor failed),
    ///         including past its reveal deadline, since anyone may still finalize it then. False for settled
    ///         requests and for unknown ids (no revert, so that consumers need no try/catch).
    /// @param requestId The request.
    function isPending(uint256 requestId) external view returns (bool) {
        return _requests[requestId].status == Status.Open;
    }

    /// @notice The stake an open request's thresholds are shares of: the larger of the version's active stake
    ///         when the request was made and now. Reports need signers holding more than two thirds of it,
    ///         results reveals holding more than half of it.
    /// @param requestId The request (open; settled and unknown ones are refused).
    function stakeBase(uint256 requestId) external view returns (uint256) {
        return _baseStake(requestId, _openRequest(requestId));
    }

    /// @notice A model version's active operators (stake at least `minStake`) and their total stake: the base
    ///         of new requests' thresholds.
    /// @param modelId The model.
    /// @param version The version.
    function activeStakeOf(uint256 modelId, uint32 version) external view returns (uint256 stake, uint256 count) {
        OperatorSet storage set = _sets[modelId][version];
        return (set.activeStake, set.activeCount);
    }

    /// @notice The operators of a model version, in registration order (an exit moves the last into its place).
    /// @param modelId The model.
    /// @param version The version.
    function operatorsOf(uint256 modelId, uint32 version) external view returns (address[] memory) {
        return _sets[modelId][version].list;
    }

    /// @notice One operator's record for a model version (all zero when not registered).
    /// @param modelId The model.
    /// @param version The version.
    /// @param operator The operator.
    function operatorInfo(uint256 modelId, uint32 version, address operator) external view returns (Operator memory) {
        return _sets[modelId][version].ops[operator];
    }

    /// @notice The declared input size of a model version (zero when undeclared).
    /// @param modelId The model.
    /// @param version The version.
    function inputSizeOf(uint256 modelId, uint32 version) external view returns (uint16) {
        return _inputSize[modelId][version];
    }

    /// @notice What `account` may withdraw now.
    /// @param account The account.
    function withdrawable(address account) external view returns (uint256) {
        return _balances[account];
    }

    /// @notice The oracle's parameters.
    function params() external view returns (Params memory) {
        return Params({
            minStake: _minStake,
            commitWindow: _commitWindow,
            revealWindow: _revealWindow,
            minResponses: _minResponses,
            tolerance: _tolerance,
            slashBps: _slashBps,
            callbackGasLimit: _callbackGasLimit,
            maxOperators: _maxOperators
        });
    }

    /// @notice The EIP-712 digest that report signers sign.
    /// @param requestId The request.
    /// @param output The output.
    /// @param signers The signer list, ascending, exactly as it will be submitted.
    function reportDigest(uint256 requestId, int256 output, address[] calldata signers)
        external
        view
        returns (bytes32)
    {
        return _reportDigest(requestId, output, _requests[requestId].weightsDigest, signers);
    }

    // -----------------------------------------------------------------------------------------------------
    // Internals
    // -----------------------------------------------------------------------------------------------------

    /// @dev The weights digest of a known, live version; the registry's own revert becomes ours.
    function _liveVersion(uint256 modelId, uint32 version) private view returns (bytes32) {
        try registry.getVersion(modelId, version) returns (ModelRegistry.Version memory v) {
            if (v.deprecated) revert DeprecatedModelVersion(modelId, version);
            return v.weightsDigest;
        } catch {
            revert UnknownModelVersion(modelId, version);
        }
    }

    function _store(
        uint256 requestId,
        uint256 modelId,
        uint32 version,
        int256[] calldata input,
        bytes32 inputCid,
        Aggregation aggregation,
        uint256 fee,
        bytes32 weightsDigest
    ) private {
        uint256 commitDeadline = block.number + _commitWindow;
        _requests[requestId] = Request({
            requester: msg.sender,
            // fee <= type(uint96).max, checked by `request`.
            // forge-lint: disable-next-line(unsafe-typecast)
            fee: uint96(fee),
            // The registry counts models in a uint48, and `_liveVersion` found this one.
            // forge-lint: disable-next-line(unsafe-typecast)
            modelId: uint48(modelId),
            version: version,
            // Block numbers stay far below 2^40 (a block a second for 34,000 years).
            // forge-lint: disable-next-line(unsafe-typecast)
            commitDeadline: uint40(commitDeadline),
            // Block numbers stay far below 2^40; the windows are uint32.
            // forge-lint: disable-next-line(unsafe-typecast)
            revealDeadline: uint40(commitDeadline + _revealWindow),
            finalizedAt: 0,
            status: Status.Open,
            aggregation: aggregation,
            commits: 0,
            reveals: 0,
            inlineInput: input.length != 0,
            callback: msg.sender.code.length != 0,
            inputHash: input.length != 0 ? keccak256(abi.encodePacked(input)) : inputCid,
            weightsDigest: weightsDigest
        });
        // Active operators hold at least `minStake` each: the snapshot is zero only if `minStake` is zero. It
        // is a uint128, so the casts are exact.
        _outputs[requestId] = int256(uint256(_sets[modelId][version].activeStake));
    }

    function _emitRequested(
        uint256 requestId,
        uint256 modelId,
        uint32 version,
        int256[] calldata input,
        bytes32 inputCid,
        Aggregation aggregation,
        uint256 fee
    ) private {
        uint256 commitDeadline = block.number + _commitWindow;
        emit InferenceRequested(
            requestId,
            modelId,
            version,
            msg.sender,
            aggregation,
            fee,
            inputCid,
            input,
            commitDeadline,
            commitDeadline + _revealWindow
        );
    }

    function _openRequest(uint256 requestId) private view returns (Request storage r) {
        r = _requests[requestId];
        Status status = r.status;
        if (status != Status.Open) {
            if (status == Status.None) revert UnknownRequest(requestId);
            revert RequestClosed(requestId);
        }
    }

    /// @dev Refuses an operator slashed below `minStake`.
    function _requireActive(address operator, uint256 stake) private view {
        if (stake < _minStake) revert InsufficientStake(operator, stake, _minStake);
    }

    /// @dev The base of an open request's shares: the larger of its snapshot and the version's active stake now.
    function _baseStake(uint256 requestId, Request storage r) private view returns (uint256) {
        // The open request's output slot holds the snapshot, a uint128: the casts are exact.
        uint256 snapshot = uint256(_outputs[requestId]);
        uint256 current = _sets[r.modelId][r.version].activeStake;
        return current > snapshot ? current : snapshot;
    }

    function _reportDigest(uint256 requestId, int256 output, bytes32 weightsDigest, address[] calldata signers)
        private
        view
        returns (bytes32)
    {
        // EIP-712 encodes an address[] as the hash of its 32-byte-padded elements, which encodePacked gives.
        bytes32 signersHash = keccak256(abi.encodePacked(signers));
        return _hashTypedDataV4(keccak256(abi.encode(REPORT_TYPEHASH, requestId, output, weightsDigest, signersHash)));
    }

    /// @dev Cuts `slashBps` of the operator's stake and keeps the version's active stake and count exact.
    function _slash(OperatorSet storage set, Operator storage op) private returns (uint256 amount) {
        uint96 stake = op.stake;
        amount = uint256(stake) * _slashBps / BPS;
        // amount <= stake, a uint96, since _slashBps <= BPS.
        // forge-lint: disable-next-line(unsafe-typecast)
        uint96 left = stake - uint96(amount);
        op.stake = left;
        if (stake >= _minStake) {
            // amount <= stake, a uint96.
            // forge-lint: disable-next-line(unsafe-typecast)
            set.activeStake -= uint128(amount);
            if (left < _minStake) {
                set.activeStake -= left;
                set.activeCount -= 1;
            }
        }
    }

    /// @dev Too few reveals or a split: silent operators are slashed and the fee plus their slashed stake
    ///      refunded; revealers are released unharmed.
    function _fail(uint256 requestId, Request storage r) private {
        OperatorSet storage set = _sets[r.modelId][r.version];
        mapping(address => Operator) storage ops = set.ops;
        uint256 refund = r.fee;
        uint256 commits = r.commits;
        for (uint256 i; i < commits; ++i) {
            address operator = _committers[requestId][i];
            Operator storage op = ops[operator];
            op.pending -= 1;
            if (_commitments[requestId][operator] != REVEALED) {
                uint256 amount = _slash(set, op);
                refund += amount;
                emit OperatorSlashed(requestId, operator, amount, false);
            }
        }
        r.status = Status.Failed;
        r.finalizedAt = uint40(block.timestamp);
        delete _outputs[requestId];
        _balances[r.requester] += refund;
        emit InferenceFailed(requestId, r.modelId, r.version, r.reveals, refund);
    }

    function _loadReveals(uint256 requestId, Request storage r) private view returns (Settlement memory s) {
        uint256 n = r.reveals;
        s.requestId = requestId;
        s.pot = r.fee;
        s.revealers = new address[](n);
        s.outputs = new int256[](n);
        s.weights = new uint256[](n);
        s.agrees = new bool[](n);
        for (uint256 i; i < n; ++i) {
            Reveal storage rv = _reveals[requestId][i];
            s.revealers[i] = rv.operator;
            s.weights[i] = rv.weight;
            s.revealedStake += rv.weight;
            s.outputs[i] = rv.output;
        }
    }

    /// @dev Slashes the revealers whose answers deviate from the result; counts the agreeing ones.
    /// @dev The revealed stake that agrees with the result (within tolerance; the same label for Majority). A
    ///      result needs more than half of the version's active stake to agree with it, not only of the
    ///      revealed stake: when honest operators miss the window, a coalition below half of the active stake
    ///      must not decide alone.
    function _agreeingStake(Settlement memory s, bool majority) private view returns (uint256 stake) {
        for (uint256 i; i < s.outputs.length; ++i) {
            if (!_deviates(s.outputs[i], s.result, majority)) stake += s.weights[i];
        }
    }

    function _judge(Settlement memory s, Request storage r) private {
        OperatorSet storage set = _sets[r.modelId][r.version];
        mapping(address => Operator) storage ops = set.ops;
        bool majority = r.aggregation == Aggregation.Majority;
        for (uint256 i; i < s.outputs.length; ++i) {
            Operator storage op = ops[s.revealers[i]];
            op.pending -= 1;
            if (_deviates(s.outputs[i], s.result, majority)) {
                uint256 amount = _slash(set, op);
                s.pot += amount;
                emit OperatorSlashed(s.requestId, s.revealers[i], amount, true);
            } else {
                s.agrees[i] = true;
                s.agreeing += 1;
            }
        }
    }

    /// @dev Slashes the operators that committed and never revealed.
    function _slashSilent(Settlement memory s, Request storage r) private {
        uint256 commits = r.commits;
        if (commits == s.outputs.length) return;
        OperatorSet storage set = _sets[r.modelId][r.version];
        mapping(address => Operator) storage ops = set.ops;
        for (uint256 i; i < commits; ++i) {
            address operator = _committers[s.requestId][i];
            if (_commitments[s.requestId][operator] == REVEALED) continue;
            Operator storage op = ops[operator];
            op.pending -= 1;
            uint256 amount = _slash(set, op);
            s.pot += amount;
            emit OperatorSlashed(s.requestId, operator, amount, false);
        }
    }

    /// @dev Splits fee plus slashed stake equally among agreeing operators, the remainder to the first of them
    ///      in reveal order. Some always agree: the result has more than half of the revealed stake behind it.
    function _pay(Settlement memory s, Request storage r) private {
        mapping(address => Operator) storage ops = _sets[r.modelId][r.version].ops;
        uint256 share = s.pot / s.agreeing;
        uint256 remainder = s.pot - share * s.agreeing;
        for (uint256 i; i < s.outputs.length; ++i) {
            if (!s.agrees[i]) continue;
            // A pot is a uint96 fee plus slashes of uint96 stakes: far below 2^120 per credit.
            // forge-lint: disable-next-line(unsafe-typecast)
            ops[s.revealers[i]].fees += uint120(share + remainder);
            remainder = 0;
        }
    }

    /// @dev Checks a report's signers (ascending, each signature theirs, active operators) and credits each an
    ///      equal share of the fee, the remainder to the first; returns the stake they hold.
    function _creditSigners(
        Request storage r,
        bytes32 digest,
        address[] calldata signers,
        bytes[] calldata signatures
    ) private returns (uint256 signedStake) {
        mapping(address => Operator) storage ops = _sets[r.modelId][r.version].ops;
        uint256 n = signers.length;
        uint256 fee = r.fee;
        uint256 share = fee / n;
        uint256 first = share + (fee - share * n);
        address previous;
        for (uint256 i; i < n; ) {
            address signer = signers[i];
            if (signer <= previous) revert UnsortedSigners(i);
            previous = signer;
            address recovered = _recover(digest, signatures[i], i);
            if (recovered != signer) revert WrongSigner(i, signer, recovered);
            Operator storage op = ops[signer];
            if (op.slot == 0) revert NotOperator(signer);
            uint96 stake = op.stake;
            _requireActive(signer, stake);
            signedStake += stake;
            op.fees += uint120(i == 0 ? first : share);
            unchecked {
                ++i;
            }
        }
    }

    /// @dev A report or a proof finalized the request: committed operators are no longer busy with it.
    function _release(uint256 requestId, Request storage r) private {
        mapping(address => Operator) storage ops = _sets[r.modelId][r.version].ops;
        uint256 commits = r.commits;
        for (uint256 i; i < commits; ++i) {
            ops[_committers[requestId][i]].pending -= 1;
        }
    }

    /// @dev Stores the result, emits it, then calls the requester back (effects before the interaction).
    function _complete(uint256 requestId, Request storage r, int256 output, uint256 responders) private {
        r.status = Status.Finalized;
        r.finalizedAt = uint40(block.timestamp);
        _outputs[requestId] = output;
        bytes32 weightsDigest = r.weightsDigest;
        emit InferenceFinalized(requestId, r.modelId, r.version, output, weightsDigest, responders);
        if (r.callback) _callback(requestId, r.requester, output, weightsDigest);
    }

    /// @dev Calls `onInference` with exactly `callbackGasLimit` gas. A revert or out-of-gas is logged, never
    ///      propagated; at most MAX_REASON_BYTES of revert data are copied, so a consumer cannot make the
    ///      caller pay for a huge return buffer (which `try/catch (bytes memory)` would copy in full).
    function _callback(uint256 requestId, address consumer, int256 output, bytes32 weightsDigest) private {
        uint256 limit = _callbackGasLimit;
        // EIP-150 forwards at most 63/64 of what is left: make sure the consumer really gets `limit`, so that a
        // finalizer cannot starve the callback on purpose.
        uint256 needed = limit + limit / 63 + CALLBACK_RESERVE;
        if (gasleft() < needed) revert InsufficientGas(needed, gasleft());
        bytes memory data = abi.encodeCall(IInferenceConsumer.onInference, (requestId, output, weightsDigest));
        bool ok;
        uint256 size;
        assembly ("memory-safe") {
            ok := call(limit, consumer, 0, add(data, 0x20), mload(data), 0, 0)
            size := returndatasize()
        }
        if (ok) return;
        if (size > MAX_REASON_BYTES) size = MAX_REASON_BYTES;
        bytes memory reason = new bytes(size);
        assembly ("memory-safe") {
            returndatacopy(add(reason, 0x20), 0, size)
        }
        emit CallbackFailed(requestId, consumer, reason);
    }

    /// @dev Recovers a 65-byte (r, s, v) or 64-byte EIP-2098 (r, vs) signature with the ecrecover precompile.
    ///      Malleable (high s), malformed and unrecoverable signatures are refused, as OpenZeppelin's ECDSA does;
    ///      done inline because the library's memory handling costs about 1k gas per signature.
    function _recover(bytes32 digest, bytes calldata signature, uint256 index) private view returns (address signer) {
        bytes32 r;
        bytes32 s;
        uint256 v;
        if (signature.length == 65) {
            assembly ("memory-safe") {
                r := calldataload(signature.offset)
                s := calldataload(add(signature.offset, 0x20))
                v := byte(0, calldataload(add(signature.offset, 0x40)))
            }
        } else if (signature.length == 64) {
            assembly ("memory-safe") {
                r := calldataload(signature.offset)
                let vs := calldataload(add(signature.offset, 0x20))
                s := and(vs, 0x7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff)
                v := add(shr(255, vs), 27)
            }
        } else {
            revert InvalidSignature(index);
        }
        if (uint256(s) > HALF_CURVE_ORDER || (v != 27 && v != 28)) revert InvalidSignature(index);
        assembly ("memory-safe") {
            // Scratch memory past the free pointer; the precompile writes the address over the first word.
            let p := mload(0x40)
            mstore(p, digest)
            mstore(add(p, 0x20), v)
            mstore(add(p, 0x40), r)
            mstore(add(p, 0x60), s)
            let ok := staticcall(gas(), 1, p, 0x80, p, 0x20)
            signer := mul(mload(p), and(ok, eq(returndatasize(), 0x20)))
        }
        if (signer == address(0)) revert InvalidSignature(index);
    }

    function _deviates(int256 output, int256 result, bool majority) private view returns (bool) {
        if (majority) return output != result;
        uint256 distance;
        unchecked {
            // Two's complement wraps to the exact distance, which always fits in uint256.
            // Reinterpreting int256 as uint256 is the two's complement trick the comment above explains.
            // forge-lint: disable-next-line(unsafe-typecast)
            distance = output >= result ? uint256(output) - uint256(result) : uint256(result) - uint256(output);
        }
        return distance > _tolerance;
    }

    /// @dev The stake-weighted result and whether it is decided. Median: the value c with more than half of the
    ///      revealed stake at or below it and more than half at or above it (unique when it exists; when the
    ///      stake splits exactly in half there is none). Majority: the label with more than half of the
    ///      revealed stake, found by a weighted Boyer-Moore vote in one pass and then counted.
    function _aggregate(Settlement memory s, Aggregation aggregation) private pure returns (bool, int256) {
        uint256 n = s.outputs.length;
        uint256 total = s.revealedStake;
        if (aggregation == Aggregation.Majority) {
            int256 candidate;
            uint256 lead;
            for (uint256 i; i < n; ++i) {
                int256 value = s.outputs[i];
                uint256 w = s.weights[i];
                if (lead == 0) {
                    (candidate, lead) = (value, w);
                } else if (value == candidate) {
                    lead += w;
                } else if (lead >= w) {
                    lead -= w;
                } else {
                    (candidate, lead) = (value, w - lead);
                }
            }
            uint256 behind;
            for (uint256 i; i < n; ++i) {
                if (s.outputs[i] == candidate) behind += s.weights[i];
            }
            return (behind * 2 > total, candidate);
        }
        int256[] memory values = new int256[](n);
        uint256[] memory weights = new uint256[](n);
        for (uint256 i; i < n; ++i) {
            values[i] = s.outputs[i];
            weights[i] = s.weights[i];
        }
        _heapSort(values, weights);
        uint256 below;
        uint256 k;
        while (k < n) {
            int256 value = values[k];
            uint256 run;
            while (k < n && values[k] == value) {
                run += weights[k];
                ++k;
            }
            // The first value with more than half of the stake at or below it is the only candidate; it is
            // decided when the stake strictly below it is less than half.
            if ((below + run) * 2 > total) return (below * 2 < total, value);
            below += run;
        }
        // Unreachable: the last value has all the stake at or below it, and the revealed stake is not zero.
        return (false, 0);
    }

    /// @dev Heap sort, ascending by value, weights moved along: O(n log n) in every order, where insertion
    ///      sort reached 17.9M gas on 255 values in descending order.
    function _heapSort(int256[] memory values, uint256[] memory weights) private pure {
        uint256 n = values.length;
        if (n < 2) return;
        unchecked {
            // Indices stay below n <= 255 and `end` >= 1 in the loops: nothing wraps.
            for (uint256 start = n / 2; start > 0; --start) {
                _siftDown(values, weights, start - 1, n);
            }
            for (uint256 end = n - 1; end > 0; --end) {
                (values[0], values[end]) = (values[end], values[0]);
                (weights[0], weights[end]) = (weights[end], weights[0]);
                _siftDown(values, weights, 0, end);
            }
        }
    }

    function _siftDown(int256[] memory values, uint256[] memory weights, uint256 root, uint256 end) private pure {
        unchecked {
            // child < end <= 255: no overflow.
            while (true) {
                uint256 child = 2 * root + 1;
                if (child >= end) return;
                if (child + 1 < end && values[child + 1] > values[child]) ++child;
                if (values[root] >= values[child]) return;
                (values[root], values[child]) = (values[child], values[root]);
                (weights[root], weights[child]) = (weights[child], weights[root]);
                root = child;
            }
        }
    }
}
