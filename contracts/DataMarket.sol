// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IERC2981} from "@openzeppelin/contracts/interfaces/IERC2981.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

/// @title DataMarket
/// @notice Datasets as ERC-721 data NFTs: the holder of a dataset's token (its owner) sells access by the
///         period in MIND, grants it for free until a date (a patient's consent) and revokes grants at any
///         time, names the algorithms that may run on the data and the compute-to-data provider that runs
///         them, whose signed receipts are recorded here once each.
/// @dev Design choices:
///      - Payment is split and paid out in the buying transaction (buyer -> fee recipient, original publisher,
///        current owner): the market never holds MIND it owes, so nothing can be locked in it and there is
///        no withdrawal to forget. The split is `splitPayment`, mirrored off-chain by src/market/split.ts.
///      - Paid and granted access are kept apart: revocation ends a grant only. Paid time always runs to its
///        end, so an owner can never take a buyer's money and then cut the access it paid for; an owner who
///        must stop a buyer (consent withdrawn) does not sell, or sets the price to 0 (not for sale).
///      - A dataset's period is fixed at publication; its price may change, so `buyAccess` takes the most
///        the buyer agrees to pay (`maxCost`) and refuses a price raised in front of it.
///      - The owner always has access. A transfer of the token keeps grants, paid access and allowed
///        algorithms (they belong to the dataset) but resets the provider to the new owner, whose keys run
///        the data from then on.
///      - A receipt is recorded only by the dataset's provider, carries the provider's EIP-712 signature
///        (domain: this contract and chain) so anyone can check it from the event alone, needs the buyer's
///        access and the algorithm's approval at the time it is recorded, and is recorded once per request.
///      - No function loops; every record is reached by id.
contract DataMarket is ERC721, EIP712, Ownable, IERC2981 {
    using SafeERC20 for IERC20;

    /// @notice 10,000 basis points = 100%.
    uint16 public constant BPS = 10_000;
    /// @notice The highest market fee the owner may set: 10%.
    uint16 public constant MAX_FEE_BPS = 1_000;
    /// @notice The highest royalty a publisher may ask on later owners' sales: 20%. With the fee cap, the
    ///         current owner always keeps at least 70% of a sale.
    uint16 public constant MAX_ROYALTY_BPS = 2_000;
    /// @notice The longest access period a dataset may sell: 10 years (365-day years).
    uint64 public constant MAX_PERIOD = 3650 days;
    /// @notice The longest metadata CID accepted, in bytes (a CID v1 sha256 in base32 has 59).
    uint256 public constant MAX_CID_BYTES = 128;

    /// @dev The struct the provider signs for a receipt (EIP-712).
    bytes32 private constant RECEIPT_TYPEHASH = keccak256(
        "ComputeReceipt(uint256 datasetId,bytes32 requestDigest,bytes32 algorithm,bytes32 resultDigest,address buyer)"
    );

    /// @notice A dataset's fixed terms and price.
    /// @dev Two slots and the CID: `publisher`, `royaltyBps` and `period` share the first.
    struct Dataset {
        address publisher;
        uint16 royaltyBps;
        uint64 period;
        uint256 pricePerPeriod;
        bytes32 metadataDigest;
        string metadataCid;
    }

    /// @notice An account's access to a dataset: until when it paid, until when it was granted (exclusive).
    struct Access {
        uint64 paidUntil;
        uint64 grantedUntil;
    }

    /// @notice A recorded compute receipt; `recordedAt` 0 means none.
    struct Receipt {
        address buyer;
        uint64 datasetId;
        uint32 recordedAt;
        bytes32 algorithm;
        bytes32 resultDigest;
    }

    /// @notice The MIND token buyers pay in.
    IERC20 public immutable token;

    /// @notice The market's fee in basis points of every sale, at most MAX_FEE_BPS.
    uint16 public feeBps;
    /// @notice Who receives the market fee (shares a slot with `feeBps`).
    address public feeRecipient;
    /// @notice How many datasets were published; ids run from 1 to this.
    uint256 public datasetCount;

    mapping(uint256 datasetId => Dataset) private _datasets;
    mapping(uint256 datasetId => mapping(address account => Access)) private _access;
    mapping(uint256 datasetId => mapping(bytes32 algorithm => bool)) private _allowed;
    mapping(uint256 datasetId => address provider) private _providers;
    mapping(bytes32 requestDigest => Receipt) private _receipts;

    /// @notice Dataset `datasetId` was published by `publisher` with its metadata and terms.
    event DatasetPublished(
        uint256 indexed datasetId,
        address indexed publisher,
        string metadataCid,
        bytes32 metadataDigest,
        uint256 pricePerPeriod,
        uint64 period,
        uint16 royaltyBps
    );
    /// @notice The price of one period of dataset `datasetId` is now `pricePerPeriod` (0: not for sale).
    event PriceSet(uint256 indexed datasetId, uint256 pricePerPeriod);
    /// @notice `buyer` paid `cost` for `periods` periods of dataset `datasetId`; its paid access now ends at
    ///         `paidUntil`. `ownerShare + fee + royalty == cost`.
    event AccessBought(
        uint256 indexed datasetId,
        address indexed buyer,
        uint32 periods,
        uint256 cost,
        uint256 ownerShare,
        uint256 fee,
        uint256 royalty,
        uint64 paidUntil
    );
    /// @notice The owner granted `account` free access to dataset `datasetId` until `expiresAt` (exclusive).
    event AccessGranted(uint256 indexed datasetId, address indexed account, uint64 expiresAt);
    /// @notice The owner revoked `account`'s grant on dataset `datasetId` (its paid access, if any, stays).
    event AccessRevoked(uint256 indexed datasetId, address indexed account);
    /// @notice Algorithm `algorithm` may now run on dataset `datasetId`.
    event AlgorithmAllowed(uint256 indexed datasetId, bytes32 indexed algorithm);
    /// @notice Algorithm `algorithm` may no longer run on dataset `datasetId`.
    event AlgorithmDisallowed(uint256 indexed datasetId, bytes32 indexed algorithm);
    /// @notice Dataset `datasetId`'s compute-to-data provider is now `provider`.
    event ProviderSet(uint256 indexed datasetId, address indexed provider);
    /// @notice `provider` ran `algorithm` on dataset `datasetId` for `buyer`'s request `requestDigest` and got
    ///         `resultDigest`; `signature` is its EIP-712 signature over all of these (see `receiptDigest`).
    event ReceiptRecorded(
        bytes32 indexed requestDigest,
        uint256 indexed datasetId,
        address indexed buyer,
        address provider,
        bytes32 algorithm,
        bytes32 resultDigest,
        bytes signature
    );
    /// @notice The market fee is now `feeBps`, paid to `recipient`.
    event MarketFeeSet(uint16 feeBps, address indexed recipient);

    /// @notice There is no dataset `datasetId`.
    error UnknownDataset(uint256 datasetId);
    /// @notice `caller` does not hold dataset `datasetId`'s token: only its owner may do this.
    error NotDatasetOwner(uint256 datasetId, address caller);
    /// @notice The metadata CID is empty.
    error EmptyMetadata();
    /// @notice The metadata CID is `length` bytes long, more than `max`.
    error MetadataCidTooLong(uint256 length, uint256 max);
    /// @notice A digest (metadata, algorithm, request or result) is zero.
    error EmptyDigest();
    /// @notice An access period of `period` seconds: it must be from 1 to `max`.
    error InvalidPeriod(uint64 period, uint64 max);
    /// @notice A royalty of `royaltyBps` basis points is above the cap `max`.
    error RoyaltyTooHigh(uint16 royaltyBps, uint16 max);
    /// @notice A market fee of `feeBps` basis points is above the cap `max`.
    error MarketFeeTooHigh(uint16 feeBps, uint16 max);
    /// @notice An address that must be set (the token, the fee recipient) is zero.
    error ZeroAddress();
    /// @notice Dataset `datasetId` has no price (0): its owner only grants access.
    error NotForSale(uint256 datasetId);
    /// @notice A purchase of zero periods.
    error ZeroPeriods();
    /// @notice The access costs `cost`, more than the `maxCost` the buyer agreed to (the price rose).
    error CostAboveMax(uint256 cost, uint256 maxCost);
    /// @notice A grant until `expiresAt` is not in the future (the block's time is `nowTime`).
    error ExpiryNotInFuture(uint64 expiresAt, uint64 nowTime);
    /// @notice `account` holds no live grant on dataset `datasetId` to revoke.
    error NoGrant(uint256 datasetId, address account);
    /// @notice Algorithm `algorithm` is already allowed on dataset `datasetId`.
    error AlgorithmAlreadyAllowed(uint256 datasetId, bytes32 algorithm);
    /// @notice Algorithm `algorithm` is not allowed on dataset `datasetId`.
    error AlgorithmNotAllowed(uint256 datasetId, bytes32 algorithm);
    /// @notice `caller` is not dataset `datasetId`'s provider: only it records receipts.
    error NotProvider(uint256 datasetId, address caller);
    /// @notice `account` has no access to dataset `datasetId` now (never had, expired or revoked).
    error NoAccess(uint256 datasetId, address account);
    /// @notice A receipt for request `requestDigest` is already recorded: each request is recorded once.
    error ReceiptAlreadyRecorded(bytes32 requestDigest);
    /// @notice The receipt's signature recovers to `recovered` (zero when malformed), not to the provider
    ///         `provider`.
    error BadReceiptSignature(address recovered, address provider);

    /// @notice Deploys the market.
    /// @param token_ The MIND token buyers pay in.
    /// @param owner_ The market's owner, who sets the fee; also the first fee recipient.
    /// @param feeBps_ The first market fee, at most MAX_FEE_BPS.
    constructor(IERC20 token_, address owner_, uint16 feeBps_)
        ERC721("Ledgermind Data", "LMDATA")
        EIP712("Ledgermind DataMarket", "1")
        Ownable(owner_)
    {
        if (address(token_) == address(0)) revert ZeroAddress();
        token = token_;
        _setMarketFee(feeBps_, owner_);
    }

    // ------------------------------------------------------------------------------------------------------
    // Publishing and terms
    // ------------------------------------------------------------------------------------------------------

    /// @notice Publishes a dataset: mints its data NFT to the caller, who becomes its owner, publisher and
    ///         (until it names another) provider.
    /// @param metadataCid The CID of the metadata JSON (name, description, schema, licence, size, sample
    ///        digest, privacy budget if any), 1 to MAX_CID_BYTES bytes.
    /// @param metadataDigest The sha256 digest the CID names, not zero.
    /// @param pricePerPeriod The price of one period in MIND wei; 0: not for sale (grants only).
    /// @param period The length of one access period in seconds, 1 to MAX_PERIOD, fixed forever.
    /// @param royaltyBps The share of every later owner's sales paid to the caller, at most MAX_ROYALTY_BPS.
    /// @return datasetId The new dataset's id (its token id).
    function publish(
        string calldata metadataCid,
        bytes32 metadataDigest,
        uint256 pricePerPeriod,
        uint64 period,
        uint16 royaltyBps
    ) external returns (uint256 datasetId) {
        uint256 cidLength = bytes(metadataCid).length;
        if (cidLength == 0) revert EmptyMetadata();
        if (cidLength > MAX_CID_BYTES) revert MetadataCidTooLong(cidLength, MAX_CID_BYTES);
        if (metadataDigest == bytes32(0)) revert EmptyDigest();
        if (period == 0 || period > MAX_PERIOD) revert InvalidPeriod(period, MAX_PERIOD);
        if (royaltyBps > MAX_ROYALTY_BPS) revert RoyaltyTooHigh(royaltyBps, MAX_ROYALTY_BPS);
        datasetId = ++datasetCount;
        _datasets[datasetId] = Dataset({
            publisher: msg.sender,
            royaltyBps: royaltyBps,
            period: period,
            pricePerPeriod: pricePerPeriod,
            metadataDigest: metadataDigest,
            metadataCid: metadataCid
        });
        // _mint, not _safeMint: the caller is the receiver, so no callback can run in the middle.
        _mint(msg.sender, datasetId);
        emit DatasetPublished(
            datasetId, msg.sender, metadataCid, metadataDigest, pricePerPeriod, period, royaltyBps
        );
    }

    /// @notice Sets the price of one period of a dataset (owner only); 0 takes it off sale. Paid access
    ///         already bought is unaffected.
    /// @param datasetId The dataset.
    /// @param pricePerPeriod The new price in MIND wei.
    function setPrice(uint256 datasetId, uint256 pricePerPeriod) external {
        _checkDatasetOwner(datasetId);
        _datasets[datasetId].pricePerPeriod = pricePerPeriod;
        emit PriceSet(datasetId, pricePerPeriod);
    }

    /// @notice Names the account that runs compute-to-data jobs on a dataset and records their receipts
    ///         (owner only). A transfer of the token resets it to the new owner.
    /// @param datasetId The dataset.
    /// @param provider The provider; the zero address means the owner.
    function setProvider(uint256 datasetId, address provider) external {
        _checkDatasetOwner(datasetId);
        _providers[datasetId] = provider;
        emit ProviderSet(datasetId, provider == address(0) ? msg.sender : provider);
    }

    /// @notice Lets an algorithm run on a dataset (owner only).
    /// @param datasetId The dataset.
    /// @param algorithm `modelAlgorithm(modelId, version)` for a registry model version, or an algorithm's
    ///        digest; not zero.
    function allowAlgorithm(uint256 datasetId, bytes32 algorithm) external {
        _checkDatasetOwner(datasetId);
        if (algorithm == bytes32(0)) revert EmptyDigest();
        if (_allowed[datasetId][algorithm]) revert AlgorithmAlreadyAllowed(datasetId, algorithm);
        _allowed[datasetId][algorithm] = true;
        emit AlgorithmAllowed(datasetId, algorithm);
    }

    /// @notice Stops an algorithm from running on a dataset (owner only); receipts already recorded stay.
    /// @param datasetId The dataset.
    /// @param algorithm An allowed algorithm.
    function disallowAlgorithm(uint256 datasetId, bytes32 algorithm) external {
        _checkDatasetOwner(datasetId);
        if (!_allowed[datasetId][algorithm]) revert AlgorithmNotAllowed(datasetId, algorithm);
        delete _allowed[datasetId][algorithm];
        emit AlgorithmDisallowed(datasetId, algorithm);
    }

    // ------------------------------------------------------------------------------------------------------
    // Access
    // ------------------------------------------------------------------------------------------------------

    /// @notice Buys `periods` periods of access for the caller, paid in MIND (approve the market first). The
    ///         cost is split by `splitPayment` and paid out at once: the market fee to the fee recipient, the
    ///         royalty to the publisher when someone else owns the dataset now, the rest to the owner. The
    ///         paid access ends `periods` periods after the later of now and its current end.
    /// @param datasetId The dataset, on sale.
    /// @param periods How many periods, at least 1.
    /// @param maxCost The most the caller agrees to pay; guards against a price raised in front of the call.
    function buyAccess(uint256 datasetId, uint32 periods, uint256 maxCost) external {
        address holder = _requireDataset(datasetId);
        Dataset storage d = _datasets[datasetId];
        uint256 price = d.pricePerPeriod;
        if (price == 0) revert NotForSale(datasetId);
        if (periods == 0) revert ZeroPeriods();
        uint256 cost = price * periods;
        if (cost > maxCost) revert CostAboveMax(cost, maxCost);
        address publisher = d.publisher;
        (uint256 ownerShare, uint256 fee, uint256 royalty) =
            splitPayment(cost, feeBps, d.royaltyBps, holder == publisher);
        Access storage access = _access[datasetId][msg.sender];
        // Access is counted in periods of seconds to years: the few seconds a block producer may shift
        // the timestamp by move an expiry by as much, which nobody can profit from.
        // forge-lint: disable-next-line(block-timestamp)
        uint256 start = access.paidUntil > block.timestamp ? access.paidUntil : block.timestamp;
        uint64 paidUntil = SafeCast.toUint64(start + uint256(d.period) * periods);
        access.paidUntil = paidUntil;
        emit AccessBought(datasetId, msg.sender, periods, cost, ownerShare, fee, royalty, paidUntil);
        IERC20 mind = token;
        if (fee != 0) mind.safeTransferFrom(msg.sender, feeRecipient, fee);
        if (royalty != 0) mind.safeTransferFrom(msg.sender, publisher, royalty);
        if (ownerShare != 0) mind.safeTransferFrom(msg.sender, holder, ownerShare);
    }

    /// @notice Grants `account` free access until `expiresAt` (owner only): consent, revocable at any time.
    ///         A new grant replaces the account's previous one, longer or shorter; paid access is separate.
    /// @param datasetId The dataset.
    /// @param account Who receives access.
    /// @param expiresAt When the grant ends (exclusive), in the future.
    function grantAccess(uint256 datasetId, address account, uint64 expiresAt) external {
        _checkDatasetOwner(datasetId);
        // forge-lint: disable-next-line(block-timestamp)
        if (expiresAt <= block.timestamp) revert ExpiryNotInFuture(expiresAt, uint64(block.timestamp));
        _access[datasetId][account].grantedUntil = expiresAt;
        emit AccessGranted(datasetId, account, expiresAt);
    }

    /// @notice Ends `account`'s grant now (owner only). Paid access is not revocable: the buyer keeps the
    ///         time it paid for.
    /// @param datasetId The dataset.
    /// @param account An account holding a live grant.
    function revokeAccess(uint256 datasetId, address account) external {
        _checkDatasetOwner(datasetId);
        Access storage access = _access[datasetId][account];
        // forge-lint: disable-next-line(block-timestamp)
        if (access.grantedUntil <= block.timestamp) revert NoGrant(datasetId, account);
        access.grantedUntil = 0;
        emit AccessRevoked(datasetId, account);
    }

    /// @notice Whether `account` may use a dataset now: its owner always; others while a paid period or a
    ///         grant runs. False for an unknown dataset.
    /// @param datasetId The dataset.
    /// @param account The account.
    /// @return Whether it has access at this block's time.
    function hasAccess(uint256 datasetId, address account) public view returns (bool) {
        address holder = _ownerOf(datasetId);
        if (holder == address(0)) return false;
        if (holder == account) return true;
        Access memory access = _access[datasetId][account];
        // forge-lint: disable-next-line(block-timestamp)
        return access.paidUntil > block.timestamp || access.grantedUntil > block.timestamp;
    }

    /// @notice When `account`'s access to a dataset ends (exclusive): the later of its paid and granted ends,
    ///         0 when it never had any. The owner's own access does not expire and is not counted here.
    /// @param datasetId The dataset.
    /// @param account The account.
    /// @return expiresAt The later end.
    function accessExpiry(uint256 datasetId, address account) external view returns (uint64 expiresAt) {
        Access memory access = _access[datasetId][account];
        return access.paidUntil > access.grantedUntil ? access.paidUntil : access.grantedUntil;
    }

    /// @notice An account's paid and granted access ends, apart.
    /// @param datasetId The dataset.
    /// @param account The account.
    /// @return The paid end and the granted end (0: none).
    function accessOf(uint256 datasetId, address account) external view returns (Access memory) {
        return _access[datasetId][account];
    }

    /// @notice Whether an algorithm may run on a dataset.
    /// @param datasetId The dataset.
    /// @param algorithm The algorithm id.
    /// @return Whether its owner allowed it.
    function isAllowed(uint256 datasetId, bytes32 algorithm) external view returns (bool) {
        return _allowed[datasetId][algorithm];
    }

    // ------------------------------------------------------------------------------------------------------
    // Compute receipts
    // ------------------------------------------------------------------------------------------------------

    /// @notice Records the receipt of a compute-to-data job (the dataset's provider only), once per request.
    ///         The buyer must have access and the algorithm must be allowed now: a receipt proves the job was
    ///         authorized when recorded.
    /// @param datasetId The dataset the job ran on.
    /// @param requestDigest The digest of the buyer's signed job request; not zero, recorded once.
    /// @param algorithm The algorithm that ran, allowed on the dataset.
    /// @param resultDigest The digest of the result returned to the buyer; not zero.
    /// @param buyer Who asked for the job.
    /// @param providerSignature The provider's EIP-712 signature over `receiptDigest(...)` of the same values.
    function recordReceipt(
        uint256 datasetId,
        bytes32 requestDigest,
        bytes32 algorithm,
        bytes32 resultDigest,
        address buyer,
        bytes calldata providerSignature
    ) external {
        address provider = providerOf(datasetId);
        if (msg.sender != provider) revert NotProvider(datasetId, msg.sender);
        if (requestDigest == bytes32(0) || resultDigest == bytes32(0)) revert EmptyDigest();
        if (_receipts[requestDigest].recordedAt != 0) revert ReceiptAlreadyRecorded(requestDigest);
        if (!_allowed[datasetId][algorithm]) revert AlgorithmNotAllowed(datasetId, algorithm);
        if (!hasAccess(datasetId, buyer)) revert NoAccess(datasetId, buyer);
        (address recovered,,) = ECDSA.tryRecover(
            receiptDigest(datasetId, requestDigest, algorithm, resultDigest, buyer), providerSignature
        );
        if (recovered != provider) revert BadReceiptSignature(recovered, provider);
        _receipts[requestDigest] = Receipt({
            buyer: buyer,
            datasetId: SafeCast.toUint64(datasetId),
            recordedAt: SafeCast.toUint32(block.timestamp),
            algorithm: algorithm,
            resultDigest: resultDigest
        });
        emit ReceiptRecorded(requestDigest, datasetId, buyer, provider, algorithm, resultDigest, providerSignature);
    }

    /// @notice The receipt recorded for a request; all zero when none was.
    /// @param requestDigest The request's digest.
    /// @return The receipt.
    function receipt(bytes32 requestDigest) external view returns (Receipt memory) {
        return _receipts[requestDigest];
    }

    /// @notice The EIP-712 digest a provider signs for a receipt (domain "Ledgermind DataMarket", version 1,
    ///         this chain and this contract), so a signature cannot be replayed on another market or chain.
    /// @return The digest to sign.
    function receiptDigest(
        uint256 datasetId,
        bytes32 requestDigest,
        bytes32 algorithm,
        bytes32 resultDigest,
        address buyer
    ) public view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(abi.encode(RECEIPT_TYPEHASH, datasetId, requestDigest, algorithm, resultDigest, buyer))
        );
    }

    /// @notice The algorithm id of a registry model version: keccak256(abi.encode(modelId, version)).
    /// @param modelId The registry's model id.
    /// @param version The version.
    /// @return The id to allow.
    function modelAlgorithm(uint256 modelId, uint32 version) external pure returns (bytes32) {
        return keccak256(abi.encode(modelId, version));
    }

    // ------------------------------------------------------------------------------------------------------
    // Reads
    // ------------------------------------------------------------------------------------------------------

    /// @notice A dataset's terms and metadata.
    /// @param datasetId The dataset.
    /// @return The dataset.
    function dataset(uint256 datasetId) external view returns (Dataset memory) {
        _requireDataset(datasetId);
        return _datasets[datasetId];
    }

    /// @notice The account that runs a dataset's jobs: the one its owner named, else the owner.
    /// @param datasetId The dataset.
    /// @return The provider.
    function providerOf(uint256 datasetId) public view returns (address) {
        address holder = _ownerOf(datasetId);
        if (holder == address(0)) revert UnknownDataset(datasetId);
        address provider = _providers[datasetId];
        return provider == address(0) ? holder : provider;
    }

    /// @notice The data NFT's URI: `ipfs://` and the metadata CID.
    /// @param datasetId The dataset.
    /// @return The URI.
    function tokenURI(uint256 datasetId) public view override returns (string memory) {
        _requireDataset(datasetId);
        return string.concat("ipfs://", _datasets[datasetId].metadataCid);
    }

    /// @notice ERC-2981: the publisher's royalty on a sale of the data NFT at `salePrice`.
    /// @param datasetId The dataset.
    /// @param salePrice The sale price.
    /// @return receiver The publisher.
    /// @return royaltyAmount `salePrice * royaltyBps / BPS`, rounded down.
    function royaltyInfo(uint256 datasetId, uint256 salePrice)
        external
        view
        returns (address receiver, uint256 royaltyAmount)
    {
        _requireDataset(datasetId);
        Dataset storage d = _datasets[datasetId];
        return (d.publisher, (salePrice * d.royaltyBps) / BPS);
    }

    /// @inheritdoc IERC165
    function supportsInterface(bytes4 interfaceId) public view override(ERC721, IERC165) returns (bool) {
        return interfaceId == type(IERC2981).interfaceId || super.supportsInterface(interfaceId);
    }

    /// @notice How a sale of `cost` splits: the market fee and the royalty are `cost * bps / BPS` rounded
    ///         down (no royalty while the publisher still owns the dataset), the owner gets the rest, so
    ///         `ownerShare + fee + royalty == cost` exactly.
    /// @param cost The sale's cost.
    /// @param feeBps_ The market fee, at most MAX_FEE_BPS.
    /// @param royaltyBps The publisher's royalty, at most MAX_ROYALTY_BPS.
    /// @param ownerIsPublisher Whether the owner is still the publisher.
    /// @return ownerShare The owner's share.
    /// @return fee The market fee.
    /// @return royalty The publisher's royalty.
    function splitPayment(uint256 cost, uint16 feeBps_, uint16 royaltyBps, bool ownerIsPublisher)
        public
        pure
        returns (uint256 ownerShare, uint256 fee, uint256 royalty)
    {
        if (feeBps_ > MAX_FEE_BPS) revert MarketFeeTooHigh(feeBps_, MAX_FEE_BPS);
        if (royaltyBps > MAX_ROYALTY_BPS) revert RoyaltyTooHigh(royaltyBps, MAX_ROYALTY_BPS);
        // cost * bps cannot overflow in practice (MIND's whole supply is 1e27 wei), but an overflow would
        // revert, never wrap: checked arithmetic stays on.
        fee = (cost * feeBps_) / BPS;
        royalty = ownerIsPublisher ? 0 : (cost * royaltyBps) / BPS;
        // fee + royalty <= cost * 30%: the subtraction cannot underflow.
        unchecked {
            ownerShare = cost - fee - royalty;
        }
    }

    // ------------------------------------------------------------------------------------------------------
    // The market's owner
    // ------------------------------------------------------------------------------------------------------

    /// @notice Sets the market fee and who receives it (the market's owner only). Applies to later sales.
    /// @param feeBps_ The fee in basis points, at most MAX_FEE_BPS.
    /// @param recipient Who receives it, not zero.
    function setMarketFee(uint16 feeBps_, address recipient) external onlyOwner {
        _setMarketFee(feeBps_, recipient);
    }

    /// @notice Sends any balance of `asset` the market holds to `to` (the market's owner only). The market
    ///         pays every sale out at once and owes nothing, so whatever it holds was sent to it by mistake.
    /// @param asset The token.
    /// @param to Who receives it.
    function rescue(IERC20 asset, address to) external onlyOwner {
        if (to == address(0)) revert ZeroAddress();
        asset.safeTransfer(to, asset.balanceOf(address(this)));
    }

    // ------------------------------------------------------------------------------------------------------
    // Internals
    // ------------------------------------------------------------------------------------------------------

    function _setMarketFee(uint16 feeBps_, address recipient) private {
        if (feeBps_ > MAX_FEE_BPS) revert MarketFeeTooHigh(feeBps_, MAX_FEE_BPS);
        if (recipient == address(0)) revert ZeroAddress();
        feeBps = feeBps_;
        feeRecipient = recipient;
        emit MarketFeeSet(feeBps_, recipient);
    }

    /// @dev Reverts unless the caller holds the dataset's token (UnknownDataset for a dataset that does not
    ///      exist). Approved operators of the token are not owners: consent is the holder's.
    function _checkDatasetOwner(uint256 datasetId) private view {
        address holder = _ownerOf(datasetId);
        if (holder == address(0)) revert UnknownDataset(datasetId);
        if (holder != msg.sender) revert NotDatasetOwner(datasetId, msg.sender);
    }

    /// @dev ERC721's single hook, so every transfer path resets the provider the previous owner had named.
    function _update(address to, uint256 tokenId, address auth) internal override returns (address from) {
        from = super._update(to, tokenId, auth);
        if (from != address(0) && from != to && _providers[tokenId] != address(0)) {
            delete _providers[tokenId];
            emit ProviderSet(tokenId, to);
        }
    }

    /// @dev The holder of a dataset's token; UnknownDataset (not ERC721NonexistentToken) for an unknown id.
    function _requireDataset(uint256 datasetId) private view returns (address holder) {
        holder = _ownerOf(datasetId);
        if (holder == address(0)) revert UnknownDataset(datasetId);
    }
}
