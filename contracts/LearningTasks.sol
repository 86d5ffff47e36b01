// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {DataMarket} from "./DataMarket.sol";
import {ModelRegistry} from "./ModelRegistry.sol";

/// @title LearningTasksStorage
/// @notice The storage layout, types, events and errors that LearningTasks and its settlement extension share.
/// @dev Both contracts inherit it first and declare no storage of their own, so LearningTasks can run
///      LearningSettlement's code with DELEGATECALL on its own storage.
abstract contract LearningTasksStorage {
    /// @notice Which list a member belongs to. An account is a trainer or a validator of a task, never both.
    enum Role {
        Trainer,
        Validator
    }

    /// @notice Where a round stands; see the contract's notes for the block windows.
    enum Phase {
        None,
        Commit,
        ScoreCommit,
        Reveal,
        Finalize,
        Aggregate,
        Done,
        Expired
    }

    /// @notice A task's parameters, fixed at creation.
    /// @param modelId The registry model trained; its owner must have approved this contract.
    /// @param baseVersion The version the first round starts from.
    /// @param format The weights format recorded with each aggregate version (for example "LMQ1").
    /// @param licence The licence recorded with each aggregate version.
    /// @param rewardPerRound The reward pool of each round; `rewardPerRound * rounds` is pulled at creation.
    /// @param rounds How many rounds the task runs at most.
    /// @param minTrainerStake The least stake of a trainer (to join and to commit).
    /// @param minValidatorStake The least stake of a validator (to join and to commit scores).
    /// @param commitWindow Blocks during which trainers commit.
    /// @param scoreWindow Blocks after the commit window: updates are published, validators commit scores.
    /// @param revealWindow Blocks after the score window during which validators reveal.
    /// @param aggregateWindow Blocks after finalization during which an aggregate may be proposed and attested.
    /// @param exitWindow Blocks after a round's finalization (or its expiry) during which no round may start,
    ///        so that members can always leave (at least MIN_EXIT_WINDOW).
    /// @param slashBps The share of its stake, in basis points, that a slashed member loses.
    /// @param minScore The least consensus score (of SCORE_SCALE) an accepted update needs (and never less than
    ///        SCORE_KEPT); an update under it scored at least SCORE_EXCLUDED is excluded, not slashed.
    /// @param relativeBps The least consensus score relative to the round's median, in basis points.
    /// @param quorumBps The share of the round's revealed validator stake, in basis points, whose attestations
    ///        make an aggregate the next version: more than half (5_000), so that a minority never installs one.
    /// @param maxTrainers The most trainers active at once (at most MAX_TRAINERS_CAP).
    /// @param maxValidators The most validators active at once (MIN_VALIDATORS to MAX_VALIDATORS_CAP).
    struct TaskParams {
        uint48 modelId;
        uint32 baseVersion;
        bytes8 format;
        bytes32 licence;
        uint96 rewardPerRound;
        uint32 rounds;
        uint96 minTrainerStake;
        uint96 minValidatorStake;
        uint32 commitWindow;
        uint32 scoreWindow;
        uint32 revealWindow;
        uint32 aggregateWindow;
        uint32 exitWindow;
        uint16 slashBps;
        uint16 minScore;
        uint16 relativeBps;
        uint16 quorumBps;
        uint16 maxTrainers;
        uint16 maxValidators;
    }

    /// @notice A task's running state.
    /// @param creator The account that created and funds the task; it starts rounds and gets dust and refunds.
    /// @param roundCount Rounds started so far; rounds count from 1.
    /// @param currentVersion The model version the next round trains from.
    /// @param closed No more rounds or joins.
    /// @param poolLeft Reward not yet assigned to a round, plus the reward part of pots nobody qualified for
    ///        and the pools of expired rounds; `closeTask` refunds it to the creator. Slashes never go here.
    /// @param activeTrainers Trainers that joined and did not leave.
    /// @param activeValidators Validators that joined and did not leave.
    /// @param datasets How many DataMarket datasets the task names (their ids: the TaskDatasetsSet event); 0: none,
    ///        nothing is checked.
    struct TaskState {
        address creator;
        uint32 roundCount;
        uint32 currentVersion;
        bool closed;
        uint128 poolLeft;
        uint16 activeTrainers;
        uint16 activeValidators;
        uint8 datasets;
    }

    /// @notice A trainer's or validator's record in one task: one slot.
    /// @param stake Its stake (slashes come out of it).
    /// @param earned Rewards not yet claimed.
    /// @param commitRound The last round in which a trainer committed an update (unused for validators).
    /// @param status 0: never joined, 1: active, 2: left.
    struct Member {
        uint96 stake;
        uint120 earned;
        uint32 commitRound;
        uint8 status;
    }

    /// @notice A trainer's latest committed update: what `getUpdate` returns.
    struct UpdateRecord {
        bytes32 digest;
        uint32 round;
        uint32 samples;
    }

    /// @notice The part of a round that commits and reveals touch: one slot. `datasets` is the task's count,
    ///         copied at `startRound` so that a commit to a task naming none reads no other slot.
    struct RoundState {
        uint40 commitDeadline;
        uint40 scoreDeadline;
        uint40 revealDeadline;
        uint16 commits;
        uint16 scoreCommits;
        uint16 reveals;
        bool finalized;
        uint32 baseVersion;
        uint8 datasets;
    }

    /// @notice A round's pool and outcome: one slot.
    /// @param pool The round's reward pool.
    /// @param finalizedAt The block of `finalize` (0 before).
    /// @param newVersion The registry version the round's aggregate became (0: none).
    /// @param accepted Updates accepted.
    /// @param roundMedian The lower median of the scored (not void) updates' consensus scores.
    /// @param aggregated Whether an aggregate reached quorum.
    /// @param expired Whether nobody finalized the round within FINALIZE_TIMEOUT blocks of its reveal deadline:
    ///        it settled nothing and its pool went back to the task's pool.
    struct RoundResult {
        uint96 pool;
        uint40 finalizedAt;
        uint32 newVersion;
        uint16 accepted;
        uint16 roundMedian;
        bool aggregated;
        bool expired;
    }

    /// @notice An aggregate proposal: its proposer and the revealed stake of its votes (the proposer's included).
    struct Proposal {
        address proposer;
        uint96 stake;
    }

    /// @notice What `getRound` returns.
    struct RoundView {
        RoundState state;
        RoundResult result;
        bytes32 contributorsHash;
        bytes32 aggregateDigest;
        Phase phase;
    }

    /// @dev Where a round's stepwise finalization stands, and its round-level sums: two slots.
    struct Progress {
        uint8 stage;
        /// @dev The next score word (consensus pass) or trainer index (judge and settle passes).
        uint32 cursor;
        /// @dev Committed updates met so far in the current trainer pass.
        uint32 seen;
        /// @dev Updates with a consensus (not void by a split).
        uint32 nScored;
        uint16 accepted;
        uint16 roundMedian;
        /// @dev Whether the revealing validators hold a strict majority of the active validators' stake.
        bool scored;
        /// @dev Sum over accepted updates of c - SCORE_KEPT: what is paid for.
        uint64 sumAccepted;
        uint128 trainerSlashes;
        /// @dev Rewards credited to trainers so far.
        uint128 paid;
    }

    struct Round {
        RoundState s;
        RoundResult res;
        /// @dev The hash chain h = keccak256(abi.encode(h, trainer, digest)) from h = 0 over the accepted
        ///      updates in trainer order (0 when none is accepted); it can be built page by page.
        bytes32 contributorsHash;
        bytes32 aggregateDigest;
        /// @dev 1 + the stake of the validators that revealed (the denominator of the aggregate quorum): the 1
        ///      is written by `startRound`, so that the first reveal does not pay for a fresh slot.
        uint256 revealedStakePlusOne;
        /// @dev The commitment, then, once revealed, the validator's stake at its reveal (below REVEAL_MARK).
        mapping(address validator => bytes32) scoreCommits;
        mapping(address validator => mapping(uint256 word => uint256)) scores;
        mapping(address validator => uint8) votes;
        bytes32[] proposalDigests;
        mapping(bytes32 digest => Proposal) proposals;
        /// @dev A paged reveal's running hash chain over the pages revealed so far, and their words.
        mapping(address validator => bytes32) revealChain;
        mapping(address validator => uint256) revealedWords;
        Progress progress;
        /// @dev Per update, its consensus score (VOID lane 0xffff for a split), packed 16 per word.
        mapping(uint256 word => uint256) consensus;
        /// @dev Per validator (its index in the task's list), its summed distance from the consensus.
        mapping(uint256 index => uint256) distance;
        /// @dev 128 counters (16 bits each, 16 per word) of the high 7 bits of the scored consensus values.
        uint256[8] histogram;
    }

    struct Task {
        TaskParams params;
        TaskState state;
        /// @dev Active trainers only: an exit swaps the last one into the leaver's place.
        address[] trainers;
        /// @dev Active validators only, kept as `trainers`.
        address[] validators;
        /// @dev 1 + an active trainer's index in `trainers`; 0 for others.
        mapping(address => uint256) trainerIndex;
        /// @dev 1 + an active validator's index in `validators`; 0 for others.
        mapping(address => uint256) validatorIndex;
        mapping(address => Member) trainerOf;
        mapping(address => Member) validatorOf;
        /// @dev A trainer's latest committed digest and sample count (placeholders from its first join, so a
        ///      commit never pays for fresh slots). Keyed by trainer: a digest is nobody else's business.
        mapping(address => bytes32) digestOf;
        mapping(address => uint32) samplesOf;
        mapping(uint256 round => Round) rounds;
        /// @dev The DataMarket datasets a trainer must have access to (`setDatasets`), at most MAX_DATASETS. No
        ///      view returns them (LearningTasks is at the 24 KiB code limit): read the TaskDatasetsSet event.
        uint256[] datasetIds;
    }

    /// @notice Basis points: 10_000 is 100 %.
    uint256 public constant BPS = 10_000;
    /// @notice Scores are integers from 0 to SCORE_SCALE (1.0).
    uint256 public constant SCORE_SCALE = 10_000;
    /// @notice The consensus score of an update excluded without blame: left out of the aggregate, unpaid and
    ///         not slashed. Any consensus from 1 up to an update's acceptance bar excludes it; only a consensus
    ///         of 0, which needs more than half of the revealed stake to score it 0, slashes.
    uint256 public constant SCORE_EXCLUDED = 1;
    /// @notice The least score of an accepted update: kept in the aggregate but adding nothing measurable, so
    ///         paid nothing; rewards are in proportion to the score above it.
    uint256 public constant SCORE_KEPT = 2;
    /// @notice The validators' fraction of each round's pool, in basis points (the rest is the trainers').
    uint256 public constant VALIDATOR_SHARE_BPS = 2_000;
    /// @notice A validator's weight falls by this many points per point of mean distance from consensus.
    uint256 public constant AGREEMENT_GAIN = 4;
    /// @notice uint16 scores per packed word.
    uint256 public constant SCORES_PER_WORD = 16;
    /// @notice The largest trainer list a task may have. With MAX_VALIDATORS_CAP validators, no transaction
    ///         of a round (commits, score commits, reveal pages, finalize steps, aggregate) needs more than
    ///         10,000,000 gas (see the gas tests and the bench's gas.fl.max_tx keys).
    uint256 public constant MAX_TRAINERS_CAP = 10_000;
    /// @notice The largest validator list a task may have: each update's consensus sorts one score per
    ///         revealing validator, so a finalize step's updates shrink with the square of this.
    uint256 public constant MAX_VALIDATORS_CAP = 32;
    /// @notice Packed score words per `revealScores` page (4,096 scores): a page of fresh slots stays under
    ///         10,000,000 gas. A score commitment binds the chain of the pages' hashes (see `scoreCommitment`).
    uint256 public constant REVEAL_PAGE_WORDS = 256;
    /// @notice The fewest active validators a round starts with: below three, a share rule (a strict majority
    ///         of stake) lets one validator decide alone.
    uint256 public constant MIN_VALIDATORS = 3;
    /// @notice The most rounds a task may have.
    uint256 public constant MAX_ROUNDS = 1_000;
    /// @notice The longest window (commit, score, reveal, aggregate, exit), in blocks.
    uint256 public constant MAX_WINDOW = 100_000;
    /// @notice The shortest exit window, in blocks: the creator cannot start a round in the block after the last.
    uint256 public constant MIN_EXIT_WINDOW = 5;
    /// @notice Blocks after a round's reveal deadline within which it must be finalized; after them it expires:
    ///         it settles nothing (so slashes nobody), and its members may leave.
    uint256 public constant FINALIZE_TIMEOUT = 7_200;
    /// @notice The most datasets a task may name. Every trainer's join and commit calls `hasAccess` once per
    ///         dataset (about 5,000 gas each), so the cap bounds what a task's datasets add to them; a
    ///         consortium's task draws on a few data sources, not dozens.
    uint256 public constant MAX_DATASETS = 4;

    uint8 internal constant NEVER = 0;
    uint8 internal constant ACTIVE = 1;
    uint8 internal constant LEFT = 2;
    /// @dev Score commitments are at least this (a keccak256 output is, but for a 2^-128 chance); a stored
    ///      value below it is a revealed validator's stake.
    uint256 internal constant REVEAL_MARK = 1 << 128;
    /// @dev A round's contributors' hash between `startRound` and `finalize`.
    bytes32 internal constant CONTRIBUTORS_PENDING = bytes32(uint256(1));
    // Finalization stages (Progress.stage). From STAGE_SETTLE on, members' records are being written: the
    // round no longer expires, and anyone finishes it in bounded steps.
    uint8 internal constant STAGE_NONE = 0;
    uint8 internal constant STAGE_CONSENSUS = 1;
    uint8 internal constant STAGE_MEDIAN = 2;
    uint8 internal constant STAGE_JUDGE = 3;
    uint8 internal constant STAGE_SETTLE = 4;
    uint8 internal constant STAGE_CLOSE = 5;

    /// @notice Tasks created so far; task ids count from 1.
    uint256 public taskCount;
    /// @notice MIND kept by the contract for good: slashes and rounding dust that no member qualified for.
    ///         Never paid to anyone (the creator included, so that no-shows are nobody's income); counted so
    ///         that the contract's balance = what it owes + burned.
    uint256 public burned;
    mapping(uint256 taskId => Task) internal _tasks;
    mapping(address account => uint256) internal _balances;

    /// @notice A task was created and its reward (`rewardPerRound * rounds`) pulled from `creator`.
    event TaskCreated(uint256 indexed taskId, uint256 indexed modelId, address indexed creator, TaskParams params);
    /// @notice A member joined (or added `amount` to its stake); `stake` is its stake now.
    event Joined(uint256 indexed taskId, address indexed account, Role indexed role, uint256 amount, uint256 stake);
    /// @notice A member left; its stake and unclaimed rewards became withdrawable.
    event Left(uint256 indexed taskId, address indexed account, Role indexed role, uint256 stake, uint256 earned);
    /// @notice A member moved its rewards to its withdrawable balance.
    event Claimed(uint256 indexed taskId, address indexed account, Role indexed role, uint256 amount);
    /// @notice A round started from `baseVersion`, with its windows' last blocks.
    event RoundStarted(
        uint256 indexed taskId,
        uint32 indexed round,
        uint32 baseVersion,
        uint256 pool,
        uint256 commitDeadline,
        uint256 scoreDeadline,
        uint256 revealDeadline
    );
    /// @notice A trainer committed to an update: its bytes are the blob whose CID v1 raw sha256 has `digest`.
    event UpdateCommitted(
        uint256 indexed taskId, uint32 indexed round, address indexed trainer, bytes32 digest, uint32 samples
    );
    /// @notice A validator committed to its scores.
    event ScoresCommitted(uint256 indexed taskId, uint32 indexed round, address indexed validator, bytes32 commitment);
    /// @notice A validator revealed its packed scores (16 per word, in the order of committed updates).
    event ScoresRevealed(uint256 indexed taskId, uint32 indexed round, address indexed validator, uint256[] words);
    /// @notice A trainer's outcome in a finalized round: every active trainer gets one. The fields tell its tier:
    ///         a no-show is not `committed`; an accepted update is `accepted`; an excluded one (unpaid, not
    ///         slashed) has a `score` of at least SCORE_EXCLUDED and is not accepted; a rejected one has a score
    ///         of 0 and is `slashed`; a void one has a score of 0 and is neither paid nor slashed.
    /// @param committed False for a no-show.
    /// @param score The update's consensus score (0 for a no-show or a void update).
    event TrainerSettled(
        uint256 indexed taskId,
        uint32 indexed round,
        address indexed trainer,
        bool committed,
        uint256 score,
        bool accepted,
        uint256 reward,
        uint256 slashed
    );
    /// @notice A validator's outcome in a finalized round: every active validator gets one.
    /// @param weight Its agreement weight (0 if it did not reveal).
    event ValidatorSettled(
        uint256 indexed taskId,
        uint32 indexed round,
        address indexed validator,
        bool revealed,
        uint256 weight,
        uint256 reward,
        uint256 slashed
    );
    /// @notice A round was finalized. `refunded` (the reward part of a pot nobody qualified for) went back to
    ///         the task's pool; `burned` (the slashes in such a pot, and rounding dust) was added to `burned`.
    event RoundFinalized(
        uint256 indexed taskId,
        uint32 indexed round,
        uint256 updates,
        uint256 accepted,
        uint256 roundMedian,
        bytes32 contributorsHash,
        uint256 refunded,
        uint256 burned
    );
    /// @notice Nobody finalized the round within FINALIZE_TIMEOUT blocks: it settled nothing, and its pool went
    ///         back to the task's pool.
    event RoundExpired(uint256 indexed taskId, uint32 indexed round, uint256 pool);
    /// @notice A validator proposed the digest of the round's aggregate (counted as its attestation).
    event AggregateProposed(uint256 indexed taskId, uint32 indexed round, address indexed proposer, bytes32 digest);
    /// @notice A validator attested a proposed aggregate; `stake` is the revealed stake behind it now.
    event AggregateAttested(
        uint256 indexed taskId, uint32 indexed round, address indexed validator, bytes32 digest, uint256 stake
    );
    /// @notice A proposer was outvoted by a conflicting aggregate that reached quorum, and slashed.
    event ProposerSlashed(
        uint256 indexed taskId, uint32 indexed round, address indexed proposer, bytes32 digest, uint256 amount
    );
    /// @notice An aggregate reached quorum and became `version` of the task's model. The registry's version
    ///         records parent = the round's base version, datasets = [contributorsHash] and trainingRun =
    ///         this contract's address (20 bytes) ++ uint64 taskId ++ uint32 round.
    event AggregateAccepted(
        uint256 indexed taskId,
        uint32 indexed round,
        uint32 indexed version,
        bytes32 digest,
        bytes32 contributorsHash,
        bytes32 trainingRun
    );
    /// @notice The creator named the datasets every trainer of the task must have access to in the DataMarket.
    event TaskDatasetsSet(uint256 indexed taskId, uint256[] datasetIds);
    /// @notice A trainer without access to `datasetId` any more took its stake back during a round it did not
    ///         commit in: it stays a member with no stake (so the round settles it as a no-show that loses
    ///         nothing) and leaves with `exitTask` after the round.
    event StakeReleased(uint256 indexed taskId, address indexed trainer, uint256 indexed datasetId, uint256 stake);
    /// @notice The creator closed the task; the reward of rounds never started went back to it.
    event TaskClosed(uint256 indexed taskId, uint256 refund);
    /// @notice An account withdrew its balance.
    event Withdrawn(address indexed account, uint256 amount);

    /// @notice A constructor address is zero (`field` 0), or the task parameter at 1-based position `field` of
    ///         `TaskParams` is out of its bounds: rewardPerRound > 0 (5), 1 <= rounds <= MAX_ROUNDS (6), non-zero
    ///         minimum stakes (7, 8), windows 1 to MAX_WINDOW (9 to 12), exitWindow MIN_EXIT_WINDOW to
    ///         MAX_WINDOW (13), slashBps <= 10_000 (14), minScore <= SCORE_SCALE (15), relativeBps <= 10_000 (16),
    ///         5_000 < quorumBps <= 10_000 (17), maxTrainers 1 to MAX_TRAINERS_CAP (18), maxValidators
    ///         MIN_VALIDATORS to MAX_VALIDATORS_CAP (19).
    error InvalidParams(uint256 field);
    /// @notice `amount` (a task's funding or a member's stake) does not fit in 96 bits.
    error AmountTooLarge(uint256 amount);
    /// @notice The registry has no version `version` of model `modelId`.
    error UnknownModelVersion(uint256 modelId, uint32 version);
    /// @notice `caller` neither owns model `modelId` nor is approved for it.
    error NotModelOwner(uint256 modelId, address caller);
    /// @notice The model's owner has not approved this contract to append versions of model `modelId`.
    error ContractNotApproved(uint256 modelId);
    /// @notice No task `taskId` exists.
    error UnknownTask(uint256 taskId);
    /// @notice Task `taskId` was closed: no joins or rounds.
    error TaskAlreadyClosed(uint256 taskId);
    /// @notice Only the task's creator may do this; `caller` is not it.
    error NotTaskCreator(uint256 taskId, address caller);
    /// @notice Round `round` is neither finalized nor expired: members are locked in until it is.
    error RoundInProgress(uint256 taskId, uint32 round);
    /// @notice The task ran all its rounds.
    error NoRoundsLeft(uint256 taskId);
    /// @notice A round needs `needed` active trainers; the task has `active`.
    error NotEnoughTrainers(uint256 taskId, uint256 active, uint256 needed);
    /// @notice A round needs `needed` (MIN_VALIDATORS) active validators; the task has `active`.
    error NotEnoughValidators(uint256 taskId, uint256 active, uint256 needed);
    /// @notice A stake of `stake` is below the role's minimum `minStake` (to join, or to act after a slash).
    error StakeTooLow(uint256 stake, uint256 minStake);
    /// @notice `account` is an active member of the task in the other role.
    error RoleConflict(uint256 taskId, address account);
    /// @notice The role already has `maxMembers` active members.
    error TooManyMembers(uint256 taskId, uint256 maxMembers);
    /// @notice `account` is not an active trainer of the task.
    error NotTrainer(uint256 taskId, address account);
    /// @notice `account` is not an active validator of the task.
    error NotValidator(uint256 taskId, address account);
    /// @notice The caller's aggregate proposal of round `round` awaits its quorum: it may leave once the
    ///         aggregate window ends.
    error ProposalPending(uint256 taskId, uint32 round);
    /// @notice Round `round` of the task does not exist.
    error UnknownRound(uint256 taskId, uint32 round);
    /// @notice Round `round` is in phase `actual`; the action needs `expected`.
    error WrongPhase(uint256 taskId, uint32 round, Phase expected, Phase actual);
    /// @notice `account` already committed (an update or scores) in round `round`.
    error AlreadyCommitted(uint256 taskId, uint32 round, address account);
    /// @notice A zero digest.
    error EmptyDigest();
    /// @notice An update of zero samples.
    error InvalidSamples();
    /// @notice Round `round` has no committed update: there is nothing to score.
    error NothingToScore(uint256 taskId, uint32 round);
    /// @notice A score commitment below 2^128 (those values mark a reveal).
    error InvalidCommitment();
    /// @notice `account` made no score commitment in round `round`.
    error NoCommit(uint256 taskId, uint32 round, address account);
    /// @notice `account` already revealed its scores in round `round`.
    error AlreadyRevealed(uint256 taskId, uint32 round, address account);
    /// @notice A reveal of `words` packed words; the round's updates need `expectedWords`.
    error WrongScoreCount(uint256 expectedWords, uint256 words);
    /// @notice Score `index` is `score`, above SCORE_SCALE (or a padding lane past the last update is not zero).
    error ScoreOutOfRange(uint256 index, uint256 score);
    /// @notice The revealed scores and salt do not hash to `account`'s commitment.
    error RevealMismatch(uint256 taskId, uint32 round, address account);
    /// @notice `roundUpdates` reads only the task's latest round; `round` is older.
    error RoundNotLatest(uint256 taskId, uint32 round);
    /// @notice `validator` did not reveal scores in round `round`, so it does not vote on its aggregate.
    error DidNotReveal(uint256 taskId, uint32 round, address validator);
    /// @notice `validator` already proposed or attested an aggregate of round `round`.
    error AlreadyVoted(uint256 taskId, uint32 round, address validator);
    /// @notice `digest` was already proposed in round `round`: attest it instead.
    error AlreadyProposed(uint256 taskId, uint32 round, bytes32 digest);
    /// @notice Nobody proposed `digest` in round `round`.
    error UnknownProposal(uint256 taskId, uint32 round, bytes32 digest);
    /// @notice `account` has no rewards to claim in the task.
    error NothingToClaim(address account);
    /// @notice `account` has no withdrawable balance.
    error NothingToWithdraw(address account);
    /// @notice Round `round` was finalized (or expired) recently: no round starts before block `opensAfter` + 1,
    ///         so that members may leave first.
    error ExitWindowOpen(uint256 taskId, uint32 round, uint256 opensAfter);
    /// @notice The task names dataset `datasetId` and `account` has no access to it now: buy access, ask its
    ///         owner for a grant, or own its data NFT.
    error DatasetAccessRequired(uint256 taskId, uint256 datasetId, address account);
    /// @notice A task names 1 to MAX_DATASETS datasets; `count` were given.
    error InvalidDatasetCount(uint256 count, uint256 max);
    /// @notice The DataMarket has no dataset `datasetId`.
    error UnknownDataset(uint256 datasetId);
    /// @notice Dataset `datasetId` was named twice.
    error DuplicateDataset(uint256 datasetId);
    /// @notice The task's datasets are fixed: named already, or its first round started.
    error DatasetsFixed(uint256 taskId);
    /// @notice The task does not name dataset `datasetId`.
    error NotTaskDataset(uint256 taskId, uint256 datasetId);
    /// @notice `account` still has access to dataset `datasetId`: it keeps its stake in the round.
    error AccessNotLost(uint256 taskId, uint256 datasetId, address account);

    // -----------------------------------------------------------------------------------------------------
    // Shared internals
    // -----------------------------------------------------------------------------------------------------

    function _existingTask(uint256 taskId) internal view returns (Task storage t) {
        t = _tasks[taskId];
        if (t.state.creator == address(0)) revert UnknownTask(taskId);
    }

    function _existingRound(Task storage t, uint256 taskId, uint32 round) internal view returns (Round storage r) {
        if (round == 0 || round > t.state.roundCount) revert UnknownRound(taskId, round);
        return t.rounds[round];
    }

    function _inPhase(Task storage t, uint256 taskId, uint32 round, Phase expected)
        internal
        view
        returns (Round storage r)
    {
        r = _existingRound(t, taskId, round);
        Phase actual = _phase(t, round, r);
        if (actual != expected) revert WrongPhase(taskId, round, expected, actual);
    }

    function _phase(Task storage t, uint32 round, Round storage r) internal view returns (Phase) {
        RoundState memory s = r.s;
        if (s.commitDeadline == 0) return Phase.None;
        if (!s.finalized) {
            if (block.number <= s.commitDeadline) return Phase.Commit;
            if (block.number <= s.scoreDeadline) return Phase.ScoreCommit;
            if (block.number <= s.revealDeadline) return Phase.Reveal;
            if (block.number <= uint256(s.revealDeadline) + FINALIZE_TIMEOUT || r.progress.stage >= STAGE_SETTLE) {
                return Phase.Finalize;
            }
            return Phase.Expired;
        }
        RoundResult memory res = r.res;
        if (res.expired) return Phase.Expired;
        if (
            round == t.state.roundCount && !res.aggregated && res.accepted != 0
                && block.number <= uint256(res.finalizedAt) + t.params.aggregateWindow
        ) return Phase.Aggregate;
        return Phase.Done;
    }

    /// @dev A validator's stake at its reveal in round `r`; 0 if it did not reveal.
    function _revealedStake(Round storage r, address validator) internal view returns (uint256) {
        uint256 mark = uint256(r.scoreCommits[validator]);
        return mark < REVEAL_MARK ? mark : 0;
    }
}

