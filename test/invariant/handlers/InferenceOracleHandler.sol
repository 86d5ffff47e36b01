// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IInferenceOracle} from "../../../contracts/IInferenceOracle.sol";
import {InferenceOracle} from "../../../contracts/InferenceOracle.sol";
import {ModelRegistry} from "../../../contracts/ModelRegistry.sol";
import {IZkInferenceVerifier} from "../../../contracts/zk/IZkInferenceVerifier.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Actors} from "./Actors.sol";

/// @notice Stands in for a circuit's Groth16 verifier: it accepts exactly what a sound one would, a proof of the
///         request's true answer (the handler's truth of the request id the input carries as its second
///         value) made for the operator that submits it (the proof's first word names it).
contract TruthZkVerifier is IZkInferenceVerifier {
    function verifyInference(bytes32, int256[] calldata input, int256 answer, address prover, uint256[8] calldata proof)
        external
        pure
        returns (bool)
    {
        return input.length == 2 && input[1] > 0 && answer == truthOf(uint256(input[1]))
            && proof[0] == uint256(uint160(prover));
    }

    function truthOf(uint256 requestId) public pure returns (int256) {
        return int256(uint256(keccak256(abi.encode("truth", requestId))) % 1_000_000);
    }
}

/// @notice Every call the campaign makes into InferenceOracle goes through here. Actors 0-5 may operate the one
///         model version: 0-3 are honest (they commit, reveal and sign the request's true value), 4 and 5
///         collude (they commit, reveal and sign the same lie, below the truth, so that a lower median favours
///         them). Actors 6 and 7 request. Any operator may also settle a request by a zero-knowledge proof (the
///         version has a verifier): of the truth, of the colluders' lie, or one made for another operator.
///         Which of them act, and when, is the fuzzer's choice; silence is always possible.
contract InferenceOracleHandler is Actors {
    uint256 internal constant OPERATORS = 6;
    uint256 internal constant HONEST = 4;
    uint256 internal constant LIVE_REQUESTS = 2;
    uint256 internal constant MAX_REQUESTS = 48;
    int256 internal constant LIE_OFFSET = 300_000;
    bytes8 internal constant FORMAT = "onnx";

    ModelRegistry public immutable registry;
    InferenceOracle public immutable oracle;
    uint256 public immutable modelId;
    uint32 public constant VERSION = 1;

    mapping(uint256 requestId => mapping(address operator => int256)) internal _committed;
    mapping(uint256 requestId => mapping(address operator => bool)) internal _committedBy;
    /// @dev The oracle keeps reveals by index with no view by operator, so the handler keeps its own record.
    mapping(uint256 requestId => mapping(address operator => bool)) internal _revealedBy;
    /// @dev Each revealer's stake when it revealed: its weight in the median, as the oracle counts it.
    mapping(uint256 requestId => mapping(address operator => uint256)) internal _weightOf;

    /// @notice Withdrawable balances or uncollected fees that fell in a call their owner did not make.
    uint256 public ghostClaimsLost;
    /// @notice Finalizations that slashed an honest operator that had revealed the truth while the honest
    ///         revealers held at least half of the revealed stake. (Colluders holding most of the revealed
    ///         stake decide the median and slash the honest: the oracle's trust model is an honest majority
    ///         of stake, which the campaign does not assume, so that case is not counted.)
    uint256 public ghostHonestSlashed;
    /// @notice Results backed by no strict majority of the revealed stake.
    uint256 public ghostSplitsDecided;
    /// @notice Reports accepted with signers holding no more than two thirds of the request's stake base.
    uint256 public ghostReportsBelowTwoThirds;
    /// @notice Results that differ from the truth although honest revealers held most of the revealed stake.
    uint256 public ghostHonestMajorityOverridden;
    /// @notice Proofs accepted for an answer other than the truth, or from an operator they were not made for.
    uint256 public ghostBadProofsAccepted;
    /// @notice Operators whose stake fell when a proof settled a request they had committed to.
    uint256 public ghostSlashedByProof;

    /// @dev Each request's first input value (the second is its id: the verifier's truth is a function of it).
    mapping(uint256 requestId => int256) internal _firstInput;
    TruthZkVerifier public immutable zkVerifier;

    address internal _mayLose;

    constructor() Actors(8, 1_000_000 ether) {
        registry = new ModelRegistry();
        modelId = registry.registerModel("invariant-model");
        registry.addVersion(
            modelId,
            ModelRegistry.VersionInput({
                weightsDigest: keccak256("weights"),
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
        oracle = new InferenceOracle(
            token,
            registry,
            InferenceOracle.Params({
                minStake: 10 ether,
                commitWindow: 5,
                revealWindow: 5,
                minResponses: 2,
                tolerance: 10_000,
                slashBps: 1_000,
                callbackGasLimit: 200_000,
                maxOperators: 8
            })
        );
        oracle.setModelSpec(modelId, VERSION, 2);
        zkVerifier = new TruthZkVerifier();
        registry.setZkVerifier(modelId, VERSION, address(zkVerifier), bytes32(uint256(1)));
        _addHolder(address(oracle));
        for (uint256 i; i < _actors.length; ++i) {
            vm.prank(_actors[i]);
            token.approve(address(oracle), type(uint256).max);
        }
    }

    /// @dev Watches every actor's withdrawable balance and uncollected fees across the call: only the owner's
    ///      own withdraw, collect or exit (`_mayLose`) may lower them.
    modifier watched() {
        uint256 n = _actors.length;
        uint256[] memory balances = new uint256[](n);
        uint256[] memory fees = new uint256[](n);
        for (uint256 i; i < n; ++i) {
            balances[i] = oracle.withdrawable(_actors[i]);
            fees[i] = oracle.operatorInfo(modelId, VERSION, _actors[i]).fees;
        }
        _mayLose = address(0);
        _;
        for (uint256 i; i < n; ++i) {
            if (_actors[i] == _mayLose) continue;
            if (oracle.withdrawable(_actors[i]) < balances[i]) ghostClaimsLost++;
            if (oracle.operatorInfo(modelId, VERSION, _actors[i]).fees < fees[i]) ghostClaimsLost++;
        }
    }

    // ------------------------------------------------------------------ operators

    /// @dev Mostly an operator not registered yet; one pick in eight is raw.
    function register(uint256 who, uint256 stake) external clocked watched {
        uint256 index = who % OPERATORS;
        for (uint256 tries; tries < OPERATORS && who % 8 != 0; ++tries) {
            if (oracle.operatorInfo(modelId, VERSION, _actors[index]).slot == 0) break;
            index = (index + 1) % OPERATORS;
        }
        vm.prank(_actors[index]);
        oracle.registerOperator(modelId, VERSION, bound(stake, 10 ether, 1_000 ether));
    }

    function exit(uint256 who) external clocked watched {
        address op = _operator(who);
        _mayLose = op;
        vm.prank(op);
        oracle.exitOperator(modelId, VERSION);
    }

    function collectFees(uint256 who) external clocked watched {
        address op = _operator(who);
        _mayLose = op;
        vm.prank(op);
        oracle.collectFees(modelId, VERSION);
    }

    function withdraw(uint256 who) external clocked watched {
        uint256 index = who % _actors.length;
        for (uint256 tries; tries < _actors.length && who % 8 != 0; ++tries) {
            if (oracle.withdrawable(_actors[index]) != 0) break;
            index = (index + 1) % _actors.length;
        }
        address account = _actors[index];
        _mayLose = account;
        vm.prank(account);
        oracle.withdraw();
    }

    // ------------------------------------------------------------------ requests

    function request(uint256 who, uint256 fee, bool majority) external clocked watched {
        if (oracle.requestCount() >= MAX_REQUESTS) return;
        int256[] memory input = new int256[](2);
        input[0] = SafeCast.toInt256(who % 1_000_000);
        uint256 id = oracle.requestCount() + 1;
        input[1] = SafeCast.toInt256(id);
        _firstInput[id] = input[0];
        vm.prank(_actors[OPERATORS + who % 2]);
        oracle.request(
            modelId,
            VERSION,
            input,
            bytes32(0),
            majority ? IInferenceOracle.Aggregation.Majority : IInferenceOracle.Aggregation.Median,
            bound(fee, 0, 100 ether)
        );
    }

    /// @dev The registered operators picked by `mask` that have not committed yet all commit (each one's own
    ///      answer: the truth, or the colluders' lie); one call in eight is a raw single commit by whichever
    ///      operator `mask` names, registered or not, to exercise the refusals.
    function commit(uint256 mask, uint256 req) external clocked watched {
        uint256 id = _request(req);
        if (id == 0) return;
        if (mask % 8 == 0) {
            _commit(id, (mask >> 3) % OPERATORS);
            return;
        }
        for (uint256 i; i < OPERATORS; ++i) {
            address op = _actors[i];
            bool eligible = oracle.operatorInfo(modelId, VERSION, op).slot != 0 && !_committedBy[id][op];
            if ((mask >> i) & 1 == 1 && eligible) _commit(id, i);
        }
    }

    function _commit(uint256 id, uint256 index) internal {
        address op = _actors[index];
        int256 output = _answer(id, index);
        _committed[id][op] = output;
        _committedBy[id][op] = true;
        vm.prank(op);
        oracle.commit(id, keccak256(abi.encode(id, op, output, _salt(id, op))));
    }

    /// @dev The operators picked by `mask` that committed and have not revealed all reveal, once the chain
    ///      reached the reveal window (they wait for it); one call in eight is a raw single reveal, now, by
    ///      whichever operator `mask` names.
    function reveal(uint256 mask, uint256 req) external clocked watched {
        uint256 id = _request(req);
        if (id == 0) return;
        if (mask % 8 == 0) {
            _reveal(id, _actors[(mask >> 3) % OPERATORS]);
            return;
        }
        uint256 opens = uint256(oracle.getRequest(id).commitDeadline) + 1;
        if (block_ < opens) _advance((opens - block_) * 12 - 1);
        for (uint256 i; i < OPERATORS; ++i) {
            address op = _actors[i];
            if ((mask >> i) & 1 == 1 && _committedBy[id][op] && !_revealedBy[id][op]) _reveal(id, op);
        }
    }

    function _reveal(uint256 id, address op) internal {
        vm.prank(op);
        oracle.reveal(id, _committed[id][op], _salt(id, op));
        _revealedBy[id][op] = true;
        _weightOf[id][op] = oracle.operatorInfo(modelId, VERSION, op).stake;
    }

    /// @dev Judges the settlement against the truth: honest revealers keep their stake, a result has a strict
    ///      majority of the revealed stake behind it, an honest majority of it is never overridden.
    ///      A keeper waits until finalizing is allowed (the chain moves past the reveal deadline when some
    ///      committer has not revealed), except one call in eight, which tries at once.
    function finalize(uint256 keeper, uint256 req) external clocked watched {
        uint256 id = _request(req);
        if (id == 0) return;
        InferenceOracle.Request memory r = oracle.getRequest(id);
        bool allRevealed = block_ > r.commitDeadline && r.reveals == r.commits;
        if (!allRevealed && block_ <= r.revealDeadline && keeper % 8 != 0) {
            _advance((uint256(r.revealDeadline) + 1 - block_) * 12 - 1);
        }
        _finalize(_actor(keeper), id);
    }

    function _finalize(address keeper, uint256 id) internal {
        address[] memory ops = oracle.operatorsOf(modelId, VERSION);
        uint256[] memory stakes = new uint256[](ops.length);
        uint256 revealedStake;
        uint256 honestStake;
        for (uint256 i; i < ops.length; ++i) {
            stakes[i] = oracle.operatorInfo(modelId, VERSION, ops[i]).stake;
            revealedStake += _weightOf[id][ops[i]];
            if (_isHonest(ops[i])) honestStake += _weightOf[id][ops[i]];
        }
        vm.prank(keeper);
        oracle.finalize(id);
        for (uint256 i; i < ops.length; ++i) {
            bool honestRevealer = _isHonest(ops[i]) && _revealed(id, ops[i]);
            if (!honestRevealer || honestStake * 2 < revealedStake) continue;
            if (oracle.operatorInfo(modelId, VERSION, ops[i]).stake < stakes[i]) ghostHonestSlashed++;
        }
        InferenceOracle.Request memory r = oracle.getRequest(id);
        if (r.status != InferenceOracle.Status.Finalized) return;
        int256 result = oracle.getResult(id).output;
        if (result != _truth(id) && honestStake * 2 > revealedStake) ghostHonestMajorityOverridden++;
        uint256 agreeing;
        for (uint256 i; i < ops.length; ++i) {
            if (_revealed(id, ops[i]) && _committed[id][ops[i]] == result) agreeing += _weightOf[id][ops[i]];
        }
        if (agreeing * 2 <= revealedStake) ghostSplitsDecided++;
    }

    /// @dev Signers are the registered operators picked by `mask`; if any colluder is among them only the
    ///      colluders sign (the lie), otherwise the honest ones sign the truth.
    ///      Two calls in three do nothing: a report finalizes at once, and at the fuzzer's even odds the
    ///      commit-reveal path would rarely get as far as a median.
    function submitReport(uint256 keeper, uint256 req, uint256 mask) external clocked watched {
        uint256 id = _request(req);
        if (id != 0 && keeper % 3 == 0) _submitReport(_actor(keeper), id, mask);
    }

    function _submitReport(address keeper, uint256 id, uint256 mask) internal {
        address[] memory ops = oracle.operatorsOf(modelId, VERSION);
        bool lie = false;
        for (uint256 i; i < ops.length; ++i) {
            if ((mask >> i) & 1 == 1 && !_isHonest(ops[i])) lie = true;
        }
        int256 output = lie ? _truth(id) - LIE_OFFSET : _truth(id);
        uint256 n;
        for (uint256 i; i < ops.length; ++i) {
            if ((mask >> i) & 1 == 1 && _isHonest(ops[i]) != lie) n++;
        }
        address[] memory signers = new address[](n);
        uint256 signedStake;
        n = 0;
        for (uint256 i; i < ops.length; ++i) {
            if ((mask >> i) & 1 == 0 || _isHonest(ops[i]) == lie) continue;
            signers[n++] = ops[i];
            signedStake += oracle.operatorInfo(modelId, VERSION, ops[i]).stake;
        }
        _sortAscending(signers, n);
        uint256 base = oracle.stakeBase(id);
        bytes32 digest = oracle.reportDigest(id, output, signers);
        bytes[] memory signatures = new bytes[](n);
        for (uint256 i; i < n; ++i) {
            (uint8 v, bytes32 r, bytes32 s) = vm.sign(_keyOf(signers[i]), digest);
            signatures[i] = abi.encodePacked(r, s, v);
        }
        vm.prank(keeper);
        oracle.submitReport(id, output, signers, signatures);
        if (signedStake * 3 <= base * 2) ghostReportsBelowTwoThirds++;
        if (lie && oracle.getRequest(id).reveals != 0) ghostHonestMajorityOverridden++;
    }

    /// @dev Operator `who` proves request `req`'s answer: the truth, unless `kind` picks the colluders' lie
    ///      (one call in four) or a proof made for the next operator (one in four). Operators that had
    ///      committed are released, never slashed.
    function prove(uint256 who, uint256 req, uint256 kind) external clocked watched {
        uint256 id = _request(req);
        if (id == 0) return;
        address op = _operator(who);
        bool lie = kind % 4 == 1;
        bool stolen = kind % 4 == 2;
        int256[] memory input = new int256[](2);
        input[0] = _firstInput[id];
        input[1] = SafeCast.toInt256(id);
        int256 output = lie ? _truth(id) - LIE_OFFSET : _truth(id);
        uint256[8] memory proof;
        proof[0] = uint256(uint160(stolen ? _operator(who + 1) : op));
        address[] memory ops = oracle.operatorsOf(modelId, VERSION);
        uint256[] memory stakes = new uint256[](ops.length);
        for (uint256 i; i < ops.length; ++i) {
            stakes[i] = oracle.operatorInfo(modelId, VERSION, ops[i]).stake;
        }
        vm.prank(op);
        try oracle.fulfillByProof(id, input, output, proof) {
            if (lie || stolen) ghostBadProofsAccepted++;
            for (uint256 i; i < ops.length; ++i) {
                if (oracle.operatorInfo(modelId, VERSION, ops[i]).stake < stakes[i]) ghostSlashedByProof++;
            }
        } catch {}
    }

    /// @dev Mostly one to three blocks, so that several actions fit in one window; one roll in four jumps
    ///      up to a whole commit-and-reveal period.
    function roll(uint256 blocks) external clocked {
        _advance(bound(blocks, 1, blocks % 4 == 0 ? 11 : 3) * 12 - 1);
    }

    // ------------------------------------------------------------------ views for the invariants

    /// @notice What the oracle owes: operators' stakes and fees, withdrawable balances, open requests' fees.
    function owed() external view returns (uint256 sum) {
        address[] memory ops = oracle.operatorsOf(modelId, VERSION);
        for (uint256 i; i < ops.length; ++i) {
            InferenceOracle.Operator memory op = oracle.operatorInfo(modelId, VERSION, ops[i]);
            sum += uint256(op.stake) + op.fees;
        }
        for (uint256 i; i < _actors.length; ++i) {
            sum += oracle.withdrawable(_actors[i]);
        }
        uint256 count = oracle.requestCount();
        for (uint256 id = 1; id <= count; ++id) {
            InferenceOracle.Request memory r = oracle.getRequest(id);
            if (r.status == InferenceOracle.Status.Open) sum += r.fee;
        }
    }

    /// @notice Whether, once every window has passed, every open request can be finalized, every operator can
    ///         exit and everyone can withdraw, leaving the oracle empty; the state is rolled back afterwards.
    ///         Returns the first step that failed (empty: none).
    function drainAll() external returns (string memory failed) {
        uint256 snapshot = vm.snapshotState();
        failed = _drain();
        vm.revertToState(snapshot);
    }

    function _drain() internal returns (string memory) {
        InferenceOracle.Params memory p = oracle.params();
        vm.roll(block_ + p.commitWindow + p.revealWindow + 1);
        uint256 count = oracle.requestCount();
        for (uint256 id = 1; id <= count; ++id) {
            if (oracle.getRequest(id).status != InferenceOracle.Status.Open) continue;
            try oracle.finalize(id) {}
            catch {
                return "finalize";
            }
        }
        address[] memory ops = oracle.operatorsOf(modelId, VERSION);
        for (uint256 i; i < ops.length; ++i) {
            vm.prank(ops[i]);
            try oracle.exitOperator(modelId, VERSION) {}
            catch {
                return "exitOperator";
            }
        }
        for (uint256 i; i < _actors.length; ++i) {
            if (oracle.withdrawable(_actors[i]) == 0) continue;
            vm.prank(_actors[i]);
            try oracle.withdraw() {}
            catch {
                return "withdraw";
            }
        }
        if (token.balanceOf(address(oracle)) != 0) return "tokens left in the oracle";
        return "";
    }

    // ------------------------------------------------------------------ internals

    function _operator(uint256 seed) internal view returns (address) {
        return _actors[seed % OPERATORS];
    }

    function _isHonest(address op) internal view returns (bool) {
        for (uint256 i; i < HONEST; ++i) {
            if (_actors[i] == op) return true;
        }
        return false;
    }

    function _keyOf(address who) internal view returns (uint256) {
        for (uint256 i; i < _actors.length; ++i) {
            if (_actors[i] == who) return _keys[i];
        }
        revert("not an actor");
    }

    /// @dev One of the latest requests, or 0 when there is none.
    function _request(uint256 seed) internal view returns (uint256) {
        uint256 count = oracle.requestCount();
        if (count == 0) return 0;
        uint256 live = count < LIVE_REQUESTS ? count : LIVE_REQUESTS;
        return count - seed % live;
    }

    function _truth(uint256 id) internal view returns (int256) {
        return zkVerifier.truthOf(id);
    }

    function _answer(uint256 id, uint256 index) internal view returns (int256) {
        return index < HONEST ? _truth(id) : _truth(id) - LIE_OFFSET;
    }

    function _salt(uint256 id, address op) internal pure returns (bytes32) {
        return keccak256(abi.encode("salt", id, op));
    }

    function _revealed(uint256 id, address op) internal view returns (bool) {
        return _revealedBy[id][op];
    }

    function _sortAscending(address[] memory list, uint256 n) internal pure {
        for (uint256 i = 1; i < n; ++i) {
            address key = list[i];
            uint256 j = i;
            while (j > 0 && list[j - 1] > key) {
                list[j] = list[j - 1];
                --j;
            }
            list[j] = key;
        }
    }
}
