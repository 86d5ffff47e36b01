// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {ERC20Votes} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Votes.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";

/// @title MindToken
/// @notice The ERC-20 that Ledgermind uses for stakes, rewards and payments. Permit lets a participant
///         approve a stake with a signature; votes let holders govern the protocol's parameters.
/// @dev The whole supply is minted once at deployment: no account can mint later, so stakes and
///      rewards can only move tokens that exist, and conservation is checkable by summing balances.
contract MindToken is ERC20, ERC20Permit, ERC20Votes {
    /// @notice Mints `supply` tokens (18 decimals) to `treasury`.
    /// @param treasury The account that receives the whole supply and funds reward pools and participants.
    /// @param supply The total supply, fixed forever.
    constructor(address treasury, uint256 supply) ERC20("Ledgermind", "MIND") ERC20Permit("Ledgermind") {
        _mint(treasury, supply);
    }

    /// @inheritdoc ERC20Permit
    function nonces(address owner) public view override(ERC20Permit, Nonces) returns (uint256) {
        return super.nonces(owner);
    }

    function _update(address from, address to, uint256 value) internal override(ERC20, ERC20Votes) {
        super._update(from, to, value);
    }
}
