// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {LearningTasks, LearningTasksStorage} from "../../../contracts/LearningTasks.sol";
import {ModelRegistry} from "../../../contracts/ModelRegistry.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Actors} from "./Actors.sol";

/// @notice Every call the campaign makes into LearningTasks goes through here. The handler owns the model and
///         creates one task. Actors 0-3 are honest trainers, actor 4 a Sybil trainer that submits junk and may
///         copy an honest trainer's digest before it lands; actors 5-8 are honest validators (honest updates
///         score 8,000, junk 0), actor 9 the Sybil's validator (honest updates 0, the Sybil's 10,000) that
///         proposes and attests a poisoned aggregate. Silence is always possible: every action is optional.
contract LearningTasksHandler is Actors {
    uint256 internal constant TRAINERS = 5;
    uint256 internal constant SYBIL = 4;
    uint256 internal constant FIRST_VALIDATOR = 5;
    uint256 internal constant ATTACKER = 9;
    uint256 internal constant HONEST_SCORE = 8_000;
    bytes8 internal constant FORMAT = "LMQ1";
    LearningTasksStorage.Role internal constant TRAINER = LearningTasksStorage.Role.Trainer;
    LearningTasksStorage.Role internal constant VALIDATOR = LearningTasksStorage.Role.Validator;

    ModelRegistry public immutable registry;
    LearningTasks public immutable tasks;
    uint256 public immutable taskId;

    mapping(uint32 round => mapping(address validator => uint256[])) internal _words;
    mapping(uint32 round => mapping(address validator => bool)) internal _revealedBy;
    /// @dev Honest trainers whose commit was refused because a copier took their digest first.

    /// @notice Rewards or withdrawable balances that fell in a call their owner did not make.
    uint256 public ghostClaimsLost;
    /// @notice Settlements that slashed an honest trainer that committed (or was refused by a copier) or an
    ///         honest validator that revealed.
    uint256 public ghostHonestSlashed;
    /// @notice Aggregates installed by no strict majority of the round's revealing validators.
    uint256 public ghostMinorityAggregates;

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
        tasks = new LearningTasks(token, registry);
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
                scoreWindow: 3,
                revealWindow: 3,
                aggregateWindow: 5,
                exitWindow: 5,
                slashBps: 1_000,
                minScore: 1_000,
                relativeBps: 5_000,
                quorumBps: 6_000,
                maxTrainers: 6,
                maxValidators: 6
            })
        );
        _addHolder(address(tasks));
        for (uint256 i; i < _actors.length; ++i) {
            vm.prank(_actors[i]);
            token.approve(address(tasks), type(uint256).max);
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

    /// @dev Mostly an actor that is not an active member yet; one pick in eight adds to any actor's stake.
    function join(uint256 who, uint256 amount) external clocked watched {
        uint256 index = who % _actors.length;
        for (uint256 tries; tries < _actors.length && who % 8 != 0; ++tries) {
            if (tasks.memberOf(taskId, _roleOf(index), _actors[index]).status != 1) break;
            index = (index + 1) % _actors.length;
        }
        vm.prank(_actors[index]);
        tasks.join(taskId, _roleOf(index), bound(amount, 1 ether, 200 ether));
    }

    function exit(uint256 who) external clocked watched {
        uint256 index = who % _actors.length;
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

    function startRound() external clocked watched {
        tasks.startRound(taskId);
    }

    /// @dev Rare (one call in sixteen): a closed task only winds down.
    function closeTask(uint256 seed) external clocked watched {
        if (seed % 16 != 0) return;
        _mayLose = address(this);
        tasks.closeTask(taskId);
    }

    // ------------------------------------------------------------------ a round

    /// @dev The active trainers picked by `mask` that have not committed yet commit their update of the round. With `copy`, the Sybil first
    ///      commits the digest that an honest trainer is about to commit (seen in the mempool); the victim's
    ///      commit is then refused, which the handler records instead of reverting.
    function commitUpdates(uint256 mask, bool copy) external clocked watched {
        uint32 round = _latest();
        if (round == 0) return;
        if (copy) {
            address victim = _actors[(mask >> 8) % SYBIL];
            vm.prank(_actors[SYBIL]);
            tasks.commitUpdate(taskId, round, _digest(victim, round), 1);
        }
        for (uint256 i; i < TRAINERS; ++i) {
            address trainer = _actors[i];
            LearningTasksStorage.Member memory m = tasks.memberOf(taskId, TRAINER, trainer);
            if ((mask >> i) & 1 == 0 || m.status != 1 || m.commitRound == round) continue;
            // Digests are keyed by trainer: a copier that committed this digest first does not stop it.
            vm.prank(trainer);
            tasks.commitUpdate(taskId, round, _digest(trainer, round), 100);
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

    /// @dev The validators picked by `mask` that committed and have not revealed reveal, once the reveal window opens.
    function revealScores(uint256 mask) external clocked watched {
        uint32 round = _latest();
        if (round == 0) return;
        LearningTasksStorage.RoundState memory s = tasks.getRound(taskId, round).state;
        if (mask % 8 != 0 && block_ <= s.scoreDeadline) _advance((uint256(s.scoreDeadline) + 1 - block_) * 12 - 1);
        for (uint256 i; i < _actors.length - FIRST_VALIDATOR; ++i) {
            address validator = _actors[FIRST_VALIDATOR + i];
            bool eligible = _words[round][validator].length != 0 && !_revealedBy[round][validator];
            if ((mask >> (i + 3)) & 1 == 0 || !eligible) continue;
            vm.prank(validator);
            tasks.revealScores(taskId, round, _words[round][validator], _salt(validator));
            _revealedBy[round][validator] = true;
        }
    }

    /// @dev Anyone finalizes, step after step until the round settles, once the reveal window is over (the
    ///      chain moves on to it unless `seed` is a multiple of eight). Honest participants must keep their
    ///      whole stake.
    function finalize(uint256 seed) external clocked watched {
        uint32 round = _latest();
        if (round == 0) return;
        LearningTasksStorage.RoundState memory s = tasks.getRound(taskId, round).state;
        if (seed % 8 != 0 && block_ <= s.revealDeadline) _advance((uint256(s.revealDeadline) + 1 - block_) * 12 - 1);
        uint256[] memory stakes = new uint256[](_actors.length);
        bool[] memory honest = new bool[](_actors.length);
        for (uint256 i; i < _actors.length; ++i) {
            honest[i] = _participatedHonestly(round, i);
            stakes[i] = _stake(i);
        }
        // Each call is one bounded step; a small round settles in the first, a larger one in a few.
        bool done;
        while (!done) {
            vm.prank(_actor(seed));
            done = tasks.finalize(taskId, round);
        }
        for (uint256 i; i < _actors.length; ++i) {
            if (honest[i] && _stake(i) < stakes[i]) ghostHonestSlashed++;
        }
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

    function roll(uint256 blocks) external clocked {
        _advance(bound(blocks, 1, blocks % 4 == 0 ? 12 : 2) * 12 - 1);
    }

    // ------------------------------------------------------------------ views for the invariants

    /// @notice What the contract owes, plus what it burned (kept for good): members' stakes and rewards,
    ///         withdrawable balances, the unassigned pool and the pool of a round not yet finalized.
    function owed() external view returns (uint256 sum) {
        sum = tasks.burned();
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
        sum += st.poolLeft;
        if (st.roundCount != 0) {
            LearningTasksStorage.RoundView memory r = tasks.getRound(taskId, st.roundCount);
            if (!r.state.finalized) sum += r.result.pool;
        }
    }

    /// @notice Whether, without the creator's help, the open round can be finalized after its windows and
    ///         every member can then exit and withdraw; then the creator closes the task and takes back the
    ///         pool, leaving the contract with only what it burned. The state is rolled back. Returns the first failed step.
    function drainAll() external returns (string memory failed) {
        uint256 snapshot = vm.snapshotState();
        failed = _drain();
        vm.revertToState(snapshot);
    }

    function _drain() internal returns (string memory) {
        (LearningTasksStorage.TaskParams memory p, LearningTasksStorage.TaskState memory st) = tasks.getTask(taskId);
        uint256 wait = uint256(p.commitWindow) + p.scoreWindow + p.revealWindow + p.aggregateWindow + 1;
        vm.roll(block_ + wait);
        if (st.roundCount != 0 && !tasks.getRound(taskId, st.roundCount).state.finalized) {
            try tasks.finalize(taskId, st.roundCount) {}
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
        // Only what was burned (slashes nobody qualified for, rounding dust) stays, by design.
        if (token.balanceOf(address(tasks)) != tasks.burned()) return "tokens left in the contract";
        return "";
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

    function _latest() internal view returns (uint32) {
        (, LearningTasksStorage.TaskState memory st) = tasks.getTask(taskId);
        return st.roundCount;
    }

    function _participatedHonestly(uint32 round, uint256 index) internal view returns (bool) {
        if (index == SYBIL || index == ATTACKER) return false;
        address who = _actors[index];
        if (index < TRAINERS) {
            return tasks.memberOf(taskId, TRAINER, who).commitRound == round;
        }
        return _revealedBy[round][who];
    }

    /// @dev Records an aggregate installed with votes from no strict majority of the round's revealers.
    function _checkAggregate(uint32 round) internal {
        LearningTasksStorage.RoundView memory r = tasks.getRound(taskId, round);
        if (!r.result.aggregated) return;
        (bytes32[] memory digests,, uint256[] memory stakes) = tasks.getProposals(taskId, round);
        uint256 revealed = tasks.revealedStakeOf(taskId, round);
        for (uint256 i; i < digests.length; ++i) {
            if (digests[i] == r.aggregateDigest && stakes[i] * 2 <= revealed) ghostMinorityAggregates++;
        }
    }

    /// @dev Packed scores, one per committed update in the round's order.
    function _scores(address[] memory trainers, bool attacker) internal view returns (uint256[] memory words) {
        words = new uint256[]((trainers.length + 15) / 16);
        for (uint256 i; i < trainers.length; ++i) {
            bool junk = trainers[i] == _actors[SYBIL];
            uint256 score = attacker ? (junk ? 10_000 : 0) : (junk ? 0 : HONEST_SCORE);
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

    function _bubble(bytes memory reason) internal pure {
        assembly ("memory-safe") {
            revert(add(reason, 0x20), mload(reason))
        }
    }
}
