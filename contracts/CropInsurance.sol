// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IInferenceOracle} from "./IInferenceOracle.sol";
import {OracleConsumer} from "./OracleConsumer.sol";

/// @title CropInsurance
/// @notice Parametric crop insurance paid from a pool of underwriters' capital. Farmers buy a policy on a
///         (region, season) for a coverage and pay a premium; after the season the observed conditions of
///         the region are reported, the inference oracle scores them with a registered yield-loss model
///         (score 1_000_000 = total loss), and every policy there pays
///         `coverage * (score - deductible) / (1_000_000 - deductible)` when the score exceeds the deductible.
/// @dev Accounts. Every token the pool holds is in one of four parts: `owed` (settled payouts and refunds not
///      yet claimed), `committed` (payouts of region-seasons already scored, or premium refunds of expired
///      ones, whose policies are not settled yet), `reserved` (the whole coverage of policies whose
///      region-season has no score yet: the worst case, with the oracle fee of its first request) and `free`
///      capital. A policy is sold only if the pool still covers every open policy in full. Scoring a
///      region-season turns its reserved coverage into its committed payout, at most the coverage, right away,
///      before any policy is settled, so `balance >= owed + committed + reserved` holds after every state
///      change; it is asserted (Panic 0x01 if ever broken) after each token movement.
///      Underwriters' shares. A deposit buys shares at the optimistic equity (`balance − owed − committed`:
///      open policies assumed to pay nothing) and a withdrawal pays at the pessimistic one (`free`: open
///      policies assumed to pay in full). Neither side of the spread can take value from the other
///      underwriters: a loss that is scored is already deducted from both, and one that is only foreseeable
///      (a drought reported, or seen coming during the season, before the oracle scores it) is borne in full
///      by whoever leaves before it is scored, as is the fee of the request that scores it (set aside with the
///      region-season's first policy). Drawing the line at "reported" or "season ended" instead would
///      leave a window in which informed underwriters leave first, since conditions build up during a season
///      and the reporter may report late. The cost: capital withdrawn while policies are open forgoes its
///      share of their expected surplus, which goes to the underwriters who keep carrying the risk; and a
///      deposit made while a reported loss awaits its score pays for the risk it joins (`previewFund` shows
///      the price). The fee of a retry comes from free capital; the failed request's refund comes back
///      with `collectOracleRefunds`.
///      Liveness. Sales close `salesCloseBefore` seconds before the season's end (adverse selection). A
///      region-season not scored by `seasonEnd + assessmentWindow` (the model version deprecated, too few
///      operators, no conditions reported, every request failing) can be expired by anyone: its reservation
///      is released and each policy's premium refunded, so nothing stays reserved for good. New requests
///      stop at that deadline, so the region-season ends either scored or expired, never raced.
///      One oracle request per (region, season) serves all its policies, so the oracle's callback does O(1)
///      work under its gas limit; each policy is then settled on its own (`settle`, anyone may call) and
///      farmers withdraw what they are owed (`claim`, pull payments). Refunds of failed requests wait in the
///      oracle's pull balance until anyone calls `collectOracleRefunds`.
///      Trust: the reporter (the owner by default) supplies the conditions of a region-season once the season
///      has ended; the oracle supplies the score.
contract CropInsurance is OracleConsumer, Ownable, ReentrancyGuard {
    using SafeERC20 for IERC20;

    /// @notice 1.0 in the oracle's fixed point.
    uint256 public constant ONE = 1_000_000;
    /// @notice Basis points in 100 %.
    uint256 public constant BPS = 10_000;

    /// @notice Deployment parameters.
    /// @param premiumBps Premium as a share of coverage, in basis points (1..10_000).
    /// @param deductible Scores up to this (1_000_000 = 1.0) pay nothing; above it payouts grow linearly.
    /// @param featureCount How many features the model takes.
    /// @param salesCloseBefore Seconds before a season's end at which its sales close (at least 1). The pool
    ///        knows only a season's end, so the close is fixed relative to it: set it to cover the part of the
    ///        season whose weather already tells the outcome (e.g. 60 days of a 90-day season).
    /// @param assessmentWindow Seconds after a season's end during which its region-seasons may be assessed;
    ///        after it, one with no score may be expired and its premiums refunded (at least 1; leave the
    ///        reporter and several oracle rounds time, e.g. 30 days).
    /// @param oracleFee The fee offered to the oracle per request, paid from the pool.
    /// @param weightsDigest The sha256 digest of the model version's canonical weights; the oracle's answer
    ///        must name it. Zero accepts any.
    struct Params {
        uint16 premiumBps;
        uint32 deductible;
        uint8 featureCount;
        uint64 salesCloseBefore;
        uint64 assessmentWindow;
        uint256 oracleFee;
        bytes32 weightsDigest;
    }

    /// @notice A policy's life: bought (Active), then Settled once its region-season is scored, or Refunded
    ///         (its premium) once its region-season expired unscored.
    enum PolicyStatus {
        None,
        Active,
        Settled,
        Refunded
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
    /// @param openPolicies Policies not settled or refunded yet.
    /// @param reported Whether its conditions are reported.
    /// @param scored Whether the oracle's score is in.
    /// @param expired Whether it was expired unscored (premiums refunded).
    /// @param requested Whether a request was made; `requestId` is then the latest.
    /// @param score The score once scored, clamped to [0, 1_000_000].
    /// @param feeReserve The oracle fee set aside for its first request when its first policy was sold.
    /// @param coverage Total coverage sold (never decreases: policies are sold before any score).
    /// @param premiums Total premiums paid.
    /// @param committed Payouts (or refunds) of its open policies that the pool has committed and not yet
    ///        settled: payoutFor(coverage, score) at scoring, which bounds the sum of the rounded-down
    ///        payouts; the rounding left over is released with the last policy.
    struct Assessment {
        uint32 openPolicies;
        bool reported;
        bool scored;
        bool expired;
        bool requested;
        uint32 score;
        uint128 feeReserve;
        uint128 coverage;
        uint128 premiums;
        uint128 committed;
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
    /// @notice The yield-loss model in the ModelRegistry and its version.
    uint256 public immutable modelId;
    uint32 public immutable modelVersion;
    uint16 public immutable premiumBps;
    uint32 public immutable deductible;
    uint8 public immutable featureCount;
    uint64 public immutable salesCloseBefore;
    uint64 public immutable assessmentWindow;
    bytes32 public immutable expectedWeightsDigest;

    /// @notice Fee offered per oracle request.
    uint256 public oracleFee;
    /// @notice Who reports the observed conditions of a region-season.
    address public reporter;

    /// @notice The worst case still ahead: the coverage of Active policies in unscored, unexpired
    ///         region-seasons, plus the oracle fee set aside for each of them not yet requested.
    uint256 public totalReserved;
    /// @notice Sum of the committed payouts and refunds of scored or expired region-seasons, not yet settled.
    uint256 public totalCommitted;
    /// @notice Sum of settled payouts and refunds not yet claimed.
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
    /// @notice Policies for `season` are sold until `salesClose`; it ends at `endTime`, assessment follows.
    event SeasonOpened(uint32 indexed season, uint64 endTime, uint64 salesClose);
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
    /// @notice A request the oracle no longer holds open (failed, or answered with a callback this pool
    ///         refused) was replaced, or its region-season expired; its answer will be refused.
    event AssessmentAbandoned(uint32 indexed region, uint32 indexed season, uint256 indexed requestId);
    /// @notice The oracle answered: `score` is `output` clamped to [0, 1_000_000]; `committed` of the pool is
    ///         now owed to the region-season's policies.
    event Assessed(
        uint32 indexed region,
        uint32 indexed season,
        uint256 indexed requestId,
        int256 output,
        uint256 score,
        bytes32 weightsDigest,
        uint256 committed
    );
    /// @notice A region-season was not scored by its deadline: `coverage` is no longer reserved and its
    ///         `premiums` are committed to be refunded.
    event AssessmentExpired(uint32 indexed region, uint32 indexed season, uint256 coverage, uint256 premiums);
    /// @notice A policy was settled; `payout` became claimable by its farmer.
    event PolicySettled(uint256 indexed policyId, address indexed farmer, uint256 score, uint256 payout);
    /// @notice A policy of an expired region-season was settled; its `premium` became claimable by its farmer.
    event PolicyRefunded(uint256 indexed policyId, address indexed farmer, uint256 premium);
    /// @notice A farmer withdrew payouts.
    event Claimed(address indexed farmer, uint256 amount);
    /// @notice Refunds of failed oracle requests came back from the oracle into the pool.
    event OracleRefundsCollected(address indexed caller, uint256 amount);

    /// @notice A deployment parameter is out of range.
    error InvalidParams();
    /// @notice An address that must be set is zero.
    error ZeroAddress();
    /// @notice An amount, the shares it buys, or the amount shares are worth, is zero.
    error ZeroAmount();
    /// @notice `fund` would mint `shares`, fewer than the caller's `minShares` (the share price moved).
    error TooFewShares(uint256 shares, uint256 minShares);
    /// @notice Withdrawing more shares than held.
    error InsufficientShares(uint256 wanted, uint256 held);
    /// @notice The pool cannot take on or pay `needed` (only `available` is unreserved).
    error InsufficientCapital(uint256 needed, uint256 available);
    /// @notice The season was never opened.
    error SeasonNotOpen(uint32 season);
    /// @notice The season is already open.
    error SeasonAlreadyOpen(uint32 season);
    /// @notice A season's end must leave a sales window: later than now plus `salesCloseBefore`.
    error InvalidEndTime(uint64 endTime);
    /// @notice Policies for this season are no longer sold: sales closed at `salesClose`.
    error SalesClosed(uint32 season, uint64 salesClose);
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
    /// @notice No policy in the region-season needs an assessment (or an expiry).
    error NothingToAssess(uint32 region, uint32 season);
    /// @notice The region-season already has its score.
    error AlreadyAssessed(uint32 region, uint32 season);
    /// @notice The region-season expired unscored; its premiums are refunded.
    error AlreadyExpired(uint32 region, uint32 season);
    /// @notice The oracle still holds `requestId` open: finalize it there (anyone may, after its reveal
    ///         window) before a new request or an expiry.
    error AssessmentPending(uint256 requestId);
    /// @notice The region-season's assessment window closed at `deadline`; it may only expire now.
    error AssessmentClosed(uint32 region, uint32 season, uint256 deadline);
    /// @notice The region-season may still be assessed until `deadline`; it cannot expire before.
    error AssessmentStillOpen(uint32 region, uint32 season, uint256 deadline);
    /// @notice The callback names no live request of this contract.
    error UnknownRequest(uint256 requestId);
    /// @notice The answer came from other weights than the model version's.
    error WrongWeights(bytes32 expected, bytes32 given);
    /// @notice No such policy.
    error UnknownPolicy(uint256 policyId);
    /// @notice The policy is already settled or refunded.
    error PolicyNotActive(uint256 policyId);
    /// @notice The policy's region-season has no score yet and has not expired.
    error NotAssessed(uint32 region, uint32 season);
    /// @notice Nothing to claim.
    error NothingToClaim();
    /// @notice The oracle holds no refund for this pool.
    error NothingToCollect();

    /// @notice Deploys the pool for one model version. The deployer is the owner and the first reporter.
    /// @param token_ The token of premiums, capital and payouts (MIND), also the oracle's fee token.
    /// @param oracle_ The inference oracle.
    /// @param modelId_ The yield-loss model in the ModelRegistry.
    /// @param version_ The model's version.
    /// @param params_ Premium rate, deductible, feature count, sales close, assessment window, oracle fee,
    ///        expected weights digest.
    constructor(IERC20 token_, address oracle_, uint256 modelId_, uint32 version_, Params memory params_)
        OracleConsumer(IInferenceOracle(oracle_), token_)
        Ownable(msg.sender)
    {
        if (address(token_) == address(0) || oracle_ == address(0)) revert ZeroAddress();
        if (
            params_.premiumBps == 0 || params_.premiumBps > BPS || params_.deductible >= ONE
                || params_.featureCount == 0 || params_.salesCloseBefore == 0 || params_.assessmentWindow == 0
        ) revert InvalidParams();
        token = token_;
        modelId = modelId_;
        modelVersion = version_;
        premiumBps = params_.premiumBps;
        deductible = params_.deductible;
        featureCount = params_.featureCount;
        salesCloseBefore = params_.salesCloseBefore;
        assessmentWindow = params_.assessmentWindow;
        expectedWeightsDigest = params_.weightsDigest;
        oracleFee = params_.oracleFee;
        reporter = msg.sender;
        emit ReporterSet(msg.sender);
        emit OracleFeeSet(params_.oracleFee);
    }

    // ---------------------------------------------------------------------------------------------------
    // Underwriters
    // ---------------------------------------------------------------------------------------------------

    /// @notice Adds `amount` to the pool's capital (approve it first) for shares of its equity, priced at
    ///         the optimistic equity `balance − owed − committed` (see the contract's notes).
    /// @param amount Tokens to add.
    /// @param minShares The fewest shares the caller accepts (`previewFund` less a tolerance): the price can
    ///        move between reading it and this transaction (a score, a claim, another deposit).
    /// @return shares The shares minted to the caller.
    function fund(uint256 amount, uint256 minShares) external nonReentrant returns (uint256 shares) {
        if (amount == 0) revert ZeroAmount();
        uint256 before = _balance();
        uint256 equityBefore = before - totalOwed - totalCommitted;
        token.safeTransferFrom(msg.sender, address(this), amount);
        uint256 received = _balance() - before;
        // One virtual share and one virtual token keep the first deposit and a wiped-out pool well defined
        // and make inflating the share price by donation unprofitable; rounding favours the pool.
        shares = received * (totalShares + 1) / (equityBefore + 1);
        if (shares == 0) revert ZeroAmount();
        if (shares < minShares) revert TooFewShares(shares, minShares);
        totalShares += shares;
        sharesOf[msg.sender] += shares;
        emit Funded(msg.sender, received, shares);
        _assertSolvent();
    }

    /// @notice Burns `shares` for their part of the free capital: the equity left if every open policy of an
    ///         unscored region-season paid in full (see the contract's notes).
    /// @param shares Shares to burn.
    /// @return amount Tokens sent to the caller, at most the free capital.
    function withdraw(uint256 shares) external nonReentrant returns (uint256 amount) {
        if (shares == 0) revert ZeroAmount();
        uint256 held = sharesOf[msg.sender];
        if (shares > held) revert InsufficientShares(shares, held);
        amount = _withdrawValue(shares);
        // A wiped-out pool pays nothing: keep the shares rather than burn them for nothing.
        if (amount == 0) revert ZeroAmount();
        sharesOf[msg.sender] = held - shares;
        totalShares -= shares;
        token.safeTransfer(msg.sender, amount);
        emit Withdrawn(msg.sender, shares, amount);
        _assertSolvent();
    }

    /// @notice Moves this pool's refunds of failed oracle requests (fees and the stake slashed from silent
    ///         operators) from the oracle's pull balance into the pool's capital. Anyone may call.
    /// @return amount Tokens that came into the pool.
    function collectOracleRefunds() external nonReentrant returns (uint256 amount) {
        uint256 before = _balance();
        if (_withdrawOracleBalance() == 0) revert NothingToCollect();
        amount = _balance() - before;
        emit OracleRefundsCollected(msg.sender, amount);
        _assertSolvent();
    }

    // ---------------------------------------------------------------------------------------------------
    // Owner
    // ---------------------------------------------------------------------------------------------------

    /// @notice Opens `season`: policies are sold until `endTime − salesCloseBefore`, assessed after `endTime`.
    /// @param season The season's id (e.g. a year and a growing period).
    /// @param endTime Unix time at which the season ends and assessment may start; sales must still be open
    ///        now, so it is later than `block.timestamp + salesCloseBefore`.
    function openSeason(uint32 season, uint64 endTime) external onlyOwner {
        if (seasonEnd[season] != 0) revert SeasonAlreadyOpen(season);
        // Seasons and windows last hours to days: a validator's few seconds of drift do not matter.
        // forge-lint: disable-next-line(block-timestamp)
        if (endTime <= block.timestamp + salesCloseBefore) revert InvalidEndTime(endTime);
        seasonEnd[season] = endTime;
        emit SeasonOpened(season, endTime, endTime - salesCloseBefore);
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
    ///         the caller (approve it first). Refused if the pool could not pay every open policy in full (and,
    ///         for a region-season's first policy, the oracle fee of its assessment), and from
    ///         `salesCloseBefore` seconds before the season's end, when its weather is largely known.
    /// @param region The insured region.
    /// @param season The season, open for sales.
    /// @param coverage The most the policy pays.
    /// @return policyId The new policy's id.
    function buyPolicy(uint32 region, uint32 season, uint256 coverage)
        external
        nonReentrant
        returns (uint256 policyId)
    {
        uint64 end = seasonEnd[season];
        if (end == 0) revert SeasonNotOpen(season);
        uint64 salesClose = end - salesCloseBefore;
        // Seasons and windows last hours to days: a validator's few seconds of drift do not matter.
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp >= salesClose) revert SalesClosed(season, salesClose);
        if (coverage == 0) revert ZeroAmount();
        uint128 coverage128 = SafeCast.toUint128(coverage); // before any arithmetic on it
        uint256 premium = (coverage * premiumBps + BPS - 1) / BPS;
        Assessment storage a = _assessments[region][season];
        // Sales close before any region-season can be scored, so no coverage yet means its first policy.
        uint128 feeReserve = a.coverage == 0 ? SafeCast.toUint128(oracleFee) : 0;
        uint256 needed = coverage + feeReserve;
        uint256 available = _balance() + premium - totalOwed - totalCommitted - totalReserved;
        if (needed > available) revert InsufficientCapital(needed, available);
        policyId = ++policyCount;
        _policies[policyId] = Policy({
            farmer: msg.sender,
            region: region,
            season: season,
            status: PolicyStatus.Active,
            coverage: coverage128,
            // premium <= coverage, which toUint128 above checked.
            // forge-lint: disable-next-line(unsafe-typecast)
            premium: uint128(premium),
            payout: 0
        });
        totalReserved += needed;
        if (feeReserve != 0) a.feeReserve = feeReserve;
        a.openPolicies += 1;
        a.coverage += coverage128;
        // premium <= coverage < 2^128, and a region-season's premiums are bounded by the token supply.
        // forge-lint: disable-next-line(unsafe-typecast)
        a.premiums += uint128(premium);
        token.safeTransferFrom(msg.sender, address(this), premium);
        emit PolicyBought(policyId, msg.sender, region, season, coverage, premium);
        _assertSolvent();
    }

    /// @notice Withdraws every payout and refund owed to the caller.
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

    /// @notice Asks the oracle to score a region-season whose conditions are reported; anyone may call,
    ///         from the season's end until `seasonEnd + assessmentWindow`. The fee comes from what was set
    ///         aside with the first policy, and from free capital beyond it (a retry, a raised fee). A new request replaces an earlier one only once the oracle no longer holds that one
    ///         open (`isPending`): it failed (its refund waits for `collectOracleRefunds`) or its answer was
    ///         refused, so a live request is never abandoned nor a fee paid twice for one answer.
    /// @dev The oracle must answer in a later call than `request` (commit/reveal does): the request id is
    ///      recorded only once `request` returns, so a synchronous callback would be refused as unknown.
    /// @param region The region.
    /// @param season The season, ended.
    /// @return requestId The oracle's request id.
    function assess(uint32 region, uint32 season) external nonReentrant returns (uint256 requestId) {
        uint64 end = _requireEnded(season);
        Assessment storage a = _assessments[region][season];
        if (a.scored) revert AlreadyAssessed(region, season);
        if (a.expired) revert AlreadyExpired(region, season);
        if (a.openPolicies == 0) revert NothingToAssess(region, season);
        if (!a.reported) revert NoConditions(region, season);
        uint256 deadline = uint256(end) + assessmentWindow;
        // Seasons and windows last hours to days: a validator's few seconds of drift do not matter.
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp >= deadline) revert AssessmentClosed(region, season, deadline);
        if (a.requested) _abandon(region, season, a.requestId);
        totalReserved -= a.feeReserve;
        a.feeReserve = 0;
        uint256 fee = oracleFee;
        uint256 free = _free();
        if (fee > free) revert InsufficientCapital(fee, free);
        requestId =
            _requestInference(modelId, modelVersion, a.features, bytes32(0), IInferenceOracle.Aggregation.Median, fee);
        token.forceApprove(address(oracle), 0);
        a.requestId = requestId;
        a.requested = true;
        _requests[requestId] = PendingRequest({region: region, season: season, live: true});
        emit AssessmentRequested(region, season, requestId, fee);
        _assertSolvent();
    }

    /// @notice Expires a region-season that was not scored by `seasonEnd + assessmentWindow` (however the
    ///         assessment failed: a deprecated model version, too few operators, no conditions, failed
    ///         requests): its coverage is no longer reserved, and each of its policies is refunded its
    ///         premium when settled. Anyone may call; refused while the oracle still holds a request open,
    ///         since its answer may yet score the region-season.
    /// @param region The region.
    /// @param season The season.
    function expire(uint32 region, uint32 season) external nonReentrant {
        uint64 end = seasonEnd[season];
        if (end == 0) revert SeasonNotOpen(season);
        Assessment storage a = _assessments[region][season];
        if (a.scored) revert AlreadyAssessed(region, season);
        if (a.expired) revert AlreadyExpired(region, season);
        if (a.openPolicies == 0) revert NothingToAssess(region, season);
        uint256 deadline = uint256(end) + assessmentWindow;
        // Seasons and windows last hours to days: a validator's few seconds of drift do not matter.
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp < deadline) revert AssessmentStillOpen(region, season, deadline);
        if (a.requested) _abandon(region, season, a.requestId);
        a.expired = true;
        uint256 coverage = a.coverage;
        uint128 premiums = a.premiums;
        a.committed = premiums;
        totalReserved -= coverage + a.feeReserve;
        a.feeReserve = 0;
        totalCommitted += premiums;
        emit AssessmentExpired(region, season, coverage, premiums);
        _assertSolvent();
    }

    /// @notice The oracle's answer: records the region-season's score (clamped to [0, 1_000_000]) and
    ///         commits the payout of all its policies at once, so that the pool's free capital and share
    ///         price reflect the loss before any policy is settled.
    /// @param requestId The request answered.
    /// @param output The model's output, 1_000_000 = total loss.
    /// @param weightsDigest The digest of the weights that answered.
    function _fulfill(uint256 requestId, int256 output, bytes32 weightsDigest) internal override {
        PendingRequest memory pending = _requests[requestId];
        if (!pending.live) revert UnknownRequest(requestId);
        if (expectedWeightsDigest != bytes32(0) && weightsDigest != expectedWeightsDigest) {
            revert WrongWeights(expectedWeightsDigest, weightsDigest);
        }
        delete _requests[requestId];
        Assessment storage a = _assessments[pending.region][pending.season];
        // int256(ONE) is the constant 1e6; uint256(output) is only reached with 0 < output < ONE.
        // forge-lint: disable-next-line(unsafe-typecast)
        uint256 score = output <= 0 ? 0 : output >= int256(ONE) ? ONE : uint256(output);
        uint256 coverage = a.coverage;
        uint256 committed = payoutFor(coverage, score);
        a.scored = true;
        // score <= ONE (clamped above).
        // forge-lint: disable-next-line(unsafe-typecast)
        a.score = uint32(score);
        a.weightsDigest = weightsDigest;
        // committed <= coverage, a uint128.
        // forge-lint: disable-next-line(unsafe-typecast)
        a.committed = uint128(committed);
        totalReserved -= coverage;
        totalCommitted += committed;
        emit Assessed(pending.region, pending.season, requestId, output, score, weightsDigest, committed);
    }

    /// @notice Settles a policy of a scored region-season (its payout) or of an expired one (its premium
    ///         back): the amount becomes claimable by its farmer. Anyone may call.
    /// @param policyId The policy.
    /// @return payout The payout, at most the coverage, or the refunded premium.
    function settle(uint256 policyId) external nonReentrant returns (uint256 payout) {
        Policy storage p = _policies[policyId];
        if (p.status == PolicyStatus.None) revert UnknownPolicy(policyId);
        if (p.status != PolicyStatus.Active) revert PolicyNotActive(policyId);
        Assessment storage a = _assessments[p.region][p.season];
        if (a.scored) {
            payout = payoutFor(p.coverage, a.score);
            p.status = PolicyStatus.Settled;
            emit PolicySettled(policyId, p.farmer, a.score, payout);
        } else if (a.expired) {
            payout = p.premium;
            p.status = PolicyStatus.Refunded;
            emit PolicyRefunded(policyId, p.farmer, payout);
        } else {
            revert NotAssessed(p.region, p.season);
        }
        // payout <= the coverage or the premium, both uint128.
        // forge-lint: disable-next-line(unsafe-typecast)
        p.payout = uint128(payout);
        // Rounded-down payouts sum to at most the committed payoutFor(total coverage): `left` stays >= 0,
        // and what rounding left over returns to the pool with the last policy.
        uint256 left = a.committed - payout;
        uint32 open = a.openPolicies - 1;
        a.openPolicies = open;
        if (open == 0) {
            totalCommitted -= a.committed;
            a.committed = 0;
        } else {
            totalCommitted -= payout;
            // left < a.committed, a uint128.
            // forge-lint: disable-next-line(unsafe-typecast)
            a.committed = uint128(left);
        }
        totalOwed += payout;
        claimable[p.farmer] += payout;
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

    /// @notice The shares `fund(amount, …)` would mint now (for a token that transfers the full amount).
    /// @param amount Tokens to add.
    /// @return The shares.
    function previewFund(uint256 amount) external view returns (uint256) {
        return amount * (totalShares + 1) / (_balance() - totalOwed - totalCommitted + 1);
    }

    /// @notice What `withdraw(shares)` would pay now.
    /// @param shares Shares to burn.
    /// @return The tokens.
    function previewWithdraw(uint256 shares) external view returns (uint256) {
        return _withdrawValue(shares);
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
    /// @return owed Settled payouts and refunds not yet claimed.
    /// @return committed Payouts and refunds of scored or expired region-seasons, not yet settled.
    /// @return reserved Coverage of open policies of unscored region-seasons.
    /// @return free Capital neither owed, committed nor reserved (fees and withdrawals come from it).
    function pool()
        external
        view
        returns (uint256 balance, uint256 owed, uint256 committed, uint256 reserved, uint256 free)
    {
        balance = _balance();
        owed = totalOwed;
        committed = totalCommitted;
        reserved = totalReserved;
        free = balance - owed - committed - reserved;
    }

    function _balance() internal view returns (uint256) {
        return token.balanceOf(address(this));
    }

    function _free() internal view returns (uint256) {
        return _balance() - totalOwed - totalCommitted - totalReserved;
    }

    /// @dev Shares at the pessimistic equity, the free capital; never more than it, since shares <= totalShares.
    function _withdrawValue(uint256 shares) internal view returns (uint256) {
        return shares * (_free() + 1) / (totalShares + 1);
    }

    /// @dev Drops a region-season's earlier request, which must no longer be open at the oracle; an answer
    ///      that still came would be refused as unknown.
    function _abandon(uint32 region, uint32 season, uint256 requestId) internal {
        if (oracle.isPending(requestId)) revert AssessmentPending(requestId);
        delete _requests[requestId];
        emit AssessmentAbandoned(region, season, requestId);
    }

    function _requireEnded(uint32 season) internal view returns (uint64 end) {
        end = seasonEnd[season];
        if (end == 0) revert SeasonNotOpen(season);
        // Seasons and windows last hours to days: a validator's few seconds of drift do not matter.
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp < end) revert SeasonNotEnded(season, end);
    }

    /// @dev The pool never owes more than it holds, even if every open policy paid in full.
    function _assertSolvent() internal view {
        assert(_balance() >= totalOwed + totalCommitted + totalReserved);
    }
}
