// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IInferenceConsumer, IInferenceOracle} from "./IInferenceOracle.sol";

/// @title CropInsurance
/// @notice Parametric crop insurance paid from a pool of underwriters' capital. Farmers buy a policy on a
///         (region, season) for a coverage and pay a premium; after the season the observed conditions of
///         the region are reported, the inference oracle scores them with a registered yield-loss model
///         (score 1_000_000 = total loss), and every policy there pays
///         `coverage * (score - deductible) / (1_000_000 - deductible)` when the score exceeds the deductible.
/// @dev Solvency: at purchase a policy's whole coverage is reserved, and a policy is sold only if the pool
///      (capital + premiums − unclaimed payouts) still covers every open policy's coverage. A settled payout
///      never exceeds the coverage it releases, so `balance >= owed + reserved` holds after every state
///      change; it is asserted (Panic 0x01 if ever broken) after each token movement.
///      One oracle request per (region, season) serves all its policies, so the oracle's callback does O(1)
///      work under its gas limit; each policy is then settled on its own (`settle`, anyone may call) and
///      farmers withdraw what they are owed (`claim`, pull payments).
///      Trust: the reporter (the owner by default) supplies the conditions of a region-season once the season
///      has ended; the oracle supplies the score. Underwriters hold shares of the pool's equity
///      (`balance − owed`), withdrawable up to the capital that no open policy reserves.
contract CropInsurance is IInferenceConsumer, Ownable, ReentrancyGuard {
    using SafeERC20 for IERC20;

    /// @notice 1.0 in the oracle's fixed point.
    uint256 public constant ONE = 1_000_000;
    /// @notice Basis points in 100 %.
    uint256 public constant BPS = 10_000;

    /// @notice Deployment parameters.
    /// @param premiumBps Premium as a share of coverage, in basis points (1..10_000).
    /// @param deductible Scores up to this (1_000_000 = 1.0) pay nothing; above it payouts grow linearly.
    /// @param featureCount How many features the model takes.
    /// @param retryAfter Seconds after a request with no answer before the assessment may be requested
    ///        again (the oracle refunds failed requests; the old request is then ignored).
    /// @param oracleFee The fee offered to the oracle per request, paid from the pool.
    /// @param weightsDigest The sha256 digest of the model version's canonical weights; the oracle's answer
    ///        must name it. Zero accepts any.
    struct Params {
        uint16 premiumBps;
        uint32 deductible;
        uint8 featureCount;
        uint64 retryAfter;
        uint256 oracleFee;
        bytes32 weightsDigest;
    }

    /// @notice A policy's life: bought (Active), then Settled once its region-season is scored.
    enum PolicyStatus {
        None,
        Active,
        Settled
    }

    /// @notice One policy.
    struct Policy {
        address farmer;
        uint32 region;
        uint32 season;
        PolicyStatus status;
        uint128 coverage;
        uint128 premium;
        uint128 payout;
    }

    /// @notice What is known of a (region, season).
    struct Assessment {
        uint32 openPolicies;
        bool reported;
        bool scored;
        uint64 requestedAt;
        uint32 score;
        uint256 requestId;
        bytes32 weightsDigest;
        int256[] features;
    }

    struct PendingRequest {
        uint32 region;
        uint32 season;
        bool live;
    }

    /// @notice The token of premiums, capital and payouts.
    IERC20 public immutable token;
    /// @notice The inference oracle, the only caller of `onInference`.
    IInferenceOracle public immutable oracle;
    /// @notice The yield-loss model in the ModelRegistry and its version.
    uint256 public immutable modelId;
    uint32 public immutable modelVersion;
    uint16 public immutable premiumBps;
    uint32 public immutable deductible;
    uint8 public immutable featureCount;
    uint64 public immutable retryAfter;
    bytes32 public immutable expectedWeightsDigest;

    /// @notice Fee offered per oracle request.
    uint256 public oracleFee;
    /// @notice Who reports the observed conditions of a region-season.
    address public reporter;

    /// @notice Sum of the coverages of Active policies: the worst case the pool must be able to pay.
    uint256 public totalReserved;
    /// @notice Sum of settled payouts not yet claimed.
    uint256 public totalOwed;
    /// @notice Underwriters' shares of the pool's equity.
    uint256 public totalShares;
    mapping(address underwriter => uint256) public sharesOf;
    /// @notice What each farmer can withdraw with `claim`.
    mapping(address farmer => uint256) public claimable;

    /// @notice End time of each opened season (zero: not opened).
    mapping(uint32 season => uint64) public seasonEnd;
    /// @notice Number of policies sold; ids are 1..policyCount.
    uint256 public policyCount;
    mapping(uint256 policyId => Policy) internal _policies;
    mapping(uint32 region => mapping(uint32 season => Assessment)) internal _assessments;
    mapping(uint256 requestId => PendingRequest) internal _requests;

    /// @notice `fund` added `amount` to the pool for `shares`.
    event Funded(address indexed funder, uint256 amount, uint256 shares);
    /// @notice `withdraw` burnt `shares` for `amount`.
    event Withdrawn(address indexed underwriter, uint256 shares, uint256 amount);
    /// @notice Policies for `season` are sold until `endTime`; assessment starts after it.
    event SeasonOpened(uint32 indexed season, uint64 endTime);
    /// @notice The conditions reporter changed.
    event ReporterSet(address indexed reporter);
    /// @notice The per-request oracle fee changed.
    event OracleFeeSet(uint256 fee);
    /// @notice The observed conditions of a region-season, fixed point (1_000_000 = 1.0).
    event ConditionsReported(uint32 indexed region, uint32 indexed season, int256[] features);
    /// @notice A policy was sold.
    event PolicyBought(
        uint256 indexed policyId,
        address indexed farmer,
        uint32 indexed region,
        uint32 season,
        uint256 coverage,
        uint256 premium
    );
    /// @notice An inference was requested for a region-season.
    event AssessmentRequested(uint32 indexed region, uint32 indexed season, uint256 indexed requestId, uint256 fee);
    /// @notice A request that went unanswered past `retryAfter` was replaced; its answer will be refused.
    event AssessmentAbandoned(uint32 indexed region, uint32 indexed season, uint256 indexed requestId);
    /// @notice The oracle answered: `score` is `output` clamped to [0, 1_000_000].
    event Assessed(
        uint32 indexed region,
        uint32 indexed season,
        uint256 indexed requestId,
        int256 output,
        uint256 score,
        bytes32 weightsDigest
    );
    /// @notice A policy was settled; `payout` became claimable by its farmer.
    event PolicySettled(uint256 indexed policyId, address indexed farmer, uint256 score, uint256 payout);
    /// @notice A farmer withdrew payouts.
    event Claimed(address indexed farmer, uint256 amount);

    /// @notice A deployment parameter is out of range.
    error InvalidParams();
    /// @notice An address that must be set is zero.
    error ZeroAddress();
    /// @notice An amount (or the shares it buys) is zero.
    error ZeroAmount();
    /// @notice Withdrawing more shares than held.
    error InsufficientShares(uint256 wanted, uint256 held);
    /// @notice The pool cannot take on or pay `needed` (only `available` is unreserved).
    error InsufficientCapital(uint256 needed, uint256 available);
    /// @notice The season was never opened.
    error SeasonNotOpen(uint32 season);
    /// @notice The season is already open.
    error SeasonAlreadyOpen(uint32 season);
    /// @notice A season's end must be in the future.
    error InvalidEndTime(uint64 endTime);
    /// @notice Policies are no longer sold for this season.
    error SeasonEnded(uint32 season, uint64 endTime);
    /// @notice The season has not ended yet.
    error SeasonNotEnded(uint32 season, uint64 endTime);
    /// @notice Only the reporter reports conditions.
    error NotReporter(address caller);
    /// @notice The model takes `expected` features.
    error WrongFeatureCount(uint256 expected, uint256 given);
    /// @notice Conditions of a region-season are reported once.
    error ConditionsAlreadyReported(uint32 region, uint32 season);
    /// @notice No conditions reported for the region-season yet.
    error NoConditions(uint32 region, uint32 season);
    /// @notice No policy in the region-season needs an assessment.
    error NothingToAssess(uint32 region, uint32 season);
    /// @notice The region-season already has its score.
    error AlreadyAssessed(uint32 region, uint32 season);
    /// @notice A request is in flight; a new one may be made from `retryAt`.
    error AssessmentPending(uint256 requestId, uint64 retryAt);
    /// @notice Only the oracle calls back.
    error OnlyOracle(address caller);
    /// @notice The callback names no live request of this contract.
    error UnknownRequest(uint256 requestId);
    /// @notice The answer came from other weights than the model version's.
    error WrongWeights(bytes32 expected, bytes32 given);
    /// @notice No such policy.
    error UnknownPolicy(uint256 policyId);
    /// @notice The policy is already settled.
    error PolicyNotActive(uint256 policyId);
    /// @notice The policy's region-season has no score yet.
    error NotAssessed(uint32 region, uint32 season);
    /// @notice Nothing to claim.
    error NothingToClaim();

    /// @notice Deploys the pool for one model version. The deployer is the owner and the first reporter.
    /// @param token_ The token of premiums, capital and payouts (MIND).
    /// @param oracle_ The inference oracle.
    /// @param modelId_ The yield-loss model in the ModelRegistry.
    /// @param version_ The model's version.
    /// @param params_ Premium rate, deductible, feature count, retry delay, oracle fee, expected weights digest.
    constructor(IERC20 token_, address oracle_, uint256 modelId_, uint32 version_, Params memory params_)
        Ownable(msg.sender)
    {
        if (address(token_) == address(0) || oracle_ == address(0)) revert ZeroAddress();
        if (
            params_.premiumBps == 0 || params_.premiumBps > BPS || params_.deductible >= ONE
                || params_.featureCount == 0 || params_.retryAfter == 0
        ) revert InvalidParams();
        token = token_;
        oracle = IInferenceOracle(oracle_);
        modelId = modelId_;
        modelVersion = version_;
        premiumBps = params_.premiumBps;
        deductible = params_.deductible;
        featureCount = params_.featureCount;
        retryAfter = params_.retryAfter;
        expectedWeightsDigest = params_.weightsDigest;
        oracleFee = params_.oracleFee;
        reporter = msg.sender;
        emit ReporterSet(msg.sender);
        emit OracleFeeSet(params_.oracleFee);
    }

    // ---------------------------------------------------------------------------------------------------
    // Underwriters
    // ---------------------------------------------------------------------------------------------------

    /// @notice Adds `amount` to the pool's capital (approve it first) for shares of its equity.
    /// @param amount Tokens to add.
    /// @return shares The shares minted to the caller.
    function fund(uint256 amount) external nonReentrant returns (uint256 shares) {
        if (amount == 0) revert ZeroAmount();
        uint256 before = _balance();
        uint256 equityBefore = before - totalOwed;
        token.safeTransferFrom(msg.sender, address(this), amount);
        uint256 received = _balance() - before;
        // One virtual share and one virtual token keep the first deposit and a wiped-out pool well defined
        // and make inflating the share price by donation unprofitable; rounding favours the pool.
        shares = received * (totalShares + 1) / (equityBefore + 1);
        if (shares == 0) revert ZeroAmount();
        totalShares += shares;
        sharesOf[msg.sender] += shares;
        emit Funded(msg.sender, received, shares);
        _assertSolvent();
    }

    /// @notice Burns `shares` for their part of the pool's equity, paid from capital no policy reserves.
    /// @param shares Shares to burn.
    /// @return amount Tokens sent to the caller.
    function withdraw(uint256 shares) external nonReentrant returns (uint256 amount) {
        if (shares == 0) revert ZeroAmount();
        uint256 held = sharesOf[msg.sender];
        if (shares > held) revert InsufficientShares(shares, held);
        uint256 balance = _balance();
        amount = shares * (balance - totalOwed + 1) / (totalShares + 1);
        uint256 free = balance - totalOwed - totalReserved;
        if (amount > free) revert InsufficientCapital(amount, free);
        sharesOf[msg.sender] = held - shares;
        totalShares -= shares;
        token.safeTransfer(msg.sender, amount);
        emit Withdrawn(msg.sender, shares, amount);
        _assertSolvent();
    }

    // ---------------------------------------------------------------------------------------------------
    // Owner
    // ---------------------------------------------------------------------------------------------------

    /// @notice Opens `season`: policies are sold until `endTime`, assessed after it.
    /// @param season The season's id (e.g. a year and a growing period).
    /// @param endTime Unix time at which sales close and assessment may start.
    function openSeason(uint32 season, uint64 endTime) external onlyOwner {
        if (seasonEnd[season] != 0) revert SeasonAlreadyOpen(season);
        if (endTime <= block.timestamp) revert InvalidEndTime(endTime);
        seasonEnd[season] = endTime;
        emit SeasonOpened(season, endTime);
    }

    /// @notice Appoints who reports regions' conditions (a weather-data feed, a multisig).
    /// @param reporter_ The new reporter.
    function setReporter(address reporter_) external onlyOwner {
        if (reporter_ == address(0)) revert ZeroAddress();
        reporter = reporter_;
        emit ReporterSet(reporter_);
    }

    /// @notice Sets the fee offered to the oracle for later requests.
    /// @param fee The fee in tokens.
    function setOracleFee(uint256 fee) external onlyOwner {
        oracleFee = fee;
        emit OracleFeeSet(fee);
    }

    /// @notice Records the observed conditions of a region-season after it ended; they are final.
    /// @param region The region.
    /// @param season The season, which must have ended.
    /// @param features The model's inputs, fixed point (1_000_000 = 1.0), `featureCount` of them.
    function reportConditions(uint32 region, uint32 season, int256[] calldata features) external {
        if (msg.sender != reporter) revert NotReporter(msg.sender);
        _requireEnded(season);
        if (features.length != featureCount) revert WrongFeatureCount(featureCount, features.length);
        Assessment storage a = _assessments[region][season];
        if (a.reported) revert ConditionsAlreadyReported(region, season);
        a.reported = true;
        a.features = features;
        emit ConditionsReported(region, season, features);
    }

    // ---------------------------------------------------------------------------------------------------
    // Farmers
    // ---------------------------------------------------------------------------------------------------

    /// @notice Buys a policy on (`region`, `season`) paying `coverage` at most; the premium is pulled from
    ///         the caller (approve it first). Refused if the pool could not pay every open policy in full.
    /// @param region The insured region.
    /// @param season The season, open and not ended.
    /// @param coverage The most the policy pays.
    /// @return policyId The new policy's id.
    function buyPolicy(uint32 region, uint32 season, uint256 coverage)
        external
        nonReentrant
        returns (uint256 policyId)
    {
        uint64 end = seasonEnd[season];
        if (end == 0) revert SeasonNotOpen(season);
        if (block.timestamp >= end) revert SeasonEnded(season, end);
        if (coverage == 0) revert ZeroAmount();
        uint128 coverage128 = SafeCast.toUint128(coverage); // before any arithmetic on it
        uint256 premium = (coverage * premiumBps + BPS - 1) / BPS;
        uint256 available = _balance() + premium - totalOwed - totalReserved;
        if (coverage > available) revert InsufficientCapital(coverage, available);
        policyId = ++policyCount;
        _policies[policyId] = Policy({
            farmer: msg.sender,
            region: region,
            season: season,
            status: PolicyStatus.Active,
            coverage: coverage128,
            premium: uint128(premium),
            payout: 0
        });
        totalReserved += coverage;
        _assessments[region][season].openPolicies += 1;
        token.safeTransferFrom(msg.sender, address(this), premium);
        emit PolicyBought(policyId, msg.sender, region, season, coverage, premium);
        _assertSolvent();
    }

    /// @notice Withdraws every payout owed to the caller.
    /// @return amount The tokens sent.
    function claim() external nonReentrant returns (uint256 amount) {
        amount = claimable[msg.sender];
        if (amount == 0) revert NothingToClaim();
        claimable[msg.sender] = 0;
        totalOwed -= amount;
        token.safeTransfer(msg.sender, amount);
        emit Claimed(msg.sender, amount);
        _assertSolvent();
    }

    // ---------------------------------------------------------------------------------------------------
    // Assessment
    // ---------------------------------------------------------------------------------------------------

    /// @notice Asks the oracle to score a region-season whose conditions are reported; anyone may call.
    ///         The fee comes from the pool's unreserved capital. While a request is in flight no other is
    ///         made; after `retryAfter` without an answer (a failed, refunded request) it may be renewed.
    /// @dev The oracle must answer in a later call than `request` (commit/reveal does): the request id is
    ///      recorded only once `request` returns, so a synchronous callback would be refused as unknown.
    /// @param region The region.
    /// @param season The season, ended.
    /// @return requestId The oracle's request id.
    function assess(uint32 region, uint32 season) external nonReentrant returns (uint256 requestId) {
        _requireEnded(season);
        Assessment storage a = _assessments[region][season];
        if (a.scored) revert AlreadyAssessed(region, season);
        if (a.openPolicies == 0) revert NothingToAssess(region, season);
        if (!a.reported) revert NoConditions(region, season);
        if (a.requestedAt != 0) {
            uint64 retryAt = a.requestedAt + retryAfter;
            if (block.timestamp < retryAt) revert AssessmentPending(a.requestId, retryAt);
            delete _requests[a.requestId];
            emit AssessmentAbandoned(region, season, a.requestId);
        }
        uint256 fee = oracleFee;
        uint256 free = _balance() - totalOwed - totalReserved;
        if (fee > free) revert InsufficientCapital(fee, free);
        token.forceApprove(address(oracle), fee);
        requestId =
            oracle.request(modelId, modelVersion, a.features, bytes32(0), IInferenceOracle.Aggregation.Median, fee);
        token.forceApprove(address(oracle), 0);
        a.requestId = requestId;
        a.requestedAt = uint64(block.timestamp);
        _requests[requestId] = PendingRequest({region: region, season: season, live: true});
        emit AssessmentRequested(region, season, requestId, fee);
        _assertSolvent();
    }

    /// @notice The oracle's answer: records the region-season's score (clamped to [0, 1_000_000]).
    /// @param requestId The request answered.
    /// @param output The model's output, 1_000_000 = total loss.
    /// @param weightsDigest The digest of the weights that answered.
    function onInference(uint256 requestId, int256 output, bytes32 weightsDigest) external override {
        if (msg.sender != address(oracle)) revert OnlyOracle(msg.sender);
        PendingRequest memory pending = _requests[requestId];
        if (!pending.live) revert UnknownRequest(requestId);
        if (expectedWeightsDigest != bytes32(0) && weightsDigest != expectedWeightsDigest) {
            revert WrongWeights(expectedWeightsDigest, weightsDigest);
        }
        delete _requests[requestId];
        Assessment storage a = _assessments[pending.region][pending.season];
        uint256 score = output <= 0 ? 0 : output >= int256(ONE) ? ONE : uint256(output);
        a.scored = true;
        a.requestedAt = 0;
        a.score = uint32(score);
        a.weightsDigest = weightsDigest;
        emit Assessed(pending.region, pending.season, requestId, output, score, weightsDigest);
    }

    /// @notice Settles a policy of a scored region-season: its payout becomes claimable by its farmer and
    ///         its reserved coverage is released. Anyone may call.
    /// @param policyId The policy.
    /// @return payout The payout, at most the coverage.
    function settle(uint256 policyId) external nonReentrant returns (uint256 payout) {
        Policy storage p = _policies[policyId];
        if (p.status == PolicyStatus.None) revert UnknownPolicy(policyId);
        if (p.status != PolicyStatus.Active) revert PolicyNotActive(policyId);
        Assessment storage a = _assessments[p.region][p.season];
        if (!a.scored) revert NotAssessed(p.region, p.season);
        uint256 coverage = p.coverage;
        payout = payoutFor(coverage, a.score);
        p.status = PolicyStatus.Settled;
        p.payout = uint128(payout);
        a.openPolicies -= 1;
        totalReserved -= coverage;
        totalOwed += payout;
        claimable[p.farmer] += payout;
        emit PolicySettled(policyId, p.farmer, a.score, payout);
        _assertSolvent();
    }

    // ---------------------------------------------------------------------------------------------------
    // Views
    // ---------------------------------------------------------------------------------------------------

    /// @notice The payout of `coverage` at `score`: zero up to the deductible, then linear up to the coverage.
    /// @param coverage The policy's coverage.
    /// @param score The score, 1_000_000 = total loss.
    /// @return The payout, rounded down.
    function payoutFor(uint256 coverage, uint256 score) public view returns (uint256) {
        if (score <= deductible) return 0;
        if (score >= ONE) return coverage;
        return coverage * (score - deductible) / (ONE - deductible);
    }

    /// @notice The premium of a policy of `coverage` (rounded up).
    /// @param coverage The coverage.
    /// @return The premium.
    function premiumFor(uint256 coverage) external view returns (uint256) {
        return (coverage * premiumBps + BPS - 1) / BPS;
    }

    /// @notice A policy.
    /// @param policyId The policy.
    /// @return The policy (status None when unknown).
    function getPolicy(uint256 policyId) external view returns (Policy memory) {
        return _policies[policyId];
    }

    /// @notice What is known of a region-season.
    /// @param region The region.
    /// @param season The season.
    /// @return The assessment, with the reported features.
    function getAssessment(uint32 region, uint32 season) external view returns (Assessment memory) {
        return _assessments[region][season];
    }

    /// @notice The pool's accounts.
    /// @return balance Tokens held.
    /// @return owed Settled payouts not yet claimed.
    /// @return reserved Coverage of open policies.
    /// @return free Capital neither owed nor reserved (fees and withdrawals come from it).
    function pool() external view returns (uint256 balance, uint256 owed, uint256 reserved, uint256 free) {
        balance = _balance();
        owed = totalOwed;
        reserved = totalReserved;
        free = balance - owed - reserved;
    }

    function _balance() internal view returns (uint256) {
        return token.balanceOf(address(this));
    }

    function _requireEnded(uint32 season) internal view {
        uint64 end = seasonEnd[season];
        if (end == 0) revert SeasonNotOpen(season);
        if (block.timestamp < end) revert SeasonNotEnded(season, end);
    }

    /// @dev The pool never owes more than it holds, even if every open policy paid in full.
    function _assertSolvent() internal view {
        assert(_balance() >= totalOwed + totalReserved);
    }
}
