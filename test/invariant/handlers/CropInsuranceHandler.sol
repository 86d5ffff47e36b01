// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {CropInsurance} from "../../../contracts/CropInsurance.sol";
import {InsuranceTestOracle} from "../../../contracts/InsuranceTestOracle.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Actors} from "./Actors.sol";

/// @notice Every call the campaign makes into CropInsurance (and its test oracle) goes through here, so that an
///         ABI change is adapted in this one file. Actors 0-2 farm, actors 3-5 underwrite; the handler owns the
///         pool and reports conditions. Malice is whatever the fuzzer's order makes of it: an underwriter
///         leaving right after a loss is scored, a farmer buying just before a season ends, a keeper assessing
///         or settling at any moment, an oracle that fails requests.
contract CropInsuranceHandler is Actors {
    uint256 internal constant FARMERS = 3;
    uint256 internal constant REGIONS = 2;
    /// @dev Actions pick among the latest seasons only, so that old ended ones do not starve new sales.
    uint256 internal constant LIVE_SEASONS = 3;
    uint256 internal constant MAX_POLICIES = 24;
    int256 internal constant HALF_LOSS = 500_000;
    uint64 internal constant SALES_CLOSE_BEFORE = 1 hours;
    uint64 internal constant ASSESSMENT_WINDOW = 2 days;

    CropInsurance public immutable insurance;
    InsuranceTestOracle public immutable oracle;

    uint32[] internal _seasons;
    /// @notice Payouts credited to each farmer and not yet claimed, as the campaign saw them happen.
    mapping(address farmer => uint256) public ghostClaimable;
    /// @notice Fees that the test oracle kept for answered requests.
    uint256 public ghostOracleKept;
    /// @notice Withdrawals that paid more than the shares' part of equity net of losses already scored.
    uint256 public ghostWithdrawalsAboveNetEquity;
    /// @notice The largest such excess, in tokens.
    uint256 public ghostLargestExcess;
    mapping(bytes4 action => uint256) public calls;

    constructor() Actors(6, 1_000_000 ether) {
        oracle = new InsuranceTestOracle(token);
        insurance = new CropInsurance(
            token,
            address(oracle),
            1,
            1,
            CropInsurance.Params({
                premiumBps: 500,
                deductible: 200_000,
                featureCount: 2,
                salesCloseBefore: SALES_CLOSE_BEFORE,
                assessmentWindow: ASSESSMENT_WINDOW,
                oracleFee: 1 ether,
                weightsDigest: bytes32(0)
            })
        );
        _addHolder(address(oracle));
        _addHolder(address(insurance));
        for (uint256 i; i < _actors.length; ++i) {
            vm.prank(_actors[i]);
            token.approve(address(insurance), type(uint256).max);
        }
    }

    // ------------------------------------------------------------------ underwriters

    function fund(uint256 who, uint256 amount) external clocked {
        address u = _underwriter(who);
        amount = bound(amount, 1, 50_000 ether);
        vm.prank(u);
        insurance.fund(amount, 0);
        calls[this.fund.selector]++;
    }

    /// @dev Also measures what the withdrawal should have paid had it borne the losses already scored.
    function withdraw(uint256 who, uint256 fraction) external clocked {
        address u = _underwriter(who);
        uint256 held = insurance.sharesOf(u);
        if (held == 0) return;
        uint256 shares = bound(fraction, 1, held);
        (uint256 balance, uint256 owed,,,) = insurance.pool();
        uint256 scoredLoss = scoredUnsettledPayouts();
        uint256 equity = balance - owed;
        uint256 netEquity = equity > scoredLoss ? equity - scoredLoss : 0;
        uint256 fair = shares * (netEquity + 1) / (insurance.totalShares() + 1);
        vm.prank(u);
        uint256 paid = insurance.withdraw(shares);
        if (paid > fair) {
            ghostWithdrawalsAboveNetEquity++;
            if (paid - fair > ghostLargestExcess) ghostLargestExcess = paid - fair;
        }
        calls[this.withdraw.selector]++;
    }

    // ------------------------------------------------------------------ owner and reporter

    function openSeason(uint256 duration) external clocked {
        uint32 season = uint32(_seasons.length + 1);
        uint256 end = block.timestamp + SALES_CLOSE_BEFORE + bound(duration, 1 hours, 3 days);
        insurance.openSeason(season, SafeCast.toUint64(end));
        _seasons.push(season);
        calls[this.openSeason.selector]++;
    }

    function setOracleFee(uint256 fee) external clocked {
        insurance.setOracleFee(bound(fee, 0, 20 ether));
        calls[this.setOracleFee.selector]++;
    }

    function reportConditions(uint256 region, uint256 season, int256 a, int256 b) external clocked {
        if (_seasons.length == 0) return;
        int256[] memory features = new int256[](2);
        features[0] = bound(a, -2_000_000, 2_000_000);
        features[1] = bound(b, -2_000_000, 2_000_000);
        insurance.reportConditions(SafeCast.toUint32(region % REGIONS), _season(season), features);
        calls[this.reportConditions.selector]++;
    }

    // ------------------------------------------------------------------ farmers and keepers

    function buyPolicy(uint256 who, uint256 region, uint256 season, uint256 coverage) external clocked {
        if (_seasons.length == 0 || insurance.policyCount() >= MAX_POLICIES) return;
        address farmer = _actors[who % FARMERS];
        // Mostly within the free capital, so that sales happen; one in eight asks for more than the pool has.
        (,,,, uint256 free) = insurance.pool();
        uint256 most = coverage % 8 == 0 ? 40_000 ether : free / 2 + 1;
        vm.prank(farmer);
        insurance.buyPolicy(SafeCast.toUint32(region % REGIONS), _season(season), bound(coverage, 1, most));
        calls[this.buyPolicy.selector]++;
    }

    /// @dev The reporter's feed reports an ended season's conditions if it has not yet (so that assessments
    ///      happen often enough for the campaign to reach settlement), then a keeper asks for the score.
    function assess(uint256 keeper, uint256 region, uint256 season) external clocked {
        if (_seasons.length == 0) return;
        uint32 r = SafeCast.toUint32(region % REGIONS);
        uint32 s = _season(season);
        if (!insurance.getAssessment(r, s).reported && now_ >= insurance.seasonEnd(s)) {
            insurance.reportConditions(r, s, new int256[](2));
        }
        vm.prank(_actor(keeper));
        insurance.assess(r, s);
        calls[this.assess.selector]++;
    }

    /// @dev Starts at a random policy and settles the first Active one (scored or not: settling an unscored
    ///      one must revert), so that settlement is not starved by picks of already settled policies.
    function settle(uint256 keeper, uint256 policy) external clocked {
        uint256 count = insurance.policyCount();
        if (count == 0) return;
        uint256 id = 1 + policy % count;
        for (uint256 tries; tries < count; ++tries) {
            if (insurance.getPolicy(id).status == CropInsurance.PolicyStatus.Active) break;
            id = id == count ? 1 : id + 1;
        }
        address farmer = insurance.getPolicy(id).farmer;
        vm.prank(_actor(keeper));
        uint256 payout = insurance.settle(id);
        ghostClaimable[farmer] += payout;
        calls[this.settle.selector]++;
    }

    function claim(uint256 who) external clocked {
        address farmer = _actors[who % FARMERS];
        vm.prank(farmer);
        uint256 amount = insurance.claim();
        ghostClaimable[farmer] -= amount;
        calls[this.claim.selector]++;
    }

    // ------------------------------------------------------------------ the oracle

    /// @dev Picks an open request from a random start. One call in four fails it (refunding the fee); the
    ///      others answer with outputs past both ends of [0, 1_000_000] so that clamping is exercised.
    function oracleAnswer(uint256 request, int256 output) external clocked {
        uint256 count = oracle.requestCount();
        if (count == 0) return;
        uint256 id = request % count;
        for (uint256 tries; tries < count && !oracle.getRequest(id).open; ++tries) {
            id = (id + 1) % count;
        }
        if (output % 4 == 0) {
            oracle.refund(id, 0);
            calls[bytes4(keccak256("oracleFail"))]++;
            return;
        }
        uint256 fee = oracle.getRequest(id).fee;
        oracle.fulfill(id, bound(output, -500_000, 1_500_000), bytes32(0));
        ghostOracleKept += fee;
        calls[this.oracleAnswer.selector]++;
    }

    /// @dev A keeper expires a region-season left unscored; it waits for the end of the assessment window (the
    ///      clock moves on to it) unless `keeper` is a multiple of eight, which tries at once.
    function expire(uint256 keeper, uint256 region, uint256 season) external clocked {
        if (_seasons.length == 0) return;
        uint32 r = SafeCast.toUint32(region % REGIONS);
        uint32 s = _season(season);
        uint256 deadline = uint256(insurance.seasonEnd(s)) + ASSESSMENT_WINDOW;
        if (keeper % 8 != 0 && now_ < deadline) _advance(deadline - now_);
        vm.prank(_actor(keeper));
        insurance.expire(r, s);
        calls[this.expire.selector]++;
    }

    /// @dev Anyone moves the refunds of failed requests from the oracle into the pool's capital.
    function collectOracleRefunds(uint256 who) external clocked {
        vm.prank(_actor(who));
        insurance.collectOracleRefunds();
        calls[this.collectOracleRefunds.selector]++;
    }

    function warp(uint256 secs) external clocked {
        _advance(bound(secs, 1, 2 days));
        calls[this.warp.selector]++;
    }

    // ------------------------------------------------------------------ views for the invariants

    /// @notice Payouts that scored region-seasons will owe once their open policies are settled.
    function scoredUnsettledPayouts() public view returns (uint256 loss) {
        uint256 count = insurance.policyCount();
        for (uint256 id = 1; id <= count; ++id) {
            CropInsurance.Policy memory p = insurance.getPolicy(id);
            if (p.status != CropInsurance.PolicyStatus.Active) continue;
            CropInsurance.Assessment memory a = insurance.getAssessment(p.region, p.season);
            if (a.scored) loss += insurance.payoutFor(p.coverage, a.score);
        }
    }

    /// @notice Sum of the coverages of Active policies of region-seasons neither scored nor expired (the others'
    ///      are committed instead), recomputed policy by policy.
    function activeCoverage() external view returns (uint256 sum) {
        uint256 count = insurance.policyCount();
        for (uint256 id = 1; id <= count; ++id) {
            CropInsurance.Policy memory p = insurance.getPolicy(id);
            if (p.status != CropInsurance.PolicyStatus.Active) continue;
            CropInsurance.Assessment memory a = insurance.getAssessment(p.region, p.season);
            if (!a.scored && !a.expired) sum += p.coverage;
        }
    }

    /// @notice Oracle fees set aside for region-seasons' first requests and not spent yet.
    function feeReserves() external view returns (uint256 sum) {
        for (uint256 i; i < _seasons.length; ++i) {
            for (uint32 region; region < REGIONS; ++region) {
                sum += insurance.getAssessment(region, _seasons[i]).feeReserve;
            }
        }
    }

    /// @notice Payouts and refunds committed by scored or expired region-seasons, summed over every one.
    function sumCommitted() external view returns (uint256 sum) {
        for (uint256 i; i < _seasons.length; ++i) {
            for (uint32 region; region < REGIONS; ++region) {
                sum += insurance.getAssessment(region, _seasons[i]).committed;
            }
        }
    }

    /// @notice Sum of the farmers' claimable balances.
    function sumClaimable() external view returns (uint256 sum) {
        for (uint256 i; i < FARMERS; ++i) {
            sum += insurance.claimable(_actors[i]);
        }
    }

    /// @notice Sum of the underwriters' shares.
    function sumShares() external view returns (uint256 sum) {
        for (uint256 i = FARMERS; i < _actors.length; ++i) {
            sum += insurance.sharesOf(_actors[i]);
        }
    }

    /// @notice Fees of the test oracle's failed requests not yet collected by the pool.
    function oracleRefundsOwed() external view returns (uint256) {
        return oracle.withdrawable(address(insurance));
    }

    /// @notice Fees of the test oracle's requests neither answered nor refunded.
    function oracleOpenFees() external view returns (uint256 sum) {
        uint256 count = oracle.requestCount();
        for (uint256 id; id < count; ++id) {
            InsuranceTestOracle.Request memory r = oracle.getRequest(id);
            if (r.open) sum += r.fee;
        }
    }

    /// @notice Whether, from the current state, every policy can be brought to Settled, every farmer paid and
    ///         every underwriter paid out in full once the seasons end and the oracle answers; the state is
    ///         rolled back afterwards. Returns the first step that failed (empty: none).
    /// @param ownerWaivesFee Whether the owner first sets the oracle fee to zero (a pool whose free capital
    ///        is below the fee cannot pay for an assessment otherwise).
    function drainAll(bool ownerWaivesFee) external returns (string memory failed) {
        uint256 snapshot = vm.snapshotState();
        if (ownerWaivesFee) insurance.setOracleFee(0);
        failed = _drain();
        vm.revertToState(snapshot);
    }

    /// @dev The oracle first answers every request it still holds (a region-season with a live request can be
    ///      neither assessed again nor expired); then each unscored region-season is assessed at its season's
    ///      end or, when that fails (a pool that cannot pay the fee), expired after its assessment window.
    function _drain() internal returns (string memory) {
        vm.warp(now_);
        uint256 requests = oracle.requestCount();
        for (uint256 id; id < requests; ++id) {
            if (!oracle.getRequest(id).open) continue;
            try oracle.fulfill(id, HALF_LOSS, bytes32(0)) {}
            catch {
                return "fulfill";
            }
        }
        uint256 count = insurance.policyCount();
        for (uint256 id = 1; id <= count; ++id) {
            CropInsurance.Policy memory p = insurance.getPolicy(id);
            if (p.status != CropInsurance.PolicyStatus.Active) continue;
            CropInsurance.Assessment memory a = insurance.getAssessment(p.region, p.season);
            if (!a.scored && !a.expired && !_assessNow(p.region, p.season)) {
                uint256 deadline = uint256(insurance.seasonEnd(p.season)) + ASSESSMENT_WINDOW;
                // The campaign sets the clock with cheatcodes: nobody can manipulate it.
                // forge-lint: disable-next-line(block-timestamp)
                if (block.timestamp < deadline) vm.warp(deadline);
                try insurance.expire(p.region, p.season) {}
                catch {
                    return "expire";
                }
            }
            try insurance.settle(id) {}
            catch {
                return "settle";
            }
        }
        if (oracle.withdrawable(address(insurance)) != 0) {
            try insurance.collectOracleRefunds() {}
            catch {
                return "collectOracleRefunds";
            }
        }
        for (uint256 i; i < FARMERS; ++i) {
            if (insurance.claimable(_actors[i]) == 0) continue;
            vm.prank(_actors[i]);
            try insurance.claim() {}
            catch {
                return "claim";
            }
        }
        for (uint256 i = FARMERS; i < _actors.length; ++i) {
            uint256 shares = insurance.sharesOf(_actors[i]);
            // A pool wiped out by payouts has nothing to pay: its shares are worthless, not locked.
            if (shares == 0 || insurance.previewWithdraw(shares) == 0) continue;
            vm.prank(_actors[i]);
            try insurance.withdraw(shares) {}
            catch {
                return "withdraw";
            }
        }
        return "";
    }

    /// @dev Reports and assesses a region-season at its season's end if it is still assessable there, and the
    ///      oracle answers; false when any step is refused.
    function _assessNow(uint32 region, uint32 season) internal returns (bool) {
        uint256 end = insurance.seasonEnd(season);
        // The campaign sets the clock with cheatcodes: nobody can manipulate it.
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp >= end + ASSESSMENT_WINDOW) return false;
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp < end) vm.warp(end);
        if (!insurance.getAssessment(region, season).reported) {
            try insurance.reportConditions(region, season, new int256[](2)) {}
            catch {
                return false;
            }
        }
        try insurance.assess(region, season) returns (uint256 requestId) {
            try oracle.fulfill(requestId, HALF_LOSS, bytes32(0)) {
                return true;
            } catch {
                return false;
            }
        } catch {
            return false;
        }
    }

    function _underwriter(uint256 seed) internal view returns (address) {
        return _actors[FARMERS + seed % (_actors.length - FARMERS)];
    }

    function _season(uint256 seed) internal view returns (uint32) {
        uint256 live = _seasons.length < LIVE_SEASONS ? _seasons.length : LIVE_SEASONS;
        return _seasons[_seasons.length - 1 - seed % live];
    }
}
