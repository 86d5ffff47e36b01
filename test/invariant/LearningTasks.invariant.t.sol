// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {StdInvariant} from "forge-std/StdInvariant.sol";
import {Test} from "forge-std/Test.sol";
import {MindToken} from "../../contracts/MindToken.sol";
import {LearningTasksHandler} from "./handlers/LearningTasksHandler.sol";

/// @notice Random sequences of every LearningTasks action (join, exit, claim, withdraw, start and close by the
///         creator, commit updates, commit and reveal scores, finalize or let the round expire, propose and
///         attest aggregates, consent revoked and given again, stakes released for lost access, blocks passing)
///         by honest members, a Sybil trainer with its validator and a digest copier; after each step
///         every token must be accounted for, no reward lost, nothing locked and nothing honest slashed.
contract LearningTasksInvariants is StdInvariant, Test {
    LearningTasksHandler internal handler;
    MindToken internal token;

    function setUp() public {
        handler = new LearningTasksHandler();
        token = handler.token();
        bytes4[] memory selectors = new bytes4[](16);
        selectors[0] = handler.join.selector;
        selectors[1] = handler.exit.selector;
        selectors[2] = handler.claim.selector;
        selectors[3] = handler.withdraw.selector;
        selectors[4] = handler.startRound.selector;
        selectors[5] = handler.closeTask.selector;
        selectors[6] = handler.commitUpdates.selector;
        selectors[7] = handler.commitScores.selector;
        selectors[8] = handler.revealScores.selector;
        selectors[9] = handler.finalize.selector;
        selectors[10] = handler.propose.selector;
        selectors[11] = handler.attest.selector;
        selectors[12] = handler.roll.selector;
        selectors[13] = handler.abandonRound.selector;
        selectors[14] = handler.consent.selector;
        selectors[15] = handler.releaseStake.selector;
        targetSelector(FuzzSelector({addr: address(handler), selectors: selectors}));
        targetContract(address(handler));
    }

    function invariant_tokensConserved() public view {
        assertEq(handler.heldSupply(), token.totalSupply(), "sum of balances != supply");
    }

    /// @dev The contract holds exactly stakes + unclaimed rewards + withdrawable balances + pools + burned.
    function invariant_balanceEqualsOwed() public view {
        assertEq(token.balanceOf(address(handler.tasks())), handler.owed(), "balance != what it owes");
    }

    function invariant_noRewardLost() public view {
        assertEq(handler.ghostClaimsLost(), 0, "a reward or withdrawable balance fell without its owner");
    }

    /// @dev Liveness: without the creator, the open round finalizes after its windows and every member exits.
    function invariant_membersCanAlwaysLeave() public {
        assertEq(handler.drainAll(), "", "a drain step failed");
    }

    /// @dev Issue 9, cases 3 and 11: while honest validators hold most of the revealed stake, a trainer that
    ///      committed (even one whose digest a copier also committed) and a validator that revealed honestly
    ///      keep their whole stake.
    function invariant_honestMembersNeverSlashed() public view {
        assertEq(handler.ghostHonestSlashed(), 0, "an honest member was slashed");
    }

    /// @dev Issue 10: an honest update that the honest validators exclude (score 1) is never paid, and never
    ///      slashed either (`invariant_honestMembersNeverSlashed` covers the skewed trainer), even when the
    ///      attacker scores it 0 from a minority of the revealed stake.
    function invariant_excludedNeverPaid() public view {
        assertEq(handler.ghostExcludedPaid(), 0, "an excluded update was paid");
    }

    /// @dev Issue 9, case 4: an aggregate needs votes holding a strict majority of the round's revealed stake.
    function invariant_aggregateNeedsMajority() public view {
        assertEq(handler.ghostMinorityAggregates(), 0, "a minority installed an aggregate");
    }

    /// @dev Issue 13: an update is committed, and a stake released as lost access, only as the trainer's
    ///      access to the task's dataset allows at that moment.
    function invariant_accessDecides() public view {
        assertEq(handler.ghostAccessIgnored(), 0, "a commit without access, or a release with access");
    }

    /// @dev Issue 13: a trainer whose consent was revoked takes back its whole stake, at once.
    function invariant_releaseReturnsWholeStake() public view {
        assertEq(handler.ghostReleaseShort(), 0, "a release moved less (or more) than the stake");
    }
}