/// @title LearningSettlement
/// @notice The paged score reveal (`revealScores`) and the stepwise settlement (`finalize`) of LearningTasks
///         rounds, split off so that LearningTasks stays within the 24 KiB code limit. LearningTasks deploys it
///         and runs it with DELEGATECALL: its storage, events and balances are LearningTasks'. Called directly,
///         it sees its own empty storage and refuses every round.
/// @dev Each `finalize` call does the next bounded share of the work, priced by the estimates below, so that
///      no call goes over STEP_BUDGET of estimated gas (the estimates are upper bounds of the measured costs,
///      and the budget leaves a margin to 10,000,000 gas): (1) consensus over pages of packed score words,
///      (2) the round median from a histogram and one read pass over the consensus words, (3) judge pages of
///      trainers (round-level sums only), (4) settle pages of trainers (rewards, slashes, events, the
///      contributors' hash chain), then the validators and the round's close. A small round does all of it
///      in one call.
contract LearningSettlement is LearningTasksStorage {
    // Trainer outcomes.
    uint8 private constant T_NO_SHOW = 1;
    uint8 private constant T_VOID = 2;
    uint8 private constant T_ACCEPTED = 3;
    uint8 private constant T_REJECTED = 4;
    /// @dev Scored above 0 but under the acceptance bar: neither paid, slashed nor aggregated.
    uint8 private constant T_EXCLUDED = 5;
    // Validator outcomes.
    uint8 private constant V_SILENT = 1;
    uint8 private constant V_REVEALED = 2;
    uint8 private constant V_EXCUSED = 3;
    /// @dev A column whose revealed stake is split evenly around its middle: no strict majority, no consensus.
    uint256 private constant SPLIT = type(uint256).max;
    /// @dev The lane of a void update in the packed consensus words (no score is above SCORE_SCALE).
    uint256 private constant VOID_LANE = 0xffff;

    // Estimated gas per unit of work: upper bounds of what the gas tests measure, so that a call that keeps
    // its estimate within STEP_BUDGET stays under 10,000,000 gas whatever the scores.
    uint256 private constant STEP_BUDGET = 7_500_000;
    uint256 private constant BEGIN_GAS = 40_000;
    uint256 private constant PER_VALIDATOR_GAS = 6_000;
    uint256 private constant WORD_GAS = 40_000;
    uint256 private constant WORD_PER_VALIDATOR_GAS = 5_000;
    // A lane sorts k keys: k^2 / 2 shifts at worst (measured: 2.7M gas for a word of 32 revealers in the
    // costliest order, about 160k a lane).
    uint256 private constant LANE_GAS = 2_500;
    uint256 private constant LANE_PER_VALIDATOR_GAS = 1_500;
    uint256 private constant LANE_PER_PAIR_GAS = 150;
    uint256 private constant MEDIAN_GAS = 60_000;
    uint256 private constant MEDIAN_PER_WORD_GAS = 5_000;
    uint256 private constant JUDGE_GAS = 9_000;
    uint256 private constant SETTLE_GAS = 18_000;
    uint256 private constant CLOSE_GAS = 120_000;
    uint256 private constant CLOSE_PER_VALIDATOR_GAS = 35_000;

    /// @notice The data market whose datasets tasks name (LearningTasks' own, fixed with it).
    DataMarket public immutable market;

    /// @notice Deploys the settlement code that LearningTasks runs; `market_` is its data market.
    /// @param market_ The DataMarket.
    constructor(DataMarket market_) {
        market = market_;
    }

    /// @notice Reverts with DatasetAccessRequired naming the first of the task's datasets the caller cannot use
    ///         now. LearningTasks runs it (DELEGATECALL) when a trainer joins or commits; called directly it sees
    ///         no task.
    /// @param taskId The task.
    function requireAccess(uint256 taskId) external view {
        uint256[] storage ids = _tasks[taskId].datasetIds;
        for (uint256 i; i < ids.length; ++i) {
            uint256 id = ids[i];
            if (!market.hasAccess(id, msg.sender)) revert DatasetAccessRequired(taskId, id, msg.sender);
        }
    }

    /// @notice Names the datasets every trainer of the task must have access to (see LearningTasks'
    ///         `setDatasets`).
    /// @param taskId The task, before its first round.
    /// @param datasetIds 1 to MAX_DATASETS distinct DataMarket datasets.
    function setDatasets(uint256 taskId, uint256[] calldata datasetIds) external {
        Task storage t = _existingTask(taskId);
        if (msg.sender != t.state.creator) revert NotTaskCreator(taskId, msg.sender);
        if (t.state.datasets != 0 || t.state.roundCount != 0) revert DatasetsFixed(taskId);
        uint256 n = datasetIds.length;
        if (n == 0 || n > MAX_DATASETS) revert InvalidDatasetCount(n, MAX_DATASETS);
        uint256 published = market.datasetCount();
        for (uint256 i; i < n; ++i) {
            uint256 id = datasetIds[i];
            if (id == 0 || id > published) revert UnknownDataset(id);
            for (uint256 k; k < i; ++k) {
                if (datasetIds[k] == id) revert DuplicateDataset(id);
            }
            t.datasetIds.push(id);
        }
        // casting to 'uint8' is safe because n <= MAX_DATASETS
        // forge-lint: disable-next-line(unsafe-typecast)
        t.state.datasets = uint8(n);
        emit TaskDatasetsSet(taskId, datasetIds);
    }

    /// @notice Gives a trainer that lost access to one of the task's datasets its stake back during a round
    ///         (see LearningTasks' `releaseStakeWithoutAccess`).
    /// @param taskId The task.
    /// @param datasetId A dataset the task names and the caller has no access to now.
    function releaseStakeWithoutAccess(uint256 taskId, uint256 datasetId) external {
        Task storage t = _existingTask(taskId);
        Member storage m = t.trainerOf[msg.sender];
        if (m.status != ACTIVE) revert NotTrainer(taskId, msg.sender);
        uint32 latest = t.state.roundCount;
        Round storage r = t.rounds[latest];
        if (latest != 0 && !r.s.finalized) {
            // Judging reads the trainers' stakes: from then on they may not change until the round settles.
            if (r.progress.stage >= STAGE_JUDGE) revert RoundInProgress(taskId, latest);
            // A committed update is scored as any other: its trainer had access when it committed.
            if (m.commitRound == latest) revert AlreadyCommitted(taskId, latest, msg.sender);
        }
        uint256 n = t.datasetIds.length;
        uint256 i;
        while (i < n && t.datasetIds[i] != datasetId) ++i;
        if (i == n) revert NotTaskDataset(taskId, datasetId);
        if (market.hasAccess(datasetId, msg.sender)) revert AccessNotLost(taskId, datasetId, msg.sender);
        uint256 stake = m.stake;
        if (stake == 0) revert NothingToWithdraw(msg.sender);
        m.stake = 0;
        _balances[msg.sender] += stake;
        emit StakeReleased(taskId, msg.sender, datasetId, stake);
    }

    /// @notice Reveals the next page of the caller's committed scores: one score (0 to SCORE_SCALE) per
    ///         committed update, in the round's update order, packed 16 per word (score i in bits 16 * (i % 16)
    ///         of word i / 16; the unused high lanes of the last word zero). A page is the next
    ///         min(REVEAL_PAGE_WORDS, words left) words; the last page checks the commitment and counts the
    ///         reveal. Rounds of up to 16 * REVEAL_PAGE_WORDS updates reveal in one transaction.
    /// @param taskId The task.
    /// @param round The round, in its reveal window.
    /// @param words The page's packed words.
    /// @param salt The secret that hid the scores in the commitment (checked with the last page).
    function revealScores(uint256 taskId, uint32 round, uint256[] calldata words, bytes32 salt) external {
        Task storage t = _tasks[taskId];
        Round storage r = _inPhase(t, taskId, round, Phase.Reveal);
        bytes32 stored = r.scoreCommits[msg.sender];
        if (stored == bytes32(0)) revert NoCommit(taskId, round, msg.sender);
        if (uint256(stored) < REVEAL_MARK) revert AlreadyRevealed(taskId, round, msg.sender);
        (bytes32 chain, bool last) = _revealPage(r, words);
        emit ScoresRevealed(taskId, round, msg.sender, words);
        if (!last) return;
        if (keccak256(abi.encode(taskId, round, msg.sender, chain, salt)) != stored) {
            revert RevealMismatch(taskId, round, msg.sender);
        }
        // The stake cannot change before the round ends (no joins or exits in it): it weighs the reveal in
        // the consensus and, later, the validator's vote on the aggregate.
        uint256 stake = t.validatorOf[msg.sender].stake;
        r.scoreCommits[msg.sender] = bytes32(stake);
        r.revealedStakePlusOne += stake;
        r.s.reveals += 1;
    }

    /// @dev Checks and stores the caller's next page of words; returns the pages' hash chain and whether the
    ///      page was the last (the chain is kept for the next page otherwise).
    function _revealPage(Round storage r, uint256[] calldata words) private returns (bytes32 chain, bool last) {
        uint256 n = r.s.commits;
        uint256 from = r.revealedWords[msg.sender];
        uint256 left = (n + SCORES_PER_WORD - 1) / SCORES_PER_WORD - from;
        uint256 page = left < REVEAL_PAGE_WORDS ? left : REVEAL_PAGE_WORDS;
        if (words.length != page) revert WrongScoreCount(page, words.length);
        _checkScores(words, from, n);
        chain = keccak256(abi.encodePacked(from == 0 ? bytes32(0) : r.revealChain[msg.sender], words));
        mapping(uint256 => uint256) storage row = r.scores[msg.sender];
        for (uint256 w; w < page; ++w) {
            row[from + w] = words[w];
        }
        last = page == left;
        if (!last) {
            r.revealChain[msg.sender] = chain;
            r.revealedWords[msg.sender] = from + page;
        }
    }

    /// @notice Does the next bounded step of a round's settlement (consensus scores, the round's median,
    ///         acceptance, trainer rewards and slashes, validator shares and slashes, refunds and burns; see
    ///         LearningTasks' notes). Anyone may call it, again until it returns true (RoundFinalized emitted).
    /// @param taskId The task.
    /// @param round The round, in its Finalize phase.
    /// @return done Whether the round is now finalized.
    function finalize(uint256 taskId, uint32 round) external returns (bool done) {
        Task storage t = _tasks[taskId];
        Round storage r = _inPhase(t, taskId, round, Phase.Finalize);
        Progress memory p = r.progress;
        Judge memory j;
        j.taskId = taskId;
        j.round = round;
        uint256 spent;
        if (p.stage == STAGE_NONE) spent = _begin(t, r, p);
        if (p.stage == STAGE_CONSENSUS) spent = _consensusPass(t, r, p, j.carry, spent);
        if (p.stage == STAGE_MEDIAN) {
            uint256 nw = (uint256(r.s.commits) + SCORES_PER_WORD - 1) / SCORES_PER_WORD;
            uint256 cost = MEDIAN_GAS + MEDIAN_PER_WORD_GAS * nw;
            if (spent + cost <= STEP_BUDGET) {
                _median(r, p, j.carry, nw);
                spent += cost;
            }
        }
        if (p.stage == STAGE_JUDGE) spent = _trainerPass(t, r, p, _judge(t, r, p, j, false), spent);
        if (p.stage == STAGE_SETTLE) spent = _trainerPass(t, r, p, _judge(t, r, p, j, true), spent);
        if (p.stage == STAGE_CLOSE && spent + CLOSE_GAS + CLOSE_PER_VALIDATOR_GAS * t.validators.length <= STEP_BUDGET) {
            _close(t, r, p, j.carry, taskId, round);
            return true;
        }
        _flush(r, j.carry);
        r.progress = p;
    }

    /// @dev What a consensus pass computed in this call and later stages of the same call read from memory;
    ///      written to storage only when the call ends before the round does (a small round never pays for
    ///      those slots).
    struct Carry {
        /// @dev The histogram after this call's consensus words (empty: not touched in this call).
        uint256[] hist;
        /// @dev Per validator (list index), its distance added in this call (empty: none).
        uint256[] distance;
        /// @dev Consensus words [from, to) computed in this call.
        uint256[] consensus;
        uint256 from;
        uint256 to;
    }

    function _flush(Round storage r, Carry memory c) private {
        for (uint256 w = c.from; w < c.to; ++w) {
            r.consensus[w] = c.consensus[w - c.from];
        }
        if (c.hist.length != 0) _storeHistogram(r, c.hist);
        for (uint256 j; j < c.distance.length; ++j) {
            if (c.distance[j] != 0) r.distance[j] += c.distance[j];
        }
    }

    function _consensusWordAt(Round storage r, Carry memory c, uint256 w) private view returns (uint256) {
        return w >= c.from && w < c.to ? c.consensus[w - c.from] : r.consensus[w];
    }

    /// @dev Whether the round is scored: its revealing validators hold a strict majority of the active stake.
    function _begin(Task storage t, Round storage r, Progress memory p) private view returns (uint256 spent) {
        uint256 count = t.validators.length;
        uint256 activeStake;
        uint256 revealedStake;
        for (uint256 j; j < count; ++j) {
            address a = t.validators[j];
            uint256 stake = t.validatorOf[a].stake;
            activeStake += stake;
            if (_revealedStake(r, a) != 0) revealedStake += stake;
        }
        p.scored = r.s.commits != 0 && revealedStake * 2 > activeStake;
        p.stage = p.scored ? STAGE_CONSENSUS : STAGE_JUDGE;
        return BEGIN_GAS + PER_VALIDATOR_GAS * count;
    }

    /// @dev Per committed update of the next score words, the stake-weighted median of the revealed scores
    ///      (VOID_LANE for a split), stored packed; per revealing validator, its distance from the consensus
    ///      of the scored updates; the histogram of the high 7 bits of the scored consensus values.
    function _consensusPass(Task storage t, Round storage r, Progress memory p, Carry memory c, uint256 spent)
        private
        view
        returns (uint256)
    {
        Column memory col = _revealers(t, r);
        spent += PER_VALIDATOR_GAS * t.validators.length;
        uint256 k = col.who.length;
        uint256 wordCost = WORD_GAS + k * WORD_PER_VALIDATOR_GAS
            + SCORES_PER_WORD * (LANE_GAS + k * LANE_PER_VALIDATOR_GAS + k * k * LANE_PER_PAIR_GAS);
        uint256 n = r.s.commits;
        uint256 nw = (n + SCORES_PER_WORD - 1) / SCORES_PER_WORD;
        uint256 w = p.cursor;
        c.hist = w == 0 ? new uint256[](128) : _loadHistogram(r);
        c.consensus = new uint256[](nw - w);
        c.from = w;
        while (w < nw && spent + wordCost <= STEP_BUDGET) {
            c.consensus[w - c.from] = _consensusWord(r, col, c.hist, p, w, n);
            ++w;
            spent += wordCost;
        }
        c.to = w;
        c.distance = new uint256[](t.validators.length);
        for (uint256 q; q < k; ++q) {
            c.distance[col.place[q]] = col.distance[q];
        }
        // casting to 'uint32' is safe because the cursor is a score word index: at most MAX_TRAINERS_CAP / 16 words
        // forge-lint: disable-next-line(unsafe-typecast)
        p.cursor = uint32(w);
        if (w == nw) {
            p.stage = STAGE_MEDIAN;
            p.cursor = 0;
        }
        return spent;
    }

    /// @dev The revealing validators, in list order, with their stakes and places in the list.
    function _revealers(Task storage t, Round storage r) private view returns (Column memory col) {
        uint256 count = t.validators.length;
        address[] memory who = new address[](count);
        uint256[] memory stakes = new uint256[](count);
        uint256[] memory place = new uint256[](count);
        uint256 k;
        for (uint256 j; j < count; ++j) {
            address a = t.validators[j];
            if (_revealedStake(r, a) == 0) continue;
            uint256 stake = t.validatorOf[a].stake;
            who[k] = a;
            stakes[k] = stake;
            place[k] = j;
            col.total += stake;
            ++k;
        }
        assembly ("memory-safe") {
            mstore(who, k)
            mstore(stakes, k)
            mstore(place, k)
        }
        col.who = who;
        col.stakes = stakes;
        col.place = place;
        col.row = new uint256[](k);
        col.keys = new uint256[](k);
        col.distance = new uint256[](k);
    }

    /// @dev The packed consensus of score word `w`'s updates; adds the scored ones to the histogram, the count
    ///      and the validators' distances.
    function _consensusWord(
        Round storage r,
        Column memory col,
        uint256[] memory hist,
        Progress memory p,
        uint256 w,
        uint256 n
    ) private view returns (uint256 out) {
        for (uint256 q; q < col.who.length; ++q) {
            col.row[q] = r.scores[col.who[q]][w];
        }
        uint256 lanes = n - w * SCORES_PER_WORD;
        if (lanes > SCORES_PER_WORD) lanes = SCORES_PER_WORD;
        for (uint256 lane; lane < lanes; ++lane) {
            uint256 shift = 16 * lane;
            uint256 c = _laneConsensus(col, shift);
            if (c == SPLIT) {
                out |= VOID_LANE << shift;
                continue;
            }
            out |= c << shift;
            hist[c >> 7] += 1;
            p.nScored += 1;
            _addDistances(col, shift, c);
        }
    }

    /// @dev One score word of every revealing validator, with their stakes and scratch space.
    struct Column {
        address[] who;
        /// @dev Each one's index in the task's validator list.
        uint256[] place;
        uint256[] row;
        uint256[] stakes;
        /// @dev Scratch space for one lane's sorted (score, stake) keys.
        uint256[] keys;
        /// @dev Per revealing validator, its summed distance from the consensus in this call.
        uint256[] distance;
        uint256 total;
    }

    function _addDistances(Column memory col, uint256 shift, uint256 c) private pure {
        uint256[] memory row = col.row;
        for (uint256 q; q < row.length; ++q) {
            uint256 v = (row[q] >> shift) & 0xffff;
            col.distance[q] += v > c ? v - c : c - v;
        }
    }

    /// @dev A lane's consensus: the least score c such that the stake scoring at most c is more than half of
    ///      the revealed stake; SPLIT when the stake scoring less than c is exactly half (then no score has a
    ///      strict majority on both sides).
    function _laneConsensus(Column memory col, uint256 shift) private pure returns (uint256) {
        uint256[] memory keys = col.keys;
        uint256 k = keys.length;
        uint256 total = col.total;
        // Score in the high bits, stake (< 2^96) in the low: sorting the keys sorts by score.
        for (uint256 q; q < k; ++q) {
            keys[q] = (((col.row[q] >> shift) & 0xffff) << 128) | col.stakes[q];
        }
        _insertionSort(keys);
        uint256 cum;
        uint256 below;
        uint256 last = SPLIT;
        for (uint256 q; q < k; ++q) {
            uint256 v = keys[q] >> 128;
            if (v != last) {
                below = cum;
                last = v;
            }
            cum += keys[q] & type(uint128).max;
            if (cum * 2 > total) return below * 2 == total ? SPLIT : v;
        }
        // Unreachable: the whole revealed stake is more than half of itself.
        return SPLIT;
    }

    /// @dev The lower median (rank (m - 1) / 2) of the m scored consensus values: its high 7 bits from the
    ///      histogram, its low 7 bits from one read pass over the consensus words.
    function _median(Round storage r, Progress memory p, Carry memory c, uint256 nw) private view {
        uint256 m = p.nScored;
        p.stage = STAGE_JUDGE;
        uint256[] memory hist = c.hist.length != 0 ? c.hist : _loadHistogram(r);
        // Not needed after the median: nothing to write back.
        c.hist = new uint256[](0);
        if (m == 0) return;
        uint256 rank = (m - 1) / 2;
        uint256 high;
        while (rank >= hist[high]) {
            rank -= hist[high];
            ++high;
        }
        uint256[] memory counts = new uint256[](128);
        uint256 n = r.s.commits;
        for (uint256 w; w < nw; ++w) {
            uint256 word = _consensusWordAt(r, c, w);
            uint256 lanes = n - w * SCORES_PER_WORD;
            if (lanes > SCORES_PER_WORD) lanes = SCORES_PER_WORD;
            for (uint256 lane; lane < lanes; ++lane) {
                // A void lane (VOID_LANE >> 7 = 511) never matches: scores are at most SCORE_SCALE.
                uint256 v = (word >> (16 * lane)) & 0xffff;
                if (v >> 7 == high) counts[v & 127] += 1;
            }
        }
        uint256 low;
        while (rank >= counts[low]) {
            rank -= counts[low];
            ++low;
        }
        // casting to 'uint16' is safe because a consensus score is at most SCORE_SCALE (10,000 < 2^14)
        // forge-lint: disable-next-line(unsafe-typecast)
        p.roundMedian = uint16((high << 7) | low);
    }

    function _loadHistogram(Round storage r) private view returns (uint256[] memory hist) {
        hist = new uint256[](128);
        for (uint256 h; h < 8; ++h) {
            uint256 word = r.histogram[h];
            if (word == 0) continue;
            for (uint256 b; b < 16; ++b) {
                hist[h * 16 + b] = (word >> (16 * b)) & 0xffff;
            }
        }
    }

    function _storeHistogram(Round storage r, uint256[] memory hist) private {
        for (uint256 h; h < 8; ++h) {
            uint256 word;
            for (uint256 b; b < 16; ++b) {
                word |= hist[h * 16 + b] << (16 * b);
            }
            if (word != r.histogram[h]) r.histogram[h] = word;
        }
    }

    /// @dev The next page of trainers, judged (`settle` false: acceptance and the pots, round-level sums only,
    ///      so that an expiry before the settle pass leaves members untouched) or settled (their rewards,
    ///      slashes and events, and the contributors' hash chain over the accepted updates in trainer order).
    function _trainerPass(Task storage t, Round storage r, Progress memory p, Judge memory j, uint256 spent)
        private
        returns (uint256)
    {
        bool settle = j.settle;
        uint256 count = t.trainers.length;
        uint256 cost = settle ? SETTLE_GAS : JUDGE_GAS;
        uint256 i = p.cursor;
        while (i < count && spent + cost <= STEP_BUDGET) {
            _trainerStep(t, r, p, j, t.trainers[i]);
            ++i;
            spent += cost;
        }
        if (settle) r.contributorsHash = j.chain;
        // casting to 'uint32' is safe because the cursor is a trainer index, below MAX_TRAINERS_CAP
        // forge-lint: disable-next-line(unsafe-typecast)
        p.cursor = uint32(i);
        if (i == count) {
            p.stage = settle ? STAGE_CLOSE : STAGE_SETTLE;
            p.cursor = 0;
            p.seen = 0;
        }
        return spent;
    }

    function _trainerStep(Task storage t, Round storage r, Progress memory p, Judge memory j, address a) private {
        (uint8 state, uint256 c) = _outcome(r, p, j, t.trainerOf[a].commitRound == j.round);
        if (j.settle) _settleTrainer(t, p, j, a, state, c);
        else _judgeTrainer(t, p, j, a, state, c);
    }

    function _judgeTrainer(Task storage t, Progress memory p, Judge memory j, address a, uint8 state, uint256 c)
        private
        view
    {
        if (state == T_ACCEPTED) {
            p.accepted += 1;
            // casting to 'uint64' is safe because c - SCORE_KEPT is at most SCORE_SCALE
            // forge-lint: disable-next-line(unsafe-typecast)
            p.sumAccepted += uint64(c - SCORE_KEPT);
        } else if (state == T_REJECTED || state == T_NO_SHOW) {
            // casting to 'uint128' is safe because a slash is a fraction of a uint96 stake
            // forge-lint: disable-next-line(unsafe-typecast)
            p.trainerSlashes += uint128((uint256(t.trainerOf[a].stake) * j.slashBps) / BPS);
        }
    }

    function _settleTrainer(Task storage t, Progress memory p, Judge memory j, address a, uint8 state, uint256 c)
        private
    {
        Member storage m = t.trainerOf[a];
        uint256 reward;
        uint256 slashed;
        if (state == T_ACCEPTED) {
            if (p.sumAccepted != 0) reward = (j.pot * (c - SCORE_KEPT)) / p.sumAccepted;
            // casting to 'uint120' is safe because a reward is at most the trainers' pot: a uint96 pool plus at most MAX_TRAINERS_CAP uint96 slashes, below 2^110
            // forge-lint: disable-next-line(unsafe-typecast)
            if (reward != 0) m.earned += uint120(reward);
            // casting to 'uint128' is safe because a reward is below 2^110 (see above)
            // forge-lint: disable-next-line(unsafe-typecast)
            p.paid += uint128(reward);
            j.chain = keccak256(abi.encode(j.chain, a, t.digestOf[a]));
        } else if (state == T_REJECTED || state == T_NO_SHOW) {
            uint256 stake = m.stake;
            slashed = (stake * j.slashBps) / BPS;
            // casting to 'uint96' is safe because the result is at most the uint96 stake it is taken from
            // forge-lint: disable-next-line(unsafe-typecast)
            if (slashed != 0) m.stake = uint96(stake - slashed);
        }
        emit TrainerSettled(j.taskId, j.round, a, state != T_NO_SHOW, c, state == T_ACCEPTED, reward, slashed);
    }

    /// @dev What a trainer pass needs of the task and round.
    function _judge(Task storage t, Round storage r, Progress memory p, Judge memory j, bool settle)
        private
        view
        returns (Judge memory)
    {
        j.settle = settle;
        j.minScore = t.params.minScore;
        j.threshold = uint256(t.params.relativeBps) * p.roundMedian;
        j.slashBps = t.params.slashBps;
        j.chain = p.cursor == 0 ? bytes32(0) : r.contributorsHash;
        if (settle) {
            uint256 pool = r.res.pool;
            j.pot = pool - (pool * VALIDATOR_SHARE_BPS) / BPS + p.trainerSlashes;
        }
        return j;
    }

    struct Judge {
        uint256 taskId;
        uint32 round;
        bool settle;
        uint256 minScore;
        uint256 threshold;
        uint256 slashBps;
        uint256 pot;
        bytes32 chain;
        Carry carry;
    }

    /// @dev A trainer's outcome and its consensus score (0 unless scored and not void). Committed updates are
    ///      met in trainer order, so the `seen`-th one is update `seen`.
    function _outcome(Round storage r, Progress memory p, Judge memory j, bool committed)
        private
        view
        returns (uint8 state, uint256 c)
    {
        if (!committed) return (T_NO_SHOW, 0);
        uint256 idx = p.seen;
        // casting to 'uint32' is safe because the count of committed updates is below MAX_TRAINERS_CAP
        // forge-lint: disable-next-line(unsafe-typecast)
        p.seen = uint32(idx + 1);
        if (!p.scored) return (T_VOID, 0);
        c = (_consensusWordAt(r, j.carry, idx / SCORES_PER_WORD) >> (16 * (idx % SCORES_PER_WORD))) & 0xffff;
        if (c == VOID_LANE) return (T_VOID, 0);
        if (c == 0) return (T_REJECTED, 0);
        state = c >= SCORE_KEPT && c >= j.minScore && c * BPS >= j.threshold ? T_ACCEPTED : T_EXCLUDED;
    }

    /// @dev The validators' outcomes in a round: at most MAX_VALIDATORS_CAP, in list order.
    struct Validators {
        uint8[] state;
        uint256[] weight;
        uint256 sumWeight;
        uint256 slashes;
        uint256 paid;
    }

    /// @dev Validators' weights, slashes and shares, the pots' refunds and burns, and the round's outcome.
    function _close(Task storage t, Round storage r, Progress memory p, Carry memory c, uint256 taskId, uint32 round)
        private
    {
        uint256 pool = r.res.pool;
        uint256 validatorPool = (pool * VALIDATOR_SHARE_BPS) / BPS;
        Validators memory v = _weigh(t, r, p, c);
        _payValidators(t, v, validatorPool + v.slashes, taskId, round);
        (uint256 refunded, uint256 burnt) = _share(pool - validatorPool, p.trainerSlashes, p.sumAccepted, p.paid);
        (uint256 refundedV, uint256 burntV) = _share(validatorPool, v.slashes, v.sumWeight, v.paid);
        refunded += refundedV;
        burnt += burntV;
        r.s.finalized = true;
        RoundResult storage res = r.res;
        res.finalizedAt = uint40(block.number);
        res.accepted = p.accepted;
        res.roundMedian = p.roundMedian;
        if (refunded != 0) t.state.poolLeft += SafeCast.toUint128(refunded);
        if (burnt != 0) burned += burnt;
        _finalized(r, p, taskId, round, refunded, burnt);
    }

    function _finalized(Round storage r, Progress memory p, uint256 taskId, uint32 round, uint256 refunded, uint256 burnt)
        private
    {
        emit RoundFinalized(
            taskId, round, r.s.commits, p.accepted, p.roundMedian, r.contributorsHash, refunded, burnt
        );
    }

    /// @dev Agreement weights of revealing validators (none in a round that is not scored), and silent
    ///      validators' slashes; a round without commits excuses them all.
    function _weigh(Task storage t, Round storage r, Progress memory p, Carry memory c)
        private
        view
        returns (Validators memory v)
    {
        uint256 count = t.validators.length;
        v.state = new uint8[](count);
        v.weight = new uint256[](count);
        uint256 slashBps = t.params.slashBps;
        bool excused = r.s.commits == 0;
        for (uint256 j; j < count; ++j) {
            address a = t.validators[j];
            if (excused) {
                v.state[j] = V_EXCUSED;
            } else if (_revealedStake(r, a) != 0) {
                v.state[j] = V_REVEALED;
                if (!p.scored) continue;
                // A consensus pass run whole in this call left nothing in storage.
                uint256 distance = c.distance.length == 0 ? r.distance[j] : c.distance[j];
                if (c.distance.length != 0 && c.from != 0) distance += r.distance[j];
                uint256 mean = p.nScored == 0 ? 0 : distance / p.nScored;
                uint256 penalty = mean * AGREEMENT_GAIN;
                uint256 w = penalty >= SCORE_SCALE ? 0 : SCORE_SCALE - penalty;
                v.weight[j] = w;
                v.sumWeight += w;
            } else {
                v.state[j] = V_SILENT;
                v.slashes += (uint256(t.validatorOf[a].stake) * slashBps) / BPS;
            }
        }
    }

    /// @dev Writes validators' slashes and shares of `pot`.
    function _payValidators(Task storage t, Validators memory v, uint256 pot, uint256 taskId, uint32 round) private {
        uint256 slashBps = t.params.slashBps;
        for (uint256 j; j < v.state.length; ++j) {
            address a = t.validators[j];
            Member storage m = t.validatorOf[a];
            uint256 reward;
            uint256 slashed;
            if (v.state[j] == V_REVEALED) {
                if (v.sumWeight != 0) reward = (pot * v.weight[j]) / v.sumWeight;
                // casting to 'uint120' is safe because a reward is at most the validators' pot: a uint96 pool plus at most MAX_VALIDATORS_CAP uint96 slashes
                // forge-lint: disable-next-line(unsafe-typecast)
                if (reward != 0) m.earned += uint120(reward);
                v.paid += reward;
            } else if (v.state[j] == V_SILENT) {
                uint256 stake = m.stake;
                slashed = (stake * slashBps) / BPS;
                // casting to 'uint96' is safe because the result is at most the uint96 stake it is taken from
                // forge-lint: disable-next-line(unsafe-typecast)
                if (slashed != 0) m.stake = uint96(stake - slashed);
            }
            emit ValidatorSettled(taskId, round, a, v.state[j] == V_REVEALED, v.weight[j], reward, slashed);
        }
    }

    /// @dev Where a pot's unpaid part goes: with nobody to pay (`sum` zero), the reward back to the task's pool
    ///      and the slashes burned; else the rounding dust burned. Never to the creator's benefit.
    function _share(uint256 pool, uint256 slashes, uint256 sum, uint256 paid)
        private
        pure
        returns (uint256 refunded, uint256 burnt)
    {
        if (sum == 0) return (pool, slashes);
        return (0, pool + slashes - paid);
    }

    /// @dev Every lane of the page's words up to update `n` is at most SCORE_SCALE; the lanes past `n` are zero.
    function _checkScores(uint256[] calldata words, uint256 from, uint256 n) private pure {
        uint256 first = from * SCORES_PER_WORD;
        uint256 end = first + words.length * SCORES_PER_WORD;
        if (end > n) end = n;
        for (uint256 i = first; i < end; ++i) {
            uint256 score = (words[i / SCORES_PER_WORD - from] >> (16 * (i % SCORES_PER_WORD))) & 0xffff;
            if (score > SCORE_SCALE) revert ScoreOutOfRange(i, score);
        }
        uint256 used = n % SCORES_PER_WORD;
        if (used != 0 && first + words.length * SCORES_PER_WORD > n) {
            uint256 rest = words[words.length - 1] >> (16 * used);
            if (rest != 0) revert ScoreOutOfRange(n, rest);
        }
    }

    /// @dev Ascending, in place: for a lane's keys (at most MAX_VALIDATORS_CAP values, usually a few).
    function _insertionSort(uint256[] memory a) private pure {
        uint256 len = a.length;
        // Indices stay within [0, len): j - 1 only when j > 0.
        unchecked {
            for (uint256 i = 1; i < len; ++i) {
                uint256 key = a[i];
                uint256 j = i;
                while (j > 0 && a[j - 1] > key) {
                    a[j] = a[j - 1];
                    --j;
                }
                a[j] = key;
            }
        }
    }
}

