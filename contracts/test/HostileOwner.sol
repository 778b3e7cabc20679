// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ImageRegistry} from "../ImageRegistry.sol";

/// @title HostileOwner
/// @notice Test-only: an image owner whose receive() re-enters the registry, reverts or burns gas.
contract HostileOwner {
    enum Mode {
        Accept,
        ReenterCancel,
        ReenterClaim,
        Revert,
        BurnGas
    }

    ImageRegistry public immutable registry;
    bytes32 public imageId;
    Mode public mode;
    uint256 public received;
    uint256 public reentryAttempts;
    uint256 public reentrySuccesses;

    /// @param registry_ The registry under attack.
    constructor(ImageRegistry registry_) {
        registry = registry_;
    }

    /// @notice Register `cid` as this contract, paying what was sent.
    /// @param cid The CID to register.
    function register(string calldata cid) external payable {
        imageId = registry.registerImage{value: msg.value}(cid, bytes32(0));
    }

    /// @notice Choose how receive() behaves.
    /// @param mode_ The new behaviour.
    function setMode(Mode mode_) external {
        mode = mode_;
    }

    /// @notice Cancel the registered image as its owner.
    function cancel() external {
        registry.cancel(imageId);
    }

    /// @notice Claim deferred refunds as their owner.
    function claim() external {
        registry.claimRefund();
    }

    receive() external payable {
        received += msg.value;
        if (mode == Mode.ReenterCancel) {
            ++reentryAttempts;
            try registry.cancel(imageId) {
                ++reentrySuccesses;
            } catch {}
        } else if (mode == Mode.ReenterClaim) {
            ++reentryAttempts;
            try registry.claimRefund() {
                ++reentrySuccesses;
            } catch {}
        } else if (mode == Mode.Revert) {
            revert("no refunds, thanks");
        } else if (mode == Mode.BurnGas) {
            while (true) {}
        }
    }
}
