// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {DataMarket} from "../../../contracts/DataMarket.sol";
import {Actors} from "./Actors.sol";

/// @notice Every call the campaign makes into DataMarket goes through here. The handler owns the market (fee
///         recipient, 2.5%). Actors 0-3 are honest: they publish, buy with the price they read as their most,
///         grant, revoke, sell their data NFTs to each other, name providers and record receipts signed with
///         their own key. Actors 4-5 are malicious: they grant, revoke and reprice datasets they do not own,
///         raise a price in front of a purchase, record receipts for datasets they do not provide, sign
///         receipts with the wrong key and replay recorded requests. Ghost counters record every malicious
///         call that went through and every purchase whose payments were not exactly the split.
contract DataMarketHandler is Actors {
    uint256 internal constant HONEST = 4;
    uint256 internal constant MAX_DATASETS = 8;
    uint16 internal constant FEE_BPS = 250;

    DataMarket public immutable market;

    uint256[] internal _datasets;
    bytes32[] internal _requests;
    /// @dev The expected access of each (dataset, account), kept apart from the contract's.
    mapping(uint256 datasetId => mapping(address account => uint64)) internal _paidUntil;
    mapping(uint256 datasetId => mapping(address account => uint64)) internal _grantedUntil;
    bytes32 internal constant ALGORITHM = keccak256("invariant algorithm");

    /// @notice Purchases whose buyer, fee recipient, publisher or owner moved by anything but the exact split.
    uint256 public ghostSplitMismatches;
    /// @notice Owner-only calls (grant, revoke, price, provider, algorithms) that went through for another.
    uint256 public ghostStrangerOwnerCalls;
    /// @notice Purchases that paid more than the buyer's `maxCost`.
    uint256 public ghostFrontRunsPaid;
    /// @notice Receipts recorded by a non-provider, with a signature not the provider's, or twice.
    uint256 public ghostBadReceipts;

    constructor() Actors(6, 1_000_000 ether) {
        market = new DataMarket(token, address(this), FEE_BPS);
        _addHolder(address(market));
        for (uint256 i; i < _actors.length; ++i) {
            vm.prank(_actors[i]);
            token.approve(address(market), type(uint256).max);
        }
    }

    // ------------------------------------------------------------------------------------------------------
    // Honest actions
    // ------------------------------------------------------------------------------------------------------

    function publish(uint256 actorSeed, uint256 price, uint64 period, uint16 royaltyBps) external clocked {
        if (_datasets.length >= MAX_DATASETS) return;
        address who = _actors[actorSeed % HONEST];
        price = bound(price, 0, 1_000 ether);
        period = uint64(bound(period, 1, 30 days));
        royaltyBps = uint16(bound(royaltyBps, 0, market.MAX_ROYALTY_BPS()));
        vm.prank(who);
        uint256 id =
            market.publish("bafkreiinvariant", keccak256(abi.encode(_datasets.length, who)), price, period, royaltyBps);
        vm.prank(who);
        market.allowAlgorithm(id, ALGORITHM);
        _datasets.push(id);
    }

    function buy(uint256 actorSeed, uint256 datasetSeed, uint32 periods) external clocked {
        if (_datasets.length == 0) return;
        uint256 id = _datasets[datasetSeed % _datasets.length];
        address buyer = _actor(actorSeed);
        DataMarket.Dataset memory d = market.dataset(id);
        if (d.pricePerPeriod == 0) return;
        periods = uint32(bound(periods, 1, 12));
        uint256 cost = d.pricePerPeriod * periods;
        address holder = market.ownerOf(id);
        (uint256 ownerShare, uint256 fee, uint256 royalty) =
            market.splitPayment(cost, FEE_BPS, d.royaltyBps, holder == d.publisher);
        int256[4] memory before = _balances(buyer, holder, d.publisher);
        vm.prank(buyer);
        market.buyAccess(id, periods, cost);
        int256[4] memory delta = _balances(buyer, holder, d.publisher);
        for (uint256 i; i < 4; ++i) {
            delta[i] -= before[i];
        }
        // Expected moves of (buyer, fee recipient, publisher, owner); an account in two roles sums them.
        int256[4] memory expected;
        // Costs are at most 12,000 MIND and times a few years from now: none of the casts below truncates.
        // forge-lint: disable-next-line(unsafe-typecast)
        expected[0] -= int256(cost);
        // forge-lint: disable-next-line(unsafe-typecast)
        expected[1] += int256(fee);
        // forge-lint: disable-next-line(unsafe-typecast)
        expected[2] += int256(royalty);
        // forge-lint: disable-next-line(unsafe-typecast)
        expected[3] += int256(ownerShare);
        address[4] memory who = [buyer, address(this), d.publisher, holder];
        for (uint256 i; i < 4; ++i) {
            int256 sum;
            for (uint256 j; j < 4; ++j) {
                if (who[j] == who[i]) sum += expected[j];
            }
            if (delta[i] != sum) ++ghostSplitMismatches;
        }
        if (ownerShare + fee + royalty != cost) ++ghostSplitMismatches;
        // forge-lint: disable-next-line(unsafe-typecast)
        uint64 start = _paidUntil[id][buyer] > now_ ? _paidUntil[id][buyer] : uint64(now_);
        _paidUntil[id][buyer] = start + d.period * periods;
    }

    function grant(uint256 datasetSeed, uint256 accountSeed, uint64 duration) external clocked {
        if (_datasets.length == 0) return;
        uint256 id = _datasets[datasetSeed % _datasets.length];
        address account = _actor(accountSeed);
        // forge-lint: disable-next-line(unsafe-typecast)
        uint64 expiresAt = uint64(now_ + bound(duration, 1, 60 days));
        vm.prank(market.ownerOf(id));
        market.grantAccess(id, account, expiresAt);
        _grantedUntil[id][account] = expiresAt;
    }

    function revoke(uint256 datasetSeed, uint256 accountSeed) external clocked {
        if (_datasets.length == 0) return;
        uint256 id = _datasets[datasetSeed % _datasets.length];
        address account = _actor(accountSeed);
        if (_grantedUntil[id][account] <= now_) return;
        vm.prank(market.ownerOf(id));
        market.revokeAccess(id, account);
        _grantedUntil[id][account] = 0;
    }

    function transfer(uint256 datasetSeed, uint256 toSeed) external clocked {
        if (_datasets.length == 0) return;
        uint256 id = _datasets[datasetSeed % _datasets.length];
        address from = market.ownerOf(id);
        vm.prank(from);
        market.transferFrom(from, _actor(toSeed), id);
    }

    function setProvider(uint256 datasetSeed, uint256 providerSeed) external clocked {
        if (_datasets.length == 0) return;
        uint256 id = _datasets[datasetSeed % _datasets.length];
        vm.prank(market.ownerOf(id));
        market.setProvider(id, _actors[providerSeed % HONEST]);
    }

    function setPrice(uint256 datasetSeed, uint256 price) external clocked {
        if (_datasets.length == 0) return;
        uint256 id = _datasets[datasetSeed % _datasets.length];
        vm.prank(market.ownerOf(id));
        market.setPrice(id, bound(price, 0, 1_000 ether));
    }

    /// @notice The dataset's provider records a receipt for a buyer with access, signed with its own key.
    function recordReceipt(uint256 datasetSeed, uint256 buyerSeed, uint256 nonce) external clocked {
        if (_datasets.length == 0) return;
        uint256 id = _datasets[datasetSeed % _datasets.length];
        address buyer = _actor(buyerSeed);
        if (!market.hasAccess(id, buyer)) return;
        address provider = market.providerOf(id);
        bytes32 request = keccak256(abi.encode("request", id, buyer, nonce, _requests.length));
        bytes memory signature = _sign(provider, id, request, buyer);
        vm.prank(provider);
        market.recordReceipt(id, request, ALGORITHM, keccak256(abi.encode(request)), buyer, signature);
        _requests.push(request);
    }

    function warp(uint256 secs) external clocked {
        _advance(bound(secs, 1, 20 days));
    }

    // ------------------------------------------------------------------------------------------------------
    // Malicious actions: each must revert
    // ------------------------------------------------------------------------------------------------------

    /// @notice A stranger (actor 4 or 5, unless it owns the dataset) tries every owner-only call.
    function strangerOwnerCalls(uint256 attackerSeed, uint256 datasetSeed, uint8 which) external clocked {
        if (_datasets.length == 0) return;
        uint256 id = _datasets[datasetSeed % _datasets.length];
        address attacker = _actors[HONEST + attackerSeed % (_actors.length - HONEST)];
        if (market.ownerOf(id) == attacker) return;
        vm.prank(attacker);
        bool ok;
        if (which % 5 == 0) {
            // forge-lint: disable-next-line(unsafe-typecast)
            (ok,) = address(market).call(abi.encodeCall(market.grantAccess, (id, attacker, uint64(now_ + 1 days))));
        } else if (which % 5 == 1) {
            (ok,) = address(market).call(abi.encodeCall(market.revokeAccess, (id, _actor(which))));
        } else if (which % 5 == 2) {
            (ok,) = address(market).call(abi.encodeCall(market.setPrice, (id, 0)));
        } else if (which % 5 == 3) {
            (ok,) = address(market).call(abi.encodeCall(market.setProvider, (id, attacker)));
        } else {
            (ok,) = address(market).call(abi.encodeCall(market.disallowAlgorithm, (id, ALGORITHM)));
        }
        if (ok) ++ghostStrangerOwnerCalls;
    }

    /// @notice The owner raises the price after the buyer read it; the buyer's purchase must be refused.
    function frontRunPrice(uint256 actorSeed, uint256 datasetSeed, uint256 raise) external clocked {
        if (_datasets.length == 0) return;
        uint256 id = _datasets[datasetSeed % _datasets.length];
        uint256 quoted = market.dataset(id).pricePerPeriod;
        if (quoted == 0) return;
        address holder = market.ownerOf(id);
        vm.prank(holder);
        market.setPrice(id, quoted + bound(raise, 1, 1_000 ether));
        vm.prank(_actor(actorSeed));
        (bool ok,) = address(market).call(abi.encodeCall(market.buyAccess, (id, 1, quoted)));
        if (ok) ++ghostFrontRunsPaid;
    }

    /// @notice A receipt by a non-provider, one signed with the wrong key, or a replay of a recorded request.
    function badReceipt(uint256 attackerSeed, uint256 datasetSeed, uint8 which) external clocked {
        if (_datasets.length == 0) return;
        uint256 id = _datasets[datasetSeed % _datasets.length];
        address provider = market.providerOf(id);
        address attacker = _actors[HONEST + attackerSeed % (_actors.length - HONEST)];
        address buyer = market.ownerOf(id); // always has access
        bytes32 request = keccak256(abi.encode("forged", id, which, now_));
        bool ok;
        if (which % 3 == 0 && attacker != provider) {
            bytes memory signature = _sign(attacker, id, request, buyer);
            vm.prank(attacker);
            (ok,) = address(market).call(
                abi.encodeCall(market.recordReceipt, (id, request, ALGORITHM, keccak256(abi.encode(request)), buyer, signature))
            );
        } else if (which % 3 == 1 && attacker != provider) {
            bytes memory signature = _sign(attacker, id, request, buyer);
            vm.prank(provider);
            (ok,) = address(market).call(
                abi.encodeCall(market.recordReceipt, (id, request, ALGORITHM, keccak256(abi.encode(request)), buyer, signature))
            );
        } else if (_requests.length > 0) {
            bytes32 recorded = _requests[which % _requests.length];
            DataMarket.Receipt memory r = market.receipt(recorded);
            address p = market.providerOf(r.datasetId);
            if (!market.hasAccess(r.datasetId, r.buyer)) return;
            bytes memory signature = _sign(p, r.datasetId, recorded, r.buyer);
            vm.prank(p);
            (ok,) = address(market).call(
                abi.encodeCall(
                    market.recordReceipt,
                    (r.datasetId, recorded, ALGORITHM, keccak256(abi.encode(recorded)), r.buyer, signature)
                )
            );
        }
        if (ok) ++ghostBadReceipts;
    }

    // ------------------------------------------------------------------------------------------------------
    // Checks
    // ------------------------------------------------------------------------------------------------------

    /// @notice How many (dataset, account) pairs the contract answers differently from the handler's own
    ///         record of purchases, grants and revocations at the campaign's time.
    function accessMismatches() external returns (uint256 count) {
        vm.warp(now_);
        for (uint256 i; i < _datasets.length; ++i) {
            uint256 id = _datasets[i];
            address holder = market.ownerOf(id);
            for (uint256 j; j < _actors.length; ++j) {
                address a = _actors[j];
                bool expected = a == holder || _paidUntil[id][a] > now_ || _grantedUntil[id][a] > now_;
                if (market.hasAccess(id, a) != expected) ++count;
            }
        }
    }

    /// @notice How many recorded requests have no receipt (a receipt lost or overwritten to nothing).
    function receiptsMissing() external view returns (uint256 count) {
        for (uint256 i; i < _requests.length; ++i) {
            if (market.receipt(_requests[i]).recordedAt == 0) ++count;
        }
    }

    function _sign(address signer, uint256 id, bytes32 request, address buyer) internal view returns (bytes memory) {
        uint256 key;
        for (uint256 i; i < _actors.length; ++i) {
            if (_actors[i] == signer) key = _keys[i];
        }
        (uint8 v, bytes32 r, bytes32 s) =
            vm.sign(key, market.receiptDigest(id, request, ALGORITHM, keccak256(abi.encode(request)), buyer));
        return abi.encodePacked(r, s, v);
    }

    function _balances(address buyer, address holder, address publisher) internal view returns (int256[4] memory b) {
        b[0] = int256(token.balanceOf(buyer));
        b[1] = int256(token.balanceOf(address(this)));
        b[2] = int256(token.balanceOf(publisher));
        b[3] = int256(token.balanceOf(holder));
    }
}
