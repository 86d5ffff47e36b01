// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {StdInvariant} from "forge-std/StdInvariant.sol";
import {Test} from "forge-std/Test.sol";
import {MindToken} from "../../contracts/MindToken.sol";
import {CropInsuranceHandler} from "./handlers/CropInsuranceHandler.sol";

/// @notice Random sequences of every CropInsurance action (fund, withdraw, buy, report, assess, answer or fail
///         the request, expire, collect the oracle's refunds, settle, claim, time passing); after each step the pool must be solvent and account
///         for every token, and nobody's claim may be lost or stuck.
contract CropInsuranceInvariants is StdInvariant, Test {
    CropInsuranceHandler internal handler;
    MindToken internal token;

    function setUp() public {
        handler = new CropInsuranceHandler();
        token = handler.token();
        bytes4[] memory selectors = new bytes4[](13);
        selectors[0] = handler.fund.selector;
        selectors[1] = handler.withdraw.selector;
        selectors[2] = handler.openSeason.selector;
        selectors[3] = handler.setOracleFee.selector;
        selectors[4] = handler.reportConditions.selector;
        selectors[5] = handler.buyPolicy.selector;
        selectors[6] = handler.assess.selector;
        selectors[7] = handler.settle.selector;
        selectors[8] = handler.claim.selector;
        selectors[9] = handler.oracleAnswer.selector;
        selectors[10] = handler.warp.selector;
        selectors[11] = handler.expire.selector;
        selectors[12] = handler.collectOracleRefunds.selector;
        targetSelector(FuzzSelector({addr: address(handler), selectors: selectors}));
        targetContract(address(handler));
    }

    /// @dev MindToken mints once, so the holders' balances must add up to the supply to the wei.
    function invariant_tokensConserved() public view {
        assertEq(handler.heldSupply(), token.totalSupply(), "sum of balances != supply");
    }

    function invariant_poolSolvent() public view {
        (uint256 balance, uint256 owed, uint256 committed, uint256 reserved,) = handler.insurance().pool();
        assertGe(balance, owed + committed + reserved, "balance < owed + committed + reserved");
    }

    /// @dev The pool's books match its parts: owed is the farmers' claims, committed the region-seasons'
    ///      commitments, reserved the open coverages (with the fee set aside for each region-season not yet
    ///      assessed), shares the underwriters' holdings; the test oracle holds exactly the fees it kept, those
    ///      still open and the refunds the pool has not collected.
    function invariant_booksMatchParts() public view {
        assertEq(handler.insurance().totalOwed(), handler.sumClaimable(), "owed != sum of claimable");
        assertEq(handler.insurance().totalCommitted(), handler.sumCommitted(), "committed != sum of commitments");
        assertEq(
            handler.insurance().totalReserved(),
            handler.activeCoverage() + handler.feeReserves(),
            "reserved != unscored coverage + fee reserves"
        );
        assertEq(handler.insurance().totalShares(), handler.sumShares(), "totalShares != sum of shares");
        assertEq(
            token.balanceOf(address(handler.oracle())),
            handler.ghostOracleKept() + handler.oracleOpenFees() + handler.oracleRefundsOwed(),
            "oracle balance != kept + open fees + refunds owed"
        );
    }

    /// @dev No farmer's settled payout is ever reduced or lost before the farmer claims it.
    function invariant_noClaimLost() public view {
        address[] memory actors = handler.actors();
        for (uint256 i; i < 3; ++i) {
            assertEq(handler.insurance().claimable(actors[i]), handler.ghostClaimable(actors[i]), "claimable moved");
        }
    }

    /// @dev Liveness: once seasons end and the oracle answers, every policy settles, every farmer is paid and
    ///      every underwriter can take all of its capital out; nothing stays reserved forever.
    function invariant_everythingCanBeDrainedWithOwnerHelp() public {
        assertEq(handler.drainAll(true), "", "a drain step failed");
    }

    /// @dev Issue 9, case 7: the same without the owner's help. A pool whose free capital is below the oracle
    ///      fee cannot pay for an assessment: its region-seasons expire after the assessment window and their
    ///      premiums are refunded, so nothing stays reserved.
    function invariant_drainsWithoutOwnerHelp() public {
        assertEq(handler.drainAll(false), "", "a drain step failed");
    }

    /// @dev Issue 9, case 5: an underwriter who withdraws after a loss is scored, before it is settled, must
    ///      bear its share of that loss.
    function invariant_withdrawBearsScoredLosses() public view {
        assertEq(handler.ghostWithdrawalsAboveNetEquity(), 0, "a withdrawal escaped a scored loss");
    }
}
