// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {StdInvariant} from "forge-std/StdInvariant.sol";
import {Test} from "forge-std/Test.sol";
import {MindToken} from "../../contracts/MindToken.sol";
import {DataMarketHandler} from "./handlers/DataMarketHandler.sol";

/// @notice Random sequences of every DataMarket action (publish, buy, grant, revoke, sell the data NFT, name a
///         provider, reprice, record receipts, time passing) by four honest actors and two malicious ones; after
///         each step every token must be accounted for, the market must hold nothing (it pays out at once), every
///         purchase must have paid exactly its split, nobody may have access after its paid time and grant ended
///         or its grant was revoked, and each receipt is recorded once, by its provider only.
contract DataMarketInvariants is StdInvariant, Test {
    DataMarketHandler internal handler;
    MindToken internal token;

    function setUp() public {
        handler = new DataMarketHandler();
        token = handler.token();
        bytes4[] memory selectors = new bytes4[](12);
        selectors[0] = handler.publish.selector;
        selectors[1] = handler.buy.selector;
        selectors[2] = handler.grant.selector;
        selectors[3] = handler.revoke.selector;
        selectors[4] = handler.transfer.selector;
        selectors[5] = handler.setProvider.selector;
        selectors[6] = handler.setPrice.selector;
        selectors[7] = handler.recordReceipt.selector;
        selectors[8] = handler.warp.selector;
        selectors[9] = handler.strangerOwnerCalls.selector;
        selectors[10] = handler.frontRunPrice.selector;
        selectors[11] = handler.badReceipt.selector;
        targetSelector(FuzzSelector({addr: address(handler), selectors: selectors}));
        targetContract(address(handler));
    }

    function invariant_tokensConserved() public view {
        assertEq(handler.heldSupply(), token.totalSupply(), "sum of balances != supply");
    }

    /// @dev The market pays every sale out in the same transaction: it owes nothing, so it holds nothing.
    function invariant_marketHoldsNothing() public view {
        assertEq(token.balanceOf(address(handler.market())), 0, "the market holds MIND");
    }

    function invariant_splitExactToTheWei() public view {
        assertEq(handler.ghostSplitMismatches(), 0, "a purchase moved other amounts than its split");
    }

    function invariant_noAccessAfterExpiryOrRevocation() public {
        assertEq(handler.accessMismatches(), 0, "hasAccess disagrees with purchases, grants and revocations");
    }

    function invariant_eachReceiptOnceByItsProvider() public view {
        assertEq(handler.ghostBadReceipts(), 0, "a forged, foreign or replayed receipt was recorded");
        assertEq(handler.receiptsMissing(), 0, "a recorded receipt is gone");
    }

    function invariant_onlyOwnersActAsOwners() public view {
        assertEq(handler.ghostStrangerOwnerCalls(), 0, "a stranger acted as a dataset's owner");
    }

    function invariant_priceFrontRunNeverPaid() public view {
        assertEq(handler.ghostFrontRunsPaid(), 0, "a purchase paid more than its maxCost");
    }
}
