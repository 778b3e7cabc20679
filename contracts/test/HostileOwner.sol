// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ImageRegistry} from "../ImageRegistry.sol";

/// @title HostileOwner
/// @notice Test-only: an image owner whose receive() re-enters the registry, reverts or burns gas.
/// @dev receive() writes no storage (a pushed refund carries little gas); it reports by event.
contract HostileOwner {
    enum Mode {
        Accept,
        ReenterCancel,
        ReenterClaim,
        Revert,
        BurnGas
    }

    /// @notice receive() tried to call back into the registry.
    event ReentryAttempted(bytes4 selector, bool succeeded);

    ImageRegistry public immutable registry;
    Mode public mode;
    bytes32[] public imageIds;

    /// @param registry_ The registry under attack.
    constructor(ImageRegistry registry_) {
        registry = registry_;
    }

    /// @notice Register `cid` as this contract, paying what was sent.
    /// @param cid The CID to register.
    function register(string calldata cid) external payable {
        imageIds.push(registry.registerImage{value: msg.value}(cid, bytes32(0)));
    }

    /// @notice Choose how receive() behaves.
    /// @param mode_ The new behaviour.
    function setMode(Mode mode_) external {
        mode = mode_;
    }

    /// @notice Cancel one of this contract's images as its owner.
    /// @param index Position in `imageIds`.
    function cancel(uint256 index) external {
        registry.cancel(imageIds[index]);
    }

    /// @notice Claim kept refunds as their owner, paid to `to`.
    /// @param to Recipient.
    function claim(address payable to) external {
        registry.claimRefund(to);
    }

    receive() external payable {
        if (mode == Mode.ReenterCancel) {
            bool succeeded;
            try registry.cancel(imageIds[imageIds.length - 1]) {
                succeeded = true;
            } catch {}
            emit ReentryAttempted(ImageRegistry.cancel.selector, succeeded);
        } else if (mode == Mode.ReenterClaim) {
            bool succeeded;
            try registry.claimRefund(payable(address(this))) {
                succeeded = true;
            } catch {}
            emit ReentryAttempted(ImageRegistry.claimRefund.selector, succeeded);
        } else if (mode == Mode.Revert) {
            revert("no refunds, thanks");
        } else if (mode == Mode.BurnGas) {
            while (true) {}
        }
    }
}