/// @title LearningTasks
/// @notice Federated-learning tasks coordinated on-chain. A task names a model version of the ModelRegistry,
///         funds a reward pool per round and fixes stakes, windows, the slash rate and the acceptance rule.
///         Trainers and validators join with a stake. Each round: trainers commit the digest of their
///         canonical update (an envelope naming the task, round and trainer; the bytes, addressed by the CID
///         v1 raw sha256 of that digest, are published only after the commit window closes); validators
///         commit, then reveal, one score per committed update; `finalize` takes per update the stake-weighted
///         median of the revealed scores that a strict majority of the revealed stake stands behind (an even
///         split voids the update), pays accepted updates in proportion to their score, leaves out unpaid but
///         unpunished the updates scored under the acceptance bar, slashes only updates that a strict
///         majority of the revealed stake scores 0 (evidence of malice) and no-shows, and pays validators by
///         their agreement with the consensus. Validators holding `quorumBps` of the revealed stake then
///         attest the aggregate of the accepted updates, which this contract appends to the registry as the
///         model's next version, with its lineage.
///         Threat model: fewer than half of the validators' stake may collude (a majority of the revealed stake
///         decides a score; more than `quorumBps` of it an aggregate); trainers may copy, replay, poison or
///         stay away; the creator may stall. No honest member is slashed, and every stake can leave: in the
///         exit window after each round, or once a round expires.
/// @dev Round phases, in blocks after `startRound` at block S (see `phaseOf`):
///        Commit       S < b <= commitDeadline (= S + commitWindow)          trainers `commitUpdate`
///        ScoreCommit  commitDeadline < b <= scoreDeadline (+ scoreWindow)   updates published, `commitScores`
///        Reveal       scoreDeadline < b <= revealDeadline (+ revealWindow)  `revealScores`
///        Finalize     b > revealDeadline, until the `finalize` steps complete
///        Aggregate    after `finalize`, while the round is the task's latest, it accepted at least one update,
///                     no aggregate reached quorum and b <= finalizedAt + aggregateWindow; the round's revealing
///                     validators `proposeAggregate` / `attestAggregate`
///        Done         otherwise
///        Expired      not finalized within FINALIZE_TIMEOUT blocks after revealDeadline, and its settle pass
///                     not begun: settles nothing, its members may leave, and the next join, exit, close or
///                     start returns its pool to the task
///      A round starts only with MIN_VALIDATORS (3) active validators, and not within `exitWindow` blocks of the
///      previous round's finalization (or expiry), so every member always has a window to leave.
///      Settlement arithmetic (mirrored exactly by src/learning/finalize.ts):
///      - scores are integers in [0, SCORE_SCALE]; revealed packed 16 per uint256 word, score i in bits
///        [16 * (i % 16), 16 * (i % 16) + 16) of word i / 16, in the order of the round's committed updates,
///        which is the order of the task's active trainers (`trainersOf`);
///      - the round is scored only if the validators that revealed hold more than half of the active
///        validators' stake; otherwise every committed update is void (neither paid nor slashed);
///      - an update's consensus score is the stake-weighted median of the revealed scores: the least score c
///        such that the revealed stake scoring at most c is more than half of the revealed stake. If the
///        stake scoring less than c is exactly half (an even split), no score has a strict majority on both
///        sides: the update is void (neither paid nor slashed, and left out of the round's median and of the
///        validators' distances);
///      - the round's median is the lower median (element (m - 1) / 2 of the m sorted values) of the consensus
///        scores of the updates that are not void. An update with c = 0 is rejected: more than half of the
///        revealed stake scored it 0, the only evidence that slashes. An update is accepted iff
///        c >= SCORE_KEPT (2), c >= minScore and c * 10_000 >= relativeBps * roundMedian; any other (c >= 1
///        under that bar) is excluded: left out of the aggregate and the contributors' hash, unpaid and not
///        slashed, as an honest update that adds too little may be;
///      - VALIDATOR_SHARE_BPS (20 %) of the round's pool, rounded down, is the validators' pool, the rest the
///        trainers'. Rejected and no-show trainers lose floor(stake * slashBps / 10_000), added to the
///        trainers' pot, which accepted updates share as floor(pot * (c - 2) / sum of accepted (c - 2)): a score
///        of 2 (SCORE_KEPT) is kept but unpaid, as an update that adds nothing measurable. Validators that
///        did not reveal lose the same fraction of their stake, added to the validators' pot, shared as
///        floor(pot * w / sum w) with w = max(0, SCORE_SCALE - AGREEMENT_GAIN * floor(sum_i |s_i - c_i| / m))
///        over the m updates that are not void (w = SCORE_SCALE when m = 0) for each revealing validator
///        (w = 0 in a round that is not scored);
///      - a pot nobody is paid from (its sum is zero) returns its pool part to the task's pool (`poolLeft`,
///        which `closeTask` refunds to the creator) and burns its slashes; otherwise its rounding dust is
///        burned. Burned MIND stays in this contract for good (`burned`): slashes never reach the creator;
///      - a round without commits excuses the validators (there was nothing to score).
///      Payments are pulled: rewards accrue in the member record (`claim` moves them to the withdrawable
///      balance), stakes return with `exitTask`, and `withdraw` pays the balance out.
///      The member lists hold active members only (caps count them); an exit swaps the last member into the
///      leaver's place, so the trainer order changes only between rounds. Amounts are bounded: a stake up to
///      2^96 - 1, a task's funding up to 2^96 - 1, a member's unclaimed rewards up to 2^120 - 1, far above any
///      real token supply.
///      `revealScores` and `finalize` run LearningSettlement's code on this contract's storage (DELEGATECALL),
///      which keeps this contract under the 24 KiB code limit; both share LearningTasksStorage's layout.
///      Limits: MAX_TRAINERS_CAP (10,000) trainers and MAX_VALIDATORS_CAP (32) validators, at which no
///      transaction anybody must send needs more than 10,000,000 gas: a reveal goes in pages of
///      REVEAL_PAGE_WORDS words, and `finalize` is a bounded step that anyone repeats until the round settles
///      (consensus, median, judging and settling passes; a small round settles in one call). Until the settle
///      pass begins only round-level storage is written, and a round left there expires as any other; once
///      members' records are being written it no longer expires (its exit waits for anyone to finish it).
///      The contributors' hash is a hash chain so that it can be built page by page.
contract LearningTasks is LearningTasksStorage, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    uint8 private constant VOTED = 1;
    uint8 private constant PROPOSED = 2;
    bytes32 private constant DIGEST_PLACEHOLDER = bytes32(uint256(1));

    /// @notice The ERC-20 of stakes and rewards.
    IERC20 public immutable token;
    /// @notice The registry whose models tasks train.
    ModelRegistry public immutable registry;
    /// @notice The settlement code that `finalize` runs on this contract's storage (deployed by the constructor).
    address public immutable settlement;

    /// @notice Deploys the task contract for `token_` stakes and rewards, `registry_` models and `dataMarket_`
    ///         datasets.
    /// @param token_ The ERC-20 of stakes and rewards (MIND).
    /// @param registry_ The model registry.
    /// @param dataMarket_ The data market whose datasets a task may require its trainers to have access to
    ///        (kept by the settlement code: `LearningSettlement(settlement).market()`).
    constructor(IERC20 token_, ModelRegistry registry_, DataMarket dataMarket_) {
        if (
            address(token_) == address(0) || address(registry_) == address(0) || address(dataMarket_) == address(0)
        ) revert InvalidParams(0);
        token = token_;
        registry = registry_;
        settlement = address(new LearningSettlement(dataMarket_));
    }

    // -----------------------------------------------------------------------------------------------------
    // Tasks and members
    // -----------------------------------------------------------------------------------------------------

    /// @notice Creates a task and pulls its whole reward, `rewardPerRound * rounds`, from the caller (approve
    ///         it first). The caller must own the model or be approved for it, and the model's owner must
    ///         have approved this contract (ERC-721 `approve` or `setApprovalForAll`) so that aggregates can be
    ///         appended as versions.
    /// @param p The task's parameters; see `TaskParams`.
    /// @return taskId The new task's id.
    function createTask(TaskParams calldata p) external nonReentrant returns (uint256 taskId) {
        _checkParams(p);
        uint256 funding = uint256(p.rewardPerRound) * p.rounds;
        if (funding > type(uint96).max) revert AmountTooLarge(funding);
        _checkModel(p.modelId, p.baseVersion);

        taskId = ++taskCount;
        Task storage t = _tasks[taskId];
        t.params = p;
        t.state = TaskState({
            creator: msg.sender,
            roundCount: 0,
            currentVersion: p.baseVersion,
            closed: false,
            // casting to 'uint128' is safe because funding was checked against type(uint96).max above
            // forge-lint: disable-next-line(unsafe-typecast)
            poolLeft: uint128(funding),
            activeTrainers: 0,
            activeValidators: 0,
            datasets: 0
        });
        emit TaskCreated(taskId, p.modelId, msg.sender, p);
        if (funding != 0) token.safeTransferFrom(msg.sender, address(this), funding);
    }

    /// @notice Joins a task as a trainer or a validator with `amount` of stake (approve it first), or adds
    ///         `amount` to the caller's stake. Only between rounds.
    /// @param taskId The task.
    /// @param role Trainer or validator; an account cannot be both in one task.
    /// @param amount The stake to add; the stake after it must reach the role's minimum.
    function join(uint256 taskId, Role role, uint256 amount) external nonReentrant {
        Task storage t = _existingTask(taskId);
        if (t.state.closed) revert TaskAlreadyClosed(taskId);
        _closeRound(t, taskId);
        bool trainer = role == Role.Trainer;
        Member storage m = trainer ? t.trainerOf[msg.sender] : t.validatorOf[msg.sender];
        Member storage other = trainer ? t.validatorOf[msg.sender] : t.trainerOf[msg.sender];
        if (other.status == ACTIVE) revert RoleConflict(taskId, msg.sender);
        if (trainer && t.state.datasets != 0) _requireAccess(taskId);
        uint256 stake = uint256(m.stake) + amount;
        uint256 minStake = trainer ? t.params.minTrainerStake : t.params.minValidatorStake;
        if (amount == 0 || stake < minStake) revert StakeTooLow(stake, minStake);
        if (stake > type(uint96).max) revert AmountTooLarge(stake);
        uint8 status = m.status;
        if (status != ACTIVE) {
            // The caps count active members only: leavers free their slots.
            address[] storage list = trainer ? t.trainers : t.validators;
            uint256 cap = trainer ? t.params.maxTrainers : t.params.maxValidators;
            if (list.length >= cap) revert TooManyMembers(taskId, cap);
            list.push(msg.sender);
            (trainer ? t.trainerIndex : t.validatorIndex)[msg.sender] = list.length;
            if (trainer) t.state.activeTrainers += 1;
            else t.state.activeValidators += 1;
        }
        if (status == NEVER && trainer) {
            // Paid now so that each commit overwrites non-zero slots.
            t.digestOf[msg.sender] = DIGEST_PLACEHOLDER;
            t.samplesOf[msg.sender] = 1;
        }
        // casting to 'uint96' is safe because the stake was checked against type(uint96).max above
        // forge-lint: disable-next-line(unsafe-typecast)
        m.stake = uint96(stake);
        m.status = ACTIVE;
        emit Joined(taskId, msg.sender, role, amount, stake);
        token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @notice Names the DataMarket datasets the task trains on: every trainer must have access to each (own its
    ///         data NFT, or hold paid or granted access that has not expired) to join and again at each
    ///         commit. Only the creator, once, before the first round (a trainer that joined before lacks
    ///         nothing it needs: its commits are checked). The code is LearningSettlement's, run on this
    ///         contract's storage.
    /// @param taskId The task.
    /// @param datasetIds 1 to MAX_DATASETS distinct dataset ids.
    function setDatasets(uint256 taskId, uint256[] calldata datasetIds) external {
        (taskId, datasetIds);
        _delegate();
    }

    /// @notice Gives the caller, a trainer without access to one of the task's datasets (expired, revoked, or
    ///         never held), its stake back at once, even during a round, as long as it did not commit in the
    ///         round and its settlement has not begun judging trainers. Its commits are refused without access,
    ///         so without this its honest absence would be slashed as a no-show: with no stake left, the round
    ///         settles it as a no-show that loses nothing, and it leaves with `exitTask` (its rewards) after the
    ///         round. The code is LearningSettlement's, run on this contract's storage.
    /// @param taskId The task.
    /// @param datasetId A dataset the task names and the caller has no access to now.
    function releaseStakeWithoutAccess(uint256 taskId, uint256 datasetId) external {
        (taskId, datasetId);
        _delegate();
    }

    /// @notice Leaves a task: the stake and unclaimed rewards become withdrawable. Between rounds (the exit
    ///         window after each finalization guarantees a chance), or once the open round expired (nobody
    ///         finalized it within FINALIZE_TIMEOUT blocks of its reveal deadline); not while the caller's
    ///         aggregate proposal awaits its quorum.
    /// @param taskId The task.
    /// @param role The role the caller holds.
    function exitTask(uint256 taskId, Role role) external nonReentrant {
        Task storage t = _existingTask(taskId);
        _closeRound(t, taskId);
        bool trainer = role == Role.Trainer;
        Member storage m = _activeMember(t, taskId, trainer);
        if (!trainer) {
            uint32 latest = t.state.roundCount;
            Round storage r = t.rounds[latest];
            if (r.votes[msg.sender] == PROPOSED && _phase(t, latest, r) == Phase.Aggregate) {
                revert ProposalPending(taskId, latest);
            }
        }
        uint256 stake = m.stake;
        uint256 earned = m.earned;
        m.stake = 0;
        m.earned = 0;
        m.status = LEFT;
        if (trainer) t.state.activeTrainers -= 1;
        else t.state.activeValidators -= 1;
        _removeMember(trainer ? t.trainers : t.validators, trainer ? t.trainerIndex : t.validatorIndex);
        _balances[msg.sender] += stake + earned;
        emit Left(taskId, msg.sender, role, stake, earned);
    }

    /// @notice Moves the caller's rewards in a task to its withdrawable balance.
    /// @param taskId The task.
    /// @param role The role the rewards were earned in.
    function claim(uint256 taskId, Role role) external nonReentrant {
        Task storage t = _existingTask(taskId);
        Member storage m = role == Role.Trainer ? t.trainerOf[msg.sender] : t.validatorOf[msg.sender];
        uint256 amount = m.earned;
        if (amount == 0) revert NothingToClaim(msg.sender);
        m.earned = 0;
        _balances[msg.sender] += amount;
        emit Claimed(taskId, msg.sender, role, amount);
    }

    /// @notice Pays out the caller's withdrawable balance: claimed rewards, returned stakes, refunds.
    function withdraw() external nonReentrant {
        uint256 amount = _balances[msg.sender];
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        _balances[msg.sender] = 0;
        emit Withdrawn(msg.sender, amount);
        token.safeTransfer(msg.sender, amount);
    }

    /// @notice Ends a task between rounds: no more rounds or joins; the reward of rounds never started goes
    ///         back to the creator. Members then leave; the last round may still be aggregated.
    /// @param taskId The task.
    function closeTask(uint256 taskId) external nonReentrant {
        Task storage t = _existingTask(taskId);
        TaskState storage st = t.state;
        if (msg.sender != st.creator) revert NotTaskCreator(taskId, msg.sender);
        if (st.closed) revert TaskAlreadyClosed(taskId);
        _closeRound(t, taskId);
        uint256 refund = st.poolLeft;
        st.poolLeft = 0;
        st.closed = true;
        _balances[msg.sender] += refund;
        emit TaskClosed(taskId, refund);
    }

    // -----------------------------------------------------------------------------------------------------
    // Rounds
    // -----------------------------------------------------------------------------------------------------

    /// @notice Starts the next round from the task's current model version, with `rewardPerRound` as its
    ///         pool. Only the creator, once the previous round is finalized (or expired) and its exit window of
    ///         `exitWindow` blocks has passed, with at least one trainer and MIN_VALIDATORS validators.
    ///         Starting a round ends the previous round's aggregation.
    /// @param taskId The task.
    /// @return round The new round's number.
    function startRound(uint256 taskId) external nonReentrant returns (uint32 round) {
        Task storage t = _existingTask(taskId);
        if (msg.sender != t.state.creator) revert NotTaskCreator(taskId, msg.sender);
        if (t.state.closed) revert TaskAlreadyClosed(taskId);
        _closeRound(t, taskId);
        TaskState memory st = t.state;
        TaskParams storage p = t.params;
        if (st.roundCount >= p.rounds) revert NoRoundsLeft(taskId);
        if (st.roundCount != 0) {
            uint256 opensAfter = uint256(t.rounds[st.roundCount].res.finalizedAt) + p.exitWindow;
            if (block.number <= opensAfter) revert ExitWindowOpen(taskId, st.roundCount, opensAfter);
        }
        if (st.activeTrainers == 0) revert NotEnoughTrainers(taskId, 0, 1);
        if (st.activeValidators < MIN_VALIDATORS) {
            revert NotEnoughValidators(taskId, st.activeValidators, MIN_VALIDATORS);
        }

        round = st.roundCount + 1;
        uint96 pool = p.rewardPerRound;
        t.state.roundCount = round;
        t.state.poolLeft = st.poolLeft - pool;
        uint256 commitDeadline = block.number + p.commitWindow;
        uint256 scoreDeadline = commitDeadline + p.scoreWindow;
        uint256 revealDeadline = scoreDeadline + p.revealWindow;
        Round storage r = t.rounds[round];
        r.s = RoundState({
            // casting to 'uint40' is safe because a block number plus windows of at most MAX_WINDOW blocks: 2^40 blocks last 34,000 years at one a second
            // forge-lint: disable-next-line(unsafe-typecast)
            commitDeadline: uint40(commitDeadline),
            // casting to 'uint40' is safe because as commitDeadline
            // forge-lint: disable-next-line(unsafe-typecast)
            scoreDeadline: uint40(scoreDeadline),
            // casting to 'uint40' is safe because as commitDeadline
            // forge-lint: disable-next-line(unsafe-typecast)
            revealDeadline: uint40(revealDeadline),
            commits: 0,
            scoreCommits: 0,
            reveals: 0,
            finalized: false,
            baseVersion: st.currentVersion,
            datasets: st.datasets
        });
        r.res.pool = pool;
        // Paid now so that finalization overwrites a non-zero slot (zero again if nothing is accepted).
        r.contributorsHash = CONTRIBUTORS_PENDING;
        r.revealedStakePlusOne = 1;
        emit RoundStarted(taskId, round, st.currentVersion, pool, commitDeadline, scoreDeadline, revealDeadline);
    }

    /// @notice Commits the caller's update for the round: the sha256 digest of its canonical bytes (publish
    ///         them, as CID v1 raw of this digest, only after the commit window closes) and its sample count.
    ///         The digest is the caller's alone: another trainer committing the same digest does not stop
    ///         it (the canonical update names its trainer, task and round, so a copy names its victim and
    ///         validators score it 0).
    /// @param taskId The task.
    /// @param round The round, in its commit window.
    /// @param digest The update's sha256 digest.
    /// @param samples The number of training samples the update used (its FedAvg weight), not zero.
    function commitUpdate(uint256 taskId, uint32 round, bytes32 digest, uint32 samples) external nonReentrant {
        Task storage t = _tasks[taskId];
        Round storage r = t.rounds[round];
        RoundState memory s = r.s;
        if (s.commitDeadline == 0) revert UnknownRound(taskId, round);
        if (s.finalized || block.number > s.commitDeadline) {
            revert WrongPhase(taskId, round, Phase.Commit, _phase(t, round, r));
        }
        Member storage m = t.trainerOf[msg.sender];
        Member memory mm = m;
        if (mm.status != ACTIVE) revert NotTrainer(taskId, msg.sender);
        if (mm.commitRound == round) revert AlreadyCommitted(taskId, round, msg.sender);
        uint256 minStake = t.params.minTrainerStake;
        if (mm.stake < minStake) revert StakeTooLow(mm.stake, minStake);
        if (digest == bytes32(0)) revert EmptyDigest();
        if (samples == 0) revert InvalidSamples();
        // Consent can be revoked or run out during a task: an update is accepted only from a trainer that
        // may use the data now.
        if (s.datasets != 0) _requireAccess(taskId);

        m.commitRound = round;
        t.digestOf[msg.sender] = digest;
        t.samplesOf[msg.sender] = samples;
        r.s.commits = s.commits + 1;
        emit UpdateCommitted(taskId, round, msg.sender, digest, samples);
    }

    /// @notice Commits the caller's scores for the round's updates, in the score-commit window.
    /// @param taskId The task.
    /// @param round The round.
    /// @param commitment `scoreCommitment(taskId, round, validator, words, salt)`.
    function commitScores(uint256 taskId, uint32 round, bytes32 commitment) external nonReentrant {
        Task storage t = _tasks[taskId];
        Round storage r = _inPhase(t, taskId, round, Phase.ScoreCommit);
        Member storage m = t.validatorOf[msg.sender];
        if (m.status != ACTIVE) revert NotValidator(taskId, msg.sender);
        uint256 minStake = t.params.minValidatorStake;
        if (m.stake < minStake) revert StakeTooLow(m.stake, minStake);
        RoundState memory s = r.s;
        if (s.commits == 0) revert NothingToScore(taskId, round);
        if (uint256(commitment) < REVEAL_MARK) revert InvalidCommitment();
        if (r.scoreCommits[msg.sender] != bytes32(0)) revert AlreadyCommitted(taskId, round, msg.sender);
        r.scoreCommits[msg.sender] = commitment;
        r.s.scoreCommits = s.scoreCommits + 1;
        emit ScoresCommitted(taskId, round, msg.sender, commitment);
    }

    /// @notice Reveals the next page of the caller's committed scores: one score (0 to SCORE_SCALE) per
    ///         committed update, in the round's update order, packed 16 per word (score i in bits 16 * (i % 16)
    ///         of word i / 16; the unused high lanes of the last word zero). A page is the next
    ///         min(REVEAL_PAGE_WORDS, words left) words; the last page checks the commitment and counts the
    ///         reveal, so rounds of up to 4,096 updates reveal in one transaction. The code is
    ///         LearningSettlement's, run on this contract's storage.
    /// @param taskId The task.
    /// @param round The round, in its reveal window.
    /// @param words The page's packed words.
    /// @param salt The secret that hid the scores in the commitment (checked with the last page).
    function revealScores(uint256 taskId, uint32 round, uint256[] calldata words, bytes32 salt) external nonReentrant {
        (taskId, round, words, salt);
        _delegate();
    }

    // -----------------------------------------------------------------------------------------------------
    // Aggregation
    // -----------------------------------------------------------------------------------------------------

    /// @notice Proposes the digest of the round's aggregate (the strategy's result over the accepted updates),
    ///         counted as the proposer's attestation. Only validators that revealed scores in the round vote, once
    ///         each, weighted by their stake at the reveal. A digest becomes the next version when its votes
    ///         hold `quorumBps` of the round's revealed stake (more than half, so at most one can); only then
    ///         is a proposer of a conflicting digest slashed, its loss credited to the winning proposer.
    /// @param taskId The task.
    /// @param round The round, in its Aggregate phase.
    /// @param digest The sha256 digest of the aggregate's canonical bytes.
    function proposeAggregate(uint256 taskId, uint32 round, bytes32 digest) external nonReentrant {
        Task storage t = _tasks[taskId];
        Round storage r = _inPhase(t, taskId, round, Phase.Aggregate);
        if (digest == bytes32(0)) revert EmptyDigest();
        Proposal storage pr = r.proposals[digest];
        if (pr.proposer != address(0)) revert AlreadyProposed(taskId, round, digest);
        uint256 stake = _vote(t, r, taskId, round, PROPOSED);
        pr.proposer = msg.sender;
        // casting to 'uint96' is safe because the proposer's revealed stake is one validator's uint96 stake
        // forge-lint: disable-next-line(unsafe-typecast)
        pr.stake = uint96(stake);
        r.proposalDigests.push(digest);
        emit AggregateProposed(taskId, round, msg.sender, digest);
        if (_quorate(t, r, stake)) _acceptAggregate(t, r, taskId, round, digest);
    }

    /// @notice Attests a proposed aggregate after recomputing it (validators that revealed in the round, once
    ///         each); once its votes hold `quorumBps` of the round's revealed stake it becomes the model's next
    ///         version in the registry.
    /// @param taskId The task.
    /// @param round The round, in its Aggregate phase.
    /// @param digest A proposed digest.
    function attestAggregate(uint256 taskId, uint32 round, bytes32 digest) external nonReentrant {
        Task storage t = _tasks[taskId];
        Round storage r = _inPhase(t, taskId, round, Phase.Aggregate);
        Proposal storage pr = r.proposals[digest];
        if (pr.proposer == address(0)) revert UnknownProposal(taskId, round, digest);
        uint256 stake = pr.stake + _vote(t, r, taskId, round, VOTED);
        pr.stake = SafeCast.toUint96(stake);
        emit AggregateAttested(taskId, round, msg.sender, digest, stake);
        if (_quorate(t, r, stake)) _acceptAggregate(t, r, taskId, round, digest);
    }

    // -----------------------------------------------------------------------------------------------------
    // Views
    // -----------------------------------------------------------------------------------------------------

    /// @notice A task's parameters and state.
    /// @param taskId The task.
    function getTask(uint256 taskId) external view returns (TaskParams memory params, TaskState memory state) {
        Task storage t = _existingTask(taskId);
        return (t.params, t.state);
    }

    /// @notice A round's record, outcome and phase.
    /// @param taskId The task.
    /// @param round The round, from 1.
    function getRound(uint256 taskId, uint32 round) external view returns (RoundView memory) {
        Task storage t = _tasks[taskId];
        Round storage r = _existingRound(t, taskId, round);
        return RoundView({
            state: r.s,
            result: r.res,
            contributorsHash: r.contributorsHash,
            aggregateDigest: r.aggregateDigest,
            phase: _phase(t, round, r)
        });
    }

    /// @notice The phase a round is in now (None for a round that does not exist).
    /// @param taskId The task.
    /// @param round The round.
    function phaseOf(uint256 taskId, uint32 round) external view returns (Phase) {
        Task storage t = _tasks[taskId];
        return _phase(t, round, t.rounds[round]);
    }

    /// @notice A task's active trainers: the order of a round's updates and scores (join order, but an exit moves
    ///         the last trainer into the leaver's place; nobody joins or leaves during a round).
    /// @param taskId The task.
    function trainersOf(uint256 taskId) external view returns (address[] memory) {
        return _tasks[taskId].trainers;
    }

    /// @notice A task's active validators (ordered as `trainersOf`).
    /// @param taskId The task.
    function validatorsOf(uint256 taskId) external view returns (address[] memory) {
        return _tasks[taskId].validators;
    }

    /// @notice A member's record in a task (all zero if it never joined in that role).
    /// @param taskId The task.
    /// @param role The role.
    /// @param account The member.
    function memberOf(uint256 taskId, Role role, address account) external view returns (Member memory) {
        Task storage t = _tasks[taskId];
        return role == Role.Trainer ? t.trainerOf[account] : t.validatorOf[account];
    }

    /// @notice The committed updates of the task's latest round, in scoring order (older rounds: read the
    ///         `UpdateCommitted` events, or `getUpdate` by digest).
    /// @param taskId The task.
    /// @param round The task's latest round.
    function roundUpdates(uint256 taskId, uint32 round)
        external
        view
        returns (address[] memory trainers, bytes32[] memory digests, uint32[] memory samples)
    {
        Task storage t = _tasks[taskId];
        Round storage r = _existingRound(t, taskId, round);
        if (round != t.state.roundCount) revert RoundNotLatest(taskId, round);
        uint256 n = r.s.commits;
        trainers = new address[](n);
        digests = new bytes32[](n);
        samples = new uint32[](n);
        uint256 k;
        for (uint256 i; i < t.trainers.length && k < n; ++i) {
            address a = t.trainers[i];
            if (t.trainerOf[a].commitRound != round) continue;
            bytes32 d = t.digestOf[a];
            trainers[k] = a;
            digests[k] = d;
            samples[k] = t.samplesOf[a];
            ++k;
        }
    }

    /// @notice A trainer's latest committed update: its digest, round and sample count (all zero: never).
    /// @param taskId The task.
    /// @param trainer The trainer.
    function getUpdate(uint256 taskId, address trainer) external view returns (UpdateRecord memory u) {
        Task storage t = _tasks[taskId];
        uint32 round = t.trainerOf[trainer].commitRound;
        if (round != 0) u = UpdateRecord({digest: t.digestOf[trainer], round: round, samples: t.samplesOf[trainer]});
    }

    /// @notice A validator's revealed scores in a round, unpacked (empty if it did not reveal).
    /// @param taskId The task.
    /// @param round The round.
    /// @param validator The validator.
    function getScores(uint256 taskId, uint32 round, address validator) external view returns (uint16[] memory scores) {
        Round storage r = _tasks[taskId].rounds[round];
        if (_revealedStake(r, validator) == 0) return scores;
        uint256 n = r.s.commits;
        scores = new uint16[](n);
        for (uint256 i; i < n; ++i) {
            uint256 word = r.scores[validator][i / SCORES_PER_WORD];
            // casting to 'uint16' is safe because the truncation is the point: a score is the word's 16-bit lane
            // forge-lint: disable-next-line(unsafe-typecast)
            scores[i] = uint16(word >> (16 * (i % SCORES_PER_WORD)));
        }
    }

    /// @notice A round's aggregate proposals: digests, proposers and the revealed stake of their votes, in
    ///         proposal order.
    /// @param taskId The task.
    /// @param round The round.
    function getProposals(uint256 taskId, uint32 round)
        external
        view
        returns (bytes32[] memory digests, address[] memory proposers, uint256[] memory stakes)
    {
        Round storage r = _tasks[taskId].rounds[round];
        digests = r.proposalDigests;
        proposers = new address[](digests.length);
        stakes = new uint256[](digests.length);
        for (uint256 i; i < digests.length; ++i) {
            Proposal storage pr = r.proposals[digests[i]];
            proposers[i] = pr.proposer;
            stakes[i] = pr.stake;
        }
    }

    /// @notice The stake of the validators that revealed in a round: the denominator of the aggregate quorum.
    /// @param taskId The task.
    /// @param round The round.
    function revealedStakeOf(uint256 taskId, uint32 round) external view returns (uint256) {
        uint256 plusOne = _tasks[taskId].rounds[round].revealedStakePlusOne;
        return plusOne == 0 ? 0 : plusOne - 1;
    }

    /// @notice How many packed words of its scores a validator revealed in a round's pages before the last one:
    ///         its next page starts there (whether the reveal is complete: `getScores`).
    /// @param taskId The task.
    /// @param round The round.
    /// @param validator The validator.
    function revealProgress(uint256 taskId, uint32 round, address validator) external view returns (uint256) {
        return _tasks[taskId].rounds[round].revealedWords[validator];
    }

    /// @notice What `account` may withdraw now.
    /// @param account The account.
    function withdrawable(address account) external view returns (uint256) {
        return _balances[account];
    }

    /// @notice The commitment a validator makes to its packed scores: keccak256(abi.encode(taskId, round,
    ///         validator, chain, salt)) with chain = keccak256(abi.encodePacked(chain, page)) from 0 over the
    ///         pages of REVEAL_PAGE_WORDS words (the last one shorter), so that a reveal can be checked page by
    ///         page.
    /// @param taskId The task.
    /// @param round The round.
    /// @param validator The validator.
    /// @param words The packed scores.
    /// @param salt A secret.
    function scoreCommitment(uint256 taskId, uint32 round, address validator, uint256[] calldata words, bytes32 salt)
        public
        pure
        returns (bytes32)
    {
        bytes32 chain;
        for (uint256 from; from < words.length; from += REVEAL_PAGE_WORDS) {
            uint256 to = from + REVEAL_PAGE_WORDS;
            if (to > words.length) to = words.length;
            chain = keccak256(abi.encodePacked(chain, words[from:to]));
        }
        return keccak256(abi.encode(taskId, round, validator, chain, salt));
    }

    /// @notice The registry `trainingRun` of a round's aggregate: this contract ++ uint64 taskId ++ uint32 round.
    /// @param taskId The task.
    /// @param round The round.
    function trainingRunOf(uint256 taskId, uint32 round) public view returns (bytes32) {
        // casting to 'uint64' is safe because task ids count up by one per createTask: 2^64 is out of reach
        // forge-lint: disable-next-line(unsafe-typecast)
        return bytes32(abi.encodePacked(address(this), uint64(taskId), round));
    }

    // -----------------------------------------------------------------------------------------------------
    // Internals: checks
    // -----------------------------------------------------------------------------------------------------

    /// @dev Reverts with InvalidParams naming the first parameter out of its bounds (see the error).
    function _checkParams(TaskParams calldata p) private pure {
        uint256 bad;
        if (p.rewardPerRound == 0) bad = 5;
        else if (p.rounds == 0 || p.rounds > MAX_ROUNDS) bad = 6;
        else if (p.minTrainerStake == 0) bad = 7;
        else if (p.minValidatorStake == 0) bad = 8;
        else if (!_window(p.commitWindow, 1)) bad = 9;
        else if (!_window(p.scoreWindow, 1)) bad = 10;
        else if (!_window(p.revealWindow, 1)) bad = 11;
        else if (!_window(p.aggregateWindow, 1)) bad = 12;
        else if (!_window(p.exitWindow, MIN_EXIT_WINDOW)) bad = 13;
        else if (p.slashBps > BPS) bad = 14;
        else if (p.minScore > SCORE_SCALE) bad = 15;
        else if (p.relativeBps > BPS) bad = 16;
        else if (p.quorumBps <= BPS / 2 || p.quorumBps > BPS) bad = 17;
        else if (p.maxTrainers == 0 || p.maxTrainers > MAX_TRAINERS_CAP) bad = 18;
        else if (p.maxValidators < MIN_VALIDATORS || p.maxValidators > MAX_VALIDATORS_CAP) bad = 19;
        if (bad != 0) revert InvalidParams(bad);
    }

    function _window(uint256 blocks, uint256 least) private pure returns (bool) {
        return blocks >= least && blocks <= MAX_WINDOW;
    }

    /// @dev The version exists, the caller may act for the model, and this contract may append versions.
    function _checkModel(uint48 modelId, uint32 version) private view {
        try registry.getVersion(modelId, version) returns (ModelRegistry.Version memory) {}
        catch {
            revert UnknownModelVersion(modelId, version);
        }
        address owner = registry.ownerOf(modelId);
        if (
            owner != msg.sender && registry.getApproved(modelId) != msg.sender
                && !registry.isApprovedForAll(owner, msg.sender)
        ) revert NotModelOwner(modelId, msg.sender);
        _requireApproved(modelId, owner);
    }

    function _requireApproved(uint256 modelId, address owner) private view {
        if (registry.getApproved(modelId) != address(this) && !registry.isApprovedForAll(owner, address(this))) {
            revert ContractNotApproved(modelId);
        }
    }



    /// @dev Refuses while the latest round is open (not finalized, not expired). An expired round is closed
    ///      here, by whoever acts first: its pool goes back to the task's pool, and its exit window counts from
    ///      the block it expired at (members could leave from then on).
    function _closeRound(Task storage t, uint256 taskId) private {
        uint32 latest = t.state.roundCount;
        if (latest == 0) return;
        Round storage r = t.rounds[latest];
        if (r.s.finalized) return;
        uint256 expiry = uint256(r.s.revealDeadline) + FINALIZE_TIMEOUT;
        if (block.number <= expiry || r.progress.stage >= STAGE_SETTLE) revert RoundInProgress(taskId, latest);
        uint96 pool = r.res.pool;
        r.s.finalized = true;
        r.res.expired = true;
        // casting to 'uint40' is safe because a uint40 reveal deadline plus FINALIZE_TIMEOUT blocks, as the deadlines themselves
        // forge-lint: disable-next-line(unsafe-typecast)
        r.res.finalizedAt = uint40(expiry);
        r.contributorsHash = bytes32(0);
        t.state.poolLeft += pool;
        emit RoundExpired(taskId, latest, pool);
    }

    /// @dev Swap-and-pop of the caller from an active-member list and its index.
    function _removeMember(address[] storage list, mapping(address => uint256) storage index) private {
        uint256 pos = index[msg.sender];
        uint256 lastPos = list.length;
        if (pos != lastPos) {
            address moved = list[lastPos - 1];
            list[pos - 1] = moved;
            index[moved] = pos;
        }
        list.pop();
        delete index[msg.sender];
    }



    function _activeMember(Task storage t, uint256 taskId, bool trainer) private view returns (Member storage m) {
        m = trainer ? t.trainerOf[msg.sender] : t.validatorOf[msg.sender];
        if (m.status != ACTIVE) {
            if (trainer) revert NotTrainer(taskId, msg.sender);
            revert NotValidator(taskId, msg.sender);
        }
    }

    // -----------------------------------------------------------------------------------------------------
    // Internals: aggregation
    // -----------------------------------------------------------------------------------------------------

    /// @dev Records the caller's vote; returns its weight, the stake it revealed with.
    function _vote(Task storage t, Round storage r, uint256 taskId, uint32 round, uint8 kind)
        private
        returns (uint256 stake)
    {
        if (t.validatorOf[msg.sender].status != ACTIVE) revert NotValidator(taskId, msg.sender);
        // Only the validators that evaluated the round's updates vote on their aggregate, with the stake they
        // had then: a validator joining or topping up after the round cannot tip the quorum.
        stake = _revealedStake(r, msg.sender);
        if (stake == 0) revert DidNotReveal(taskId, round, msg.sender);
        if (r.votes[msg.sender] != 0) revert AlreadyVoted(taskId, round, msg.sender);
        r.votes[msg.sender] = kind;
    }

    /// @dev Whether `stake` holds the task's quorum share of the round's revealed stake.
    function _quorate(Task storage t, Round storage r, uint256 stake) private view returns (bool) {
        return stake * BPS >= uint256(t.params.quorumBps) * (r.revealedStakePlusOne - 1);
    }

    /// @dev Quorum: slashes outvoted proposers (their stake to the winning proposer), records the outcome, then
    ///      appends the version to the registry (the interaction last).
    function _acceptAggregate(Task storage t, Round storage r, uint256 taskId, uint32 round, bytes32 digest) private {
        uint48 modelId = t.params.modelId;
        _requireApproved(modelId, registry.ownerOf(modelId));
        r.res.aggregated = true;
        r.aggregateDigest = digest;
        _slashOutvoted(t, r, taskId, round, digest);
        uint32 expected = registry.versionCount(modelId) + 1;
        r.res.newVersion = expected;
        t.state.currentVersion = expected;
        bytes32 run = trainingRunOf(taskId, round);
        emit AggregateAccepted(taskId, round, expected, digest, r.contributorsHash, run);
        uint32 version = registry.addVersion(modelId, _versionInput(t, r, digest, run));
        assert(version == expected);
    }

    function _slashOutvoted(Task storage t, Round storage r, uint256 taskId, uint32 round, bytes32 digest) private {
        uint256 count = r.proposalDigests.length;
        if (count == 1) return;
        uint256 slashBps = t.params.slashBps;
        uint256 forfeited;
        for (uint256 i; i < count; ++i) {
            bytes32 d = r.proposalDigests[i];
            if (d == digest) continue;
            address proposer = r.proposals[d].proposer;
            Member storage m = t.validatorOf[proposer];
            uint256 amount = (uint256(m.stake) * slashBps) / BPS;
            // casting to 'uint96' is safe because a slash is a fraction of a uint96 stake
            // forge-lint: disable-next-line(unsafe-typecast)
            m.stake -= uint96(amount);
            forfeited += amount;
            emit ProposerSlashed(taskId, round, proposer, d, amount);
        }
        // casting to 'uint120' is safe because at most MAX_VALIDATORS_CAP uint96 slashes, below 2^101
        // forge-lint: disable-next-line(unsafe-typecast)
        if (forfeited != 0) t.validatorOf[r.proposals[digest].proposer].earned += uint120(forfeited);
    }

    function _versionInput(Task storage t, Round storage r, bytes32 digest, bytes32 run)
        private
        view
        returns (ModelRegistry.VersionInput memory input)
    {
        bytes32[] memory datasets = new bytes32[](1);
        datasets[0] = r.contributorsHash;
        input = ModelRegistry.VersionInput({
            weightsDigest: digest,
            format: t.params.format,
            parentModel: t.params.modelId,
            parentVersion: r.s.baseVersion,
            datasets: datasets,
            metrics: new ModelRegistry.Metric[](0),
            trainingRun: run,
            licence: t.params.licence,
            modelCard: bytes32(0)
        });
    }

    /// @notice Does the next bounded step of a round's settlement after its reveal window: consensus scores,
    ///         the round's median, acceptance, trainer rewards and slashes, validator shares and slashes,
    ///         refunds and burns; see the contract's notes. Anyone may call it, again until it returns true
    ///         (and emits RoundFinalized); a small round settles in one call. The code is LearningSettlement's,
    ///         run on this contract's storage.
    /// @param taskId The task.
    /// @param round The round, in its Finalize phase.
    /// @return done Whether the round is now finalized.
    function finalize(uint256 taskId, uint32 round) external nonReentrant returns (bool done) {
        (taskId, round);
        return abi.decode(_delegate(), (bool));
    }

    /// @dev LearningSettlement's `requireAccess` on this contract's storage: run there, as this contract is at
    ///      the 24 KiB code limit.
    function _requireAccess(uint256 taskId) private {
        _delegate(abi.encodeCall(LearningSettlement.requireAccess, (taskId)));
    }

    /// @dev Runs this call's calldata as LearningSettlement's code on this contract's storage; bubbles a revert.
    function _delegate() private returns (bytes memory ret) {
        return _delegate(msg.data);
    }

    /// @dev Runs `data` as a call of LearningSettlement's code on this contract's storage; bubbles a revert.
    function _delegate(bytes memory data) private returns (bytes memory ret) {
        bool ok;
        (ok, ret) = settlement.delegatecall(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 0x20), mload(ret))
            }
        }
    }
}
