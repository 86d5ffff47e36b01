// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {StdInvariant} from "forge-std/StdInvariant.sol";
import {Test} from "forge-std/Test.sol";
import {MindToken} from "../../contracts/MindToken.sol";
import {InferenceOracleHandler} from "./handlers/InferenceOracleHandler.sol";

/// @notice Random sequences of every InferenceOracle action (register, exit, collect, withdraw, request,
///         commit, reveal, finalize, signed reports, proofs, blocks passing) by four honest operators, two colluders and
///         two requesters; after each step every token must be accounted for, no claim lost, nothing locked,
///         and no result decided by fewer than its threshold.
contract InferenceOracleInvariants is StdInvariant, Test {
    InferenceOracleHandler internal handler;
    MindToken internal token;

    function setUp() public {
        handler = new InferenceOracleHandler();
        token = handler.token();
        bytes4[] memory selectors = new bytes4[](11);
        selectors[0] = handler.register.selector;
        selectors[1] = handler.exit.selector;
        selectors[2] = handler.collectFees.selector;
        selectors[3] = handler.withdraw.selector;
        selectors[4] = handler.request.selector;
        selectors[5] = handler.commit.selector;
        selectors[6] = handler.reveal.selector;
        selectors[7] = handler.finalize.selector;
        selectors[8] = handler.submitReport.selector;
        selectors[9] = handler.roll.selector;
        selectors[10] = handler.prove.selector;
        targetSelector(FuzzSelector({addr: address(handler), selectors: selectors}));
        targetContract(address(handler));
    }

    function invariant_tokensConserved() public view {
        assertEq(handler.heldSupply(), token.totalSupply(), "sum of balances != supply");
    }

    /// @dev The oracle holds exactly stakes + uncollected fees + withdrawable balances + open requests' fees.
    function invariant_balanceEqualsOwed() public view {
        assertEq(token.balanceOf(address(handler.oracle())), handler.owed(), "oracle balance != what it owes");
    }

    function invariant_noClaimLost() public view {
        assertEq(handler.ghostClaimsLost(), 0, "a withdrawable balance or fee fell without its owner");
    }

    /// @dev Liveness: after the windows every request finalizes, every operator exits, everyone withdraws.
    function invariant_everythingCanBeDrained() public {
        assertEq(handler.drainAll(), "", "a drain step failed");
    }

    /// @dev Issue 9, case 3: only provable misbehaviour is slashed; a truthful revealer never is while the
    ///      truthful hold at least half of the revealed stake (a tie is a split: voided, nobody slashed).
    function invariant_honestNeverSlashed() public view {
        assertEq(handler.ghostHonestSlashed(), 0, "an honest revealer was slashed");
    }

    /// @dev Issue 9, case 3: a result needs a strict majority of the revealed stake; a split is voided.
    function invariant_medianHasStrictMajority() public view {
        assertEq(handler.ghostSplitsDecided(), 0, "a split was decided");
    }

    /// @dev Issue 9, case 2: a report needs signers holding more than two thirds of the active stake.
    function invariant_reportNeedsTwoThirds() public view {
        assertEq(handler.ghostReportsBelowTwoThirds(), 0, "a report below two thirds was accepted");
    }

    /// @dev Issue 9, cases 2 and 3: the colluders never override honest revealers holding most of the
    ///      revealed stake, by reveals or by a report.
    function invariant_honestMajorityPrevails() public view {
        assertEq(handler.ghostHonestMajorityOverridden(), 0, "an honest majority was overridden");
    }

    /// @dev Issue 15: a proof settles a request only with the true answer, for the operator it was made for.
    function invariant_onlySoundProofsSettle() public view {
        assertEq(handler.ghostBadProofsAccepted(), 0, "a proof of a lie, or a stolen proof, was accepted");
    }

    /// @dev Issue 15: settling by proof releases the operators that committed; it slashes nobody.
    function invariant_proofSlashesNobody() public view {
        assertEq(handler.ghostSlashedByProof(), 0, "a proof's settlement slashed an operator");
    }
}
