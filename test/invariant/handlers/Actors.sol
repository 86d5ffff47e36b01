// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {CommonBase} from "forge-std/Base.sol";
import {StdUtils} from "forge-std/StdUtils.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {MindToken} from "../../../contracts/MindToken.sol";

/// @notice What every handler shares: a fixed cast of funded actors (some honest, some malicious, by the
///         handler's choice of what each does) and the list of every token holder, so that conservation can
///         be checked by summing balances.
abstract contract Actors is CommonBase, StdUtils {
    using SafeERC20 for MindToken;

    MindToken public immutable token;
    address[] internal _actors;
    uint256[] internal _keys;
    address[] internal _holders;
    /// @dev The campaign's clock: cheatcode warps and rolls made in one call do not reliably carry over to the
    ///      next, so every action starts by restoring them (the `clocked` modifier).
    uint256 public now_;
    uint256 public block_;

    /// @param count How many actors to create.
    /// @param funding What each actor receives; the handler keeps the rest of the supply.
    constructor(uint256 count, uint256 funding) {
        token = new MindToken(address(this), 10_000_000 ether);
        now_ = block.timestamp;
        block_ = block.number;
        _holders.push(address(this));
        for (uint256 i; i < count; ++i) {
            // Private keys start at 1: actors sign EIP-712 reports with vm.sign.
            uint256 key = 0xA11CE + i;
            address who = vm.addr(key);
            _actors.push(who);
            _keys.push(key);
            _holders.push(who);
            token.safeTransfer(who, funding);
        }
    }

    /// @notice The sum of the balances of every address that may hold tokens in this campaign: the supply,
    ///         as long as tokens are conserved.
    function heldSupply() external view returns (uint256 sum) {
        for (uint256 i; i < _holders.length; ++i) {
            sum += token.balanceOf(_holders[i]);
        }
    }

    /// @notice The actors, in creation order.
    function actors() external view returns (address[] memory) {
        return _actors;
    }

    modifier clocked() {
        vm.warp(now_);
        vm.roll(block_);
        _;
    }

    /// @notice Lets time pass: `secs` seconds and one block per 12 seconds (at least one).
    function _advance(uint256 secs) internal {
        now_ += secs;
        block_ += secs / 12 + 1;
        vm.warp(now_);
        vm.roll(block_);
    }

    function _actor(uint256 seed) internal view returns (address) {
        return _actors[seed % _actors.length];
    }

    function _addHolder(address who) internal {
        _holders.push(who);
    }
}
