// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {DataMarket} from "../../../contracts/DataMarket.sol";
import {LearningTasks, LearningTasksStorage} from "../../../contracts/LearningTasks.sol";
import {ModelRegistry} from "../../../contracts/ModelRegistry.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Actors} from "./Actors.sol";

/// @notice Every call the campaign makes into LearningTasks goes through here. The handler owns the model and
///         creates one task (at least MIN_VALIDATORS validators per round, a quorum of more than half of the
///         revealed stake, an exit window after each round). Actors 0-3 are honest trainers, actor 3 of them on
///         skewed data (issue 10: its honest update adds too little, so honest validators exclude it with
///         SCORE_EXCLUDED), actor 4 a Sybil trainer that submits junk and may also commit an honest trainer's
///         digest; actors 5-8 are honest validators (honest updates score 8,000, the skewed one 1, junk 0),
///         actor 9 the Sybil's validator (honest updates 0, the Sybil's 10,000) that proposes and attests a
///         poisoned aggregate. The task trains on one DataMarket dataset the handler owns: trainers hold
///         its owner's grant, which it revokes and gives again (a patient's consent), and a trainer left
///         without access may take its stake back. Silence is always possible: every action is optional, and
///         a round nobody finalizes expires.
contract LearningTasksHandler is Actors {
    uint256 internal constant TRAINERS = 5;
    uint256 internal constant SYBIL = 4;
    uint256 internal constant SKEWED = 3;
    uint256 internal constant FIRST_VALIDATOR = 5;
    uint256 internal constant ATTACKER = 9;
    uint256 internal constant HONEST_SCORE = 8_000;
    bytes8 internal constant FORMAT = "LMQ1";
    LearningTasksStorage.Role internal constant TRAINER = LearningTasksStorage.Role.Trainer;
    LearningTasksStorage.Role internal constant VALIDATOR = LearningTasksStorage.Role.Validator;

    ModelRegistry public immutable registry;
    LearningTasks public immutable tasks;
    uint256 public immutable taskId;
    DataMarket public immutable market;
    uint256 public immutable datasetId;

    mapping(uint32 round => mapping(address validator => uint256[])) internal _words;
    mapping(uint32 round => mapping(address validator => bool)) internal _revealedBy;

    /// @notice Rewards or withdrawable balances that fell in a call their owner did not make.
    uint256 public ghostClaimsLost;
    /// @notice Settlements that slashed an honest trainer that committed or an honest validator that revealed,
    ///         while the honest validators held most of the round's revealed stake. (A Sybil validator holding
    ///         most of it decides the consensus: the task's trust model is an honest majority of validator
    ///         stake, which the campaign does not assume, so that case is not counted.)
    uint256 public ghostHonestSlashed;
    /// @notice Aggregates installed by votes holding no strict majority of the round's revealed stake.
    uint256 public ghostMinorityAggregates;
    /// @notice Settlements that paid the skewed trainer for an update the honest validators (holding most of the
    ///         revealed stake) excluded.
    uint256 public ghostExcludedPaid;
    /// @notice Updates committed, or stakes released as lost access, against the trainer's access at the time.
    uint256 public ghostAccessIgnored;
    /// @notice Releases that moved to the trainer's withdrawable balance anything but its whole stake.
    uint256 public ghostReleaseShort;

    address internal _mayLose;

    constructor() Actors(10, 100_000 ether) {
        registry = new ModelRegistry();
        uint256 modelId = registry.registerModel("invariant-model");
        registry.addVersion(
            modelId,
            ModelRegistry.VersionInput({
                weightsDigest: keccak256("base"),
                format: FORMAT,
                parentModel: 0,
                parentVersion: 0,
                datasets: new bytes32[](0),
                metrics: new ModelRegistry.Metric[](0),
                trainingRun: bytes32(0),
                licence: bytes32(0),
                modelCard: bytes32(0)
            })
        );
        market = new DataMarket(token, address(this), 100);
        datasetId = market.publish("bafkinvariantdataset", keccak256("metadata"), 0, 30 days, 0);
        for (uint256 i; i < TRAINERS; ++i) {
            market.grantAccess(datasetId, _actors[i], _consentUntil());
        }
        tasks = new LearningTasks(token, registry, market);
        registry.setApprovalForAll(address(tasks), true);
        token.approve(address(tasks), type(uint256).max);
        taskId = tasks.createTask(
            LearningTasksStorage.TaskParams({
                modelId: SafeCast.toUint48(modelId),
                baseVersion: 1,
                format: FORMAT,
                licence: bytes32(0),
                rewardPerRound: 100 ether,
                rounds: 64,
                minTrainerStake: 10 ether,
                minValidatorStake: 10 ether,
                commitWindow: 3,
                scoreWindow: 6,
                revealWindow: 6,
                aggregateWindow: 12,
                exitWindow: SafeCast.toUint32(tasks.MIN_EXIT_WINDOW()),
                slashBps: 1_000,
                minScore: 1_000,
                relativeBps: 5_000,
                quorumBps: 5_001,
                maxTrainers: 6,
                maxValidators: 6
            })
        );
        uint256[] memory datasets = new uint256[](1);
        datasets[0] = datasetId;
        tasks.setDatasets(taskId, datasets);
        _addHolder(address(tasks));
        for (uint256 i; i < _actors.length; ++i) {
            vm.prank(_actors[i]);
            token.approve(address(tasks), type(uint256).max);
        }
        // Two honest trainers, the skewed one, the Sybil, two honest validators and the attacker start as
        // members, so that rounds start early in a sequence rather than after the fuzzer happens to assemble a
        // quorum, and the skewed trainer's exclusion is met in most sequences.
        uint256[7] memory founders =
            [uint256(0), 1, SKEWED, SYBIL, FIRST_VALIDATOR, FIRST_VALIDATOR + 1, ATTACKER];
        for (uint256 i; i < founders.length; ++i) {
            vm.prank(_actors[founders[i]]);
            tasks.join(taskId, _roleOf(founders[i]), 50 ether);
        }
    }

    /// @dev Watches every actor's (and the creator's) unclaimed rewards and withdrawable balance across the
    ///      call: only the owner's own claim, exit or withdraw (`_mayLose`) may lower them.
    modifier watched() {
        uint256 n = _holders.length;
        uint256[] memory before = new uint256[](2 * n);
        for (uint256 i; i < n; ++i) {
            before[2 * i] = tasks.withdrawable(_holders[i]);
            before[2 * i + 1] = _earned(_holders[i]);
        }
        _mayLose = address(0);
        _;
        for (uint256 i; i < n; ++i) {
            if (_holders[i] == _mayLose) continue;
            if (tasks.withdrawable(_holders[i]) < before[2 * i]) ghostClaimsLost++;
            if (_earned(_holders[i]) < before[2 * i + 1]) ghostClaimsLost++;
        }
    }

    // ------------------------------------------------------------------ members

    /// @dev Mostly an actor that is not an active member yet, a validator while fewer than MIN_VALIDATORS are
    ///      active (one in two picks, so that rounds can start); one pick in eight adds to any actor's stake.
    function join(uint256 who, uint256 amount) external clocked watched {
        uint256 index = who % _actors.length;
        (, LearningTasksStorage.TaskState memory st) = tasks.getTask(taskId);
        if (who % 8 != 0 && who % 2 == 1 && st.activeValidators < tasks.MIN_VALIDATORS()) {
            index = FIRST_VALIDATOR + (who >> 1) % (_actors.length - FIRST_VALIDATOR);
        }
        for (uint256 tries; tries < _actors.length && who % 8 != 0; ++tries) {
            if (tasks.memberOf(taskId, _roleOf(index), _actors[index]).status != 1) break;
            index = (index + 1) % _actors.length;
        }
        vm.prank(_actors[index]);
        tasks.join(taskId, _roleOf(index), bound(amount, 1 ether, 200 ether));
    }

    /// @dev Mostly an active member; one pick in eight is raw.
    function exit(uint256 who) external clocked watched {
        uint256 index = who % _actors.length;
        for (uint256 tries; tries < _actors.length && who % 8 != 0; ++tries) {
            if (tasks.memberOf(taskId, _roleOf(index), _actors[index]).status == 1) break;
            index = (index + 1) % _actors.length;
        }
        _mayLose = _actors[index];
        vm.prank(_actors[index]);
        tasks.exitTask(taskId, _roleOf(index));
    }

    /// @dev Mostly an actor with rewards to claim; one pick in eight is raw.
    function claim(uint256 who) external clocked watched {
        uint256 index = who % _actors.length;
        for (uint256 tries; tries < _actors.length && who % 8 != 0; ++tries) {
            if (tasks.memberOf(taskId, _roleOf(index), _actors[index]).earned != 0) break;
            index = (index + 1) % _actors.length;
        }
        _mayLose = _actors[index];
        vm.prank(_actors[index]);
        tasks.claim(taskId, _roleOf(index));
    }

    function withdraw(uint256 who) external clocked watched {
        uint256 index = who % _actors.length;
        for (uint256 tries; tries < _actors.length && who % 8 != 0; ++tries) {
            if (tasks.withdrawable(_actors[index]) != 0) break;
            index = (index + 1) % _actors.length;
        }
        _mayLose = _actors[index];
        vm.prank(_actors[index]);
        tasks.withdraw();
    }

    // ------------------------------------------------------------------ the creator

    /// @dev The creator waits for the previous round's exit window to pass (the chain moves on) unless `seed`
    ///      is a multiple of eight, which tries at once.
    function startRound(uint256 seed) external clocked watched {
        uint32 round = _latest();
        if (round != 0 && seed % 8 != 0) {
            LearningTasksStorage.RoundView memory r = tasks.getRound(taskId, round);
            (LearningTasksStorage.TaskParams memory p,) = tasks.getTask(taskId);
            uint256 opens = uint256(r.result.finalizedAt) + p.exitWindow + 1;
            if (r.state.finalized && block_ < opens) _advance((opens - block_) * 12 - 1);
        }
        tasks.startRound(taskId);
    }

    /// @dev Nobody finalizes the open round: the chain moves past FINALIZE_TIMEOUT and a member (who may) leaves,
    ///      which expires the round; every member may then leave and the round's pool is back in the task's.
    ///      One call in four, so that most rounds get as far as their settlement.
    function abandonRound(uint256 who) external clocked watched {
        uint32 round = _latest();
        if (round == 0 || who % 4 != 0 || tasks.getRound(taskId, round).state.finalized) return;
        uint256 expiry = uint256(tasks.getRound(taskId, round).state.revealDeadline) + tasks.FINALIZE_TIMEOUT();
        if (block_ <= expiry) _advance((expiry + 1 - block_) * 12 - 1);
        uint256 index = (who >> 2) % _actors.length;
        _mayLose = _actors[index];
        vm.prank(_actors[index]);
        tasks.exitTask(taskId, _roleOf(index));
    }

    /// @dev Rare (one call in sixteen): a closed task only winds down.
    function closeTask(uint256 seed) external clocked watched {
        if (seed % 16 != 0) return;
        _mayLose = address(this);
        tasks.closeTask(taskId);
    }

    // ------------------------------------------------------------------ a round

    /// @dev The active trainers picked by `mask` that have not committed yet commit their update of the round.
    ///      With `copy`, the Sybil first (when active) commits the digest that an honest trainer is about to
    ///      commit, seen in the mempool; the victim's own commit must still be accepted.
    function commitUpdates(uint256 mask, bool copy) external clocked watched {
        uint32 round = _latest();
        if (round == 0) return;
        if (copy && tasks.memberOf(taskId, TRAINER, _actors[SYBIL]).status == 1) {
            address victim = _actors[(mask >> 8) % SYBIL];
            vm.prank(_actors[SYBIL]);
            tasks.commitUpdate(taskId, round, _digest(victim, round), 1);
        }
        for (uint256 i; i < TRAINERS; ++i) {
            address trainer = _actors[i];
            LearningTasksStorage.Member memory m = tasks.memberOf(taskId, TRAINER, trainer);
            if ((mask >> i) & 1 == 0 || m.status != 1 || m.commitRound == round) continue;
            bool access = market.hasAccess(datasetId, trainer);
            vm.prank(trainer);
            try tasks.commitUpdate(taskId, round, _digest(trainer, round), 100) {
                if (!access) ghostAccessIgnored++;
            } catch {}
        }
    }

    // ------------------------------------------------------------------ consent

    /// @dev The dataset's owner revokes trainer `who`'s grant (with `give` false) or grants it again.
    function consent(uint256 who, bool give) external clocked watched {
        address trainer = _actors[who % TRAINERS];
        if (give) market.grantAccess(datasetId, trainer, _consentUntil());
        else market.revokeAccess(datasetId, trainer);
    }

    /// @dev Trainer `who` takes its stake back as having lost access: its whole stake, and only without access.
    function releaseStake(uint256 who) external clocked watched {
        address trainer = _actors[who % TRAINERS];
        uint256 stake = tasks.memberOf(taskId, TRAINER, trainer).stake;
        uint256 balance = tasks.withdrawable(trainer);
        bool access = market.hasAccess(datasetId, trainer);
        vm.prank(trainer);
        tasks.releaseStakeWithoutAccess(taskId, datasetId);
        if (access) ghostAccessIgnored++;
        if (tasks.withdrawable(trainer) != balance + stake || tasks.memberOf(taskId, TRAINER, trainer).stake != 0) {
            ghostReleaseShort++;
        }
    }

    /// @dev The active validators picked by `mask` that have not committed yet commit their scores; they wait for the score window (the chain
    ///      moves on to it) unless `mask` is a multiple of eight, which tries at once.
    function commitScores(uint256 mask) external clocked watched {
        uint32 round = _latest();
        if (round == 0) return;
        LearningTasksStorage.RoundState memory s = tasks.getRound(taskId, round).state;
        if (mask % 8 != 0 && block_ <= s.commitDeadline) _advance((uint256(s.commitDeadline) + 1 - block_) * 12 - 1);
        (address[] memory trainers,,) = tasks.roundUpdates(taskId, round);
        for (uint256 i; i < _actors.length - FIRST_VALIDATOR; ++i) {
            address validator = _actors[FIRST_VALIDATOR + i];
            bool eligible = tasks.memberOf(taskId, VALIDATOR, validator).status == 1 && _words[round][validator].length == 0;
            if ((mask >> (i + 3)) & 1 == 0 || !eligible) continue;
            uint256[] memory words = _scores(trainers, FIRST_VALIDATOR + i == ATTACKER);
            _words[round][validator] = words;
            bytes32 commitment = tasks.scoreCommitment(taskId, round, validator, words, _salt(validator));
            vm.prank(validator);
            tasks.commitScores(taskId, round, commitment);
        }
    }

    /// @dev The validators picked by `mask` that committed and have not revealed reveal. Once a score was
    ///      committed and the commit window is over, they wait for the reveal window (the chain moves on to it)
    ///      unless `mask` is a multiple of eight; earlier they try at once, so that scores can still come in.
    function revealScores(uint256 mask) external clocked watched {
        uint32 round = _latest();
        if (round == 0) return;
        LearningTasksStorage.RoundState memory s = tasks.getRound(taskId, round).state;
        bool waits = mask % 8 != 0 && s.scoreCommits != 0 && block_ > s.commitDeadline;
        if (waits && block_ <= s.scoreDeadline) _advance((uint256(s.scoreDeadline) + 1 - block_) * 12 - 1);
        for (uint256 i; i < _actors.length - FIRST_VALIDATOR; ++i) {
            address validator = _actors[FIRST_VALIDATOR + i];
            bool eligible = _words[round][validator].length != 0 && !_revealedBy[round][validator];
            if ((mask >> (i + 3)) & 1 == 0 || !eligible) continue;
            vm.prank(validator);
            tasks.revealScores(taskId, round, _words[round][validator], _salt(validator));
            _revealedBy[round][validator] = true;
        }
    }

    /// @dev Anyone finalizes. Once the score window is over it waits for the end of the reveal window (the
    ///      chain moves on to it) unless `seed` is a multiple of eight; earlier it tries at once, so that the
    ///      round's windows are not skipped. Honest participants must keep their whole stake.
    function finalize(uint256 seed) external clocked watched {
        uint32 round = _latest();
        if (round == 0) return;
        LearningTasksStorage.RoundState memory s = tasks.getRound(taskId, round).state;
        bool waits = seed % 8 != 0 && block_ > s.scoreDeadline;
        if (waits && block_ <= s.revealDeadline) _advance((uint256(s.revealDeadline) + 1 - block_) * 12 - 1);
        uint256[] memory stakes = new uint256[](_actors.length);
        bool[] memory honest = new bool[](_actors.length);
        for (uint256 i; i < _actors.length; ++i) {
            honest[i] = _participatedHonestly(round, i);
            stakes[i] = _stake(i);
        }
        bool honestMajority = _honestMajority(round);
        uint256 skewedEarned = _earned(_actors[SKEWED]);
        vm.prank(_actor(seed));
        _finalize(taskId, round);
        if (!honestMajority) return;
        for (uint256 i; i < _actors.length; ++i) {
            if (honest[i] && _stake(i) < stakes[i]) ghostHonestSlashed++;
        }
        if (_earned(_actors[SKEWED]) > skewedEarned) ghostExcludedPaid++;
    }

    /// @dev The one place that finalizes a round, so that a paged finalize replaces only this.
    function _finalize(uint256 id, uint32 round) internal {
        // Each call is one bounded step; a small round settles in the first, a larger one in a few.
        while (!tasks.finalize(id, round)) {}
    }

    /// @dev A validator proposes: honest ones the round's true aggregate, the attacker a poisoned one.
    function propose(uint256 who) external clocked watched {
        uint32 round = _latest();
        if (round == 0) return;
        uint256 index = FIRST_VALIDATOR + who % (_actors.length - FIRST_VALIDATOR);
        vm.prank(_actors[index]);
        tasks.proposeAggregate(taskId, round, _aggregate(round, index == ATTACKER));
        _checkAggregate(round);
    }

    /// @dev A validator attests: honest ones the true aggregate, the attacker the poisoned one.
    function attest(uint256 who) external clocked watched {
        uint32 round = _latest();
        if (round == 0) return;
        uint256 index = FIRST_VALIDATOR + who % (_actors.length - FIRST_VALIDATOR);
        vm.prank(_actors[index]);
        tasks.attestAggregate(taskId, round, _aggregate(round, index == ATTACKER));
        _checkAggregate(round);
    }

    /// @dev Mostly one or two blocks, so that several actions fit in one window; one roll in four up to twelve.
    function roll(uint256 blocks) external clocked {
        _advance(bound(blocks, 1, blocks % 4 == 0 ? 12 : 2) * 12 - 1);
    }

    // ------------------------------------------------------------------ views for the invariants

    /// @notice What the contract holds for someone or for good: members' stakes and rewards, withdrawable
    ///         balances, the unassigned pool, the pool of a round not yet finalized, and what was burned.
    function owed() external view returns (uint256 sum) {
        address[] memory trainers = tasks.trainersOf(taskId);
        for (uint256 i; i < trainers.length; ++i) {
            LearningTasksStorage.Member memory m = tasks.memberOf(taskId, TRAINER, trainers[i]);
            sum += uint256(m.stake) + m.earned;
        }
        address[] memory validators = tasks.validatorsOf(taskId);
        for (uint256 i; i < validators.length; ++i) {
            LearningTasksStorage.Member memory m = tasks.memberOf(taskId, VALIDATOR, validators[i]);
            sum += uint256(m.stake) + m.earned;
        }
        for (uint256 i; i < _holders.length; ++i) {
            sum += tasks.withdrawable(_holders[i]);
        }
        (, LearningTasksStorage.TaskState memory st) = tasks.getTask(taskId);
        sum += st.poolLeft + tasks.burned();
        if (st.roundCount != 0) {
            LearningTasksStorage.RoundView memory r = tasks.getRound(taskId, st.roundCount);
            if (!r.state.finalized) sum += r.result.pool;
        }
    }

    /// @notice Whether, without the creator's help, the open round can be finalized after its windows and
    ///         every member can then exit and withdraw; then the creator closes the task and takes back the
    ///         pool, leaving the contract only what was burned. The state is rolled back. Returns the first failed step.
    function drainAll() external returns (string memory failed) {
        uint256 snapshot = vm.snapshotState();
        failed = _drain();
        vm.revertToState(snapshot);
    }

    function _drain() internal returns (string memory) {
        (LearningTasksStorage.TaskParams memory p, LearningTasksStorage.TaskState memory st) = tasks.getTask(taskId);
        uint256 wait = uint256(p.commitWindow) + p.scoreWindow + p.revealWindow + p.aggregateWindow + 1;
        vm.roll(block_ + wait);
        if (st.roundCount != 0 && tasks.phaseOf(taskId, st.roundCount) == LearningTasksStorage.Phase.Finalize) {
            try this.finalizeForDrain(st.roundCount) {}
            catch {
                return "finalize";
            }
            vm.roll(block_ + 2 * wait);
        }
        for (uint256 i; i < _actors.length; ++i) {
            if (tasks.memberOf(taskId, _roleOf(i), _actors[i]).status != 1) continue;
            vm.prank(_actors[i]);
            try tasks.exitTask(taskId, _roleOf(i)) {}
            catch {
                return "exitTask";
            }
        }
        if (!st.closed) {
            try tasks.closeTask(taskId) {}
            catch {
                return "closeTask";
            }
        }
        for (uint256 i; i < _holders.length; ++i) {
            if (tasks.withdrawable(_holders[i]) == 0) continue;
            vm.prank(_holders[i]);
            try tasks.withdraw() {}
            catch {
                return "withdraw";
            }
        }
        // Burned tokens stay in the contract for good, owed to nobody.
        if (token.balanceOf(address(tasks)) != tasks.burned()) return "tokens left in the contract";
        return "";
    }

    /// @dev The drain's finalize, through `_finalize`; external so that the drain can catch its revert.
    function finalizeForDrain(uint32 round) external {
        if (msg.sender != address(this)) revert("drain only");
        _finalize(taskId, round);
    }

    // ------------------------------------------------------------------ internals

    function _roleOf(uint256 index) internal pure returns (LearningTasksStorage.Role) {
        return index < TRAINERS ? TRAINER : VALIDATOR;
    }

    function _earned(address who) internal view returns (uint256) {
        return uint256(tasks.memberOf(taskId, TRAINER, who).earned) + tasks.memberOf(taskId, VALIDATOR, who).earned;
    }

    function _stake(uint256 index) internal view returns (uint256) {
        return tasks.memberOf(taskId, _roleOf(index), _actors[index]).stake;
    }

    /// @dev Consent given now runs for ten years: only a revocation ends it within a campaign.
    function _consentUntil() internal view returns (uint64) {
        return SafeCast.toUint64(block.timestamp + 3650 days);
    }

    function _latest() internal view returns (uint32) {
        (, LearningTasksStorage.TaskState memory st) = tasks.getTask(taskId);
        return st.roundCount;
    }

    function _participatedHonestly(uint32 round, uint256 index) internal view returns (bool) {
        if (index == SYBIL || index == ATTACKER) return false;
        address who = _actors[index];
        if (index < TRAINERS) return tasks.memberOf(taskId, TRAINER, who).commitRound == round;
        return _revealedBy[round][who];
    }

    /// @dev Records an aggregate installed with votes holding no strict majority of the round's revealed stake.
    function _checkAggregate(uint32 round) internal {
        LearningTasksStorage.RoundView memory r = tasks.getRound(taskId, round);
        if (!r.result.aggregated) return;
        (bytes32[] memory digests,, uint256[] memory votes) = tasks.getProposals(taskId, round);
        uint256 revealed = tasks.revealedStakeOf(taskId, round);
        for (uint256 i; i < digests.length; ++i) {
            if (digests[i] == r.aggregateDigest && votes[i] * 2 <= revealed) ghostMinorityAggregates++;
        }
    }

    /// @dev Whether the honest validators held more than half of the round's revealed stake (the stake a
    ///      validator had at its reveal: stakes cannot change during a round).
    function _honestMajority(uint32 round) internal view returns (bool) {
        uint256 honestStake;
        for (uint256 i = FIRST_VALIDATOR; i < _actors.length; ++i) {
            if (i != ATTACKER && _revealedBy[round][_actors[i]]) honestStake += _stake(i);
        }
        return honestStake * 2 > tasks.revealedStakeOf(taskId, round);
    }

    /// @dev Packed scores, one per committed update in the round's order.
    function _scores(address[] memory trainers, bool attacker) internal view returns (uint256[] memory words) {
        words = new uint256[]((trainers.length + 15) / 16);
        for (uint256 i; i < trainers.length; ++i) {
            bool junk = trainers[i] == _actors[SYBIL];
            uint256 honestScore = trainers[i] == _actors[SKEWED] ? tasks.SCORE_EXCLUDED() : HONEST_SCORE;
            uint256 score = attacker ? (junk ? 10_000 : 0) : (junk ? 0 : honestScore);
            words[i / 16] |= score << (16 * (i % 16));
        }
    }

    function _digest(address trainer, uint32 round) internal pure returns (bytes32) {
        return keccak256(abi.encode("update", trainer, round));
    }

    function _aggregate(uint32 round, bool poisoned) internal pure returns (bytes32) {
        return keccak256(abi.encode(poisoned ? "poisoned" : "aggregate", round));
    }

    function _salt(address validator) internal pure returns (bytes32) {
        return keccak256(abi.encode("salt", validator));
    }
}
