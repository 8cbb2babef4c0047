// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.28;

/// @title Forwarder
/// @notice Moves ETH inside transactions (internal transfers) for paytrace's end-to-end tests.
///         Every function's call tree is fixed, so a test can predict each call frame's position
///         in the depth-first pre-order of the transaction's frames.
contract Forwarder {
    /// Deployable with value (a contract creation that moves ETH).
    constructor() payable {}

    /// Accepts plain ETH (used for self-transfers through `forward`).
    receive() external payable {}

    /// Sends `amounts[i]` wei to `to[i]` with one `call` each (frame i + 1, traceAddress [i]).
    /// Value not forwarded stays in this contract.
    function forward(address payable[] calldata to, uint256[] calldata amounts) external payable {
        require(to.length == amounts.length, "length");
        for (uint256 i = 0; i < to.length; i++) {
            (bool ok, ) = to[i].call{value: amounts[i]}("");
            require(ok, "send failed");
        }
    }

    /// Frames: 0 top level; 1 this.sendThenRevert{value: msg.value} (reverts, traceAddress [0]);
    /// 2 its call sending msg.value to `lost` (traceAddress [0, 0], undone by the revert);
    /// 3 a call sending `kept` wei to `kept_to` (traceAddress [1]), which stands.
    function forwardThenRevert(address payable lost, address payable keptTo, uint256 kept) external payable {
        try this.sendThenRevert{value: msg.value}(lost) {
            revert("sub-call was expected to revert");
        } catch {}
        (bool ok, ) = keptTo.call{value: kept}("");
        require(ok, "send failed");
    }

    /// Sends all of msg.value to `to`, then reverts.
    function sendThenRevert(address payable to) external payable {
        (bool ok, ) = to.call{value: msg.value}("");
        require(ok, "send failed");
        revert("always reverts");
    }

    /// Frame 1 is a zero-value call to `to`: no transfer.
    function ping(address to) external {
        (bool ok, ) = to.call("");
        require(ok, "ping failed");
    }

    /// Always reverts: a failed top-level transaction with value moves nothing.
    function alwaysRevert() external payable {
        revert("always reverts");
    }
}
