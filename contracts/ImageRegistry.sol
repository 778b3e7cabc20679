// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IImageRegistry} from "./IImageRegistry.sol";

/// @title ImageRegistry
/// @notice Patients register the IPFS CID of an encrypted pathology image; oracles commit a salted
///         hash of the classification back. The chain holds who registered what, when, which model
///         answered and a commitment to the answer: never the image, never the diagnosis in clear.
/// @dev One storage slot per registration (the CID lives only in the event), so registering stays
///      cheap. A record belongs to its registrant: its id hashes the owner with the CID, so a CID
///      seen in the mempool lets nobody take a patient's record. Each model has its own fee (a 4×
///      image costs more to make than a label); fees are escrowed per request and
///      either earned (result posted) or refunded (failure reported, request cancelled after its
///      timeout). A refund that the owner cannot receive within `REFUND_GAS` is kept for the owner
///      to claim, so no owner can block an oracle. Oracles publish the X25519 keys images are
///      encrypted to; revoking an oracle's role drops its key.
contract ImageRegistry is IImageRegistry, AccessControl, ReentrancyGuardTransient {
    /// @notice Role allowed to post results and report failures.
    bytes32 public constant ORACLE_ROLE = keccak256("ORACLE_ROLE");

    /// @notice Gas forwarded with a pushed refund: enough for a smart wallet's receive, too little to abuse.
    uint256 public constant REFUND_GAS = 20_000;

    /// @notice Gas a refunding call must still hold before pushing: the stipend plus the deferral
    ///         path (a fresh owed-refund slot and its event), so a gas estimate always covers both.
    uint256 public constant REFUND_GAS_FLOOR = REFUND_GAS + 45_000;

    /// @notice Longest request timeout an admin may set.
    uint32 public constant MAX_REQUEST_TIMEOUT = 30 days;

    /// @notice Longest CID accepted, in bytes.
    uint256 public constant MAX_CID_LENGTH = 128;

    /// @dev Exactly one slot. `feeEpoch == 0` means nothing was paid.
    struct Record {
        address owner;
        Status status;
        uint16 modelIndex;
        uint40 registeredAt;
        uint32 feeEpoch;
    }

    /// @dev One slot per fee epoch: what a request of that epoch paid, and what a failure keeps of it.
    struct Fees {
        uint96 request;
        uint96 failure;
    }

    /// @dev Exactly one slot. `feeEpoch` counts the epochs handed out, across all models; the
    ///      default model's terms are copied here so that a registration for it reads one slot less.
    struct Config {
        uint96 defaultFee;
        uint32 defaultFeeEpoch;
        uint32 feeEpoch;
        uint32 requestTimeout;
        uint16 defaultModelIndex;
        uint16 modelCount;
    }

    /// @dev Exactly one slot, read once per registration: the model's current terms with it
    ///      (`feeEpoch == 0` while the model is free).
    struct ModelState {
        uint16 index;
        bool active;
        uint32 feeEpoch;
        uint96 requestFee;
    }

    Config private _config;
    uint256 private _earnedFees;
    mapping(bytes32 imageId => Record) private _records;
    mapping(bytes32 imageId => bytes32) private _resultHashes;
    mapping(bytes32 modelId => ModelState) private _models;
    mapping(uint16 index => bytes32 modelId) private _modelIds;
    mapping(uint32 epoch => Fees) private _feesAt;
    mapping(address owner => uint256 amount) private _refundsOwed;
    mapping(address oracle => bytes32 key) private _encryptionKeys;
    address[] private _keyHolders;
    mapping(address oracle => uint256 position) private _keyHolderPosition; // 1-based in _keyHolders


    /// @param admin Holder of the admin role (manages models and their fees, timeout, roles, earned fees).
    /// @param initialTimeout Seconds after which the owner of a pending request may cancel it.
    constructor(address admin, uint32 initialTimeout) {
        if (admin == address(0)) revert ZeroAddress();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _setRequestTimeout(initialTimeout);
    }

    // ------------------------------------------------------------------ patients

    /// @notice Register an encrypted image for classification; the record belongs to the caller.
    /// @param cid The IPFS CID of the image's age envelope (the page registers CIDv1 base32).
    /// @param modelId The model to classify with; zero selects the current default model.
    /// @return imageId `keccak256(abi.encodePacked(msg.sender, bytes(cid)))`.
    function registerImage(string calldata cid, bytes32 modelId) external payable returns (bytes32 imageId) {
        uint256 length = bytes(cid).length;
        if (length == 0 || length > MAX_CID_LENGTH) revert InvalidCid(length);
        uint16 modelIndex;
        uint32 feeEpoch;
        uint96 fee;
        if (modelId == bytes32(0)) {
            Config memory config = _config;
            modelIndex = config.defaultModelIndex;
            if (modelIndex == 0) revert NoDefaultModel();
            modelId = _modelIds[modelIndex];
            (fee, feeEpoch) = (config.defaultFee, config.defaultFeeEpoch); // never retired
        } else {
            ModelState memory model = _models[modelId];
            if (model.index == 0) revert UnknownModel(modelId);
            if (!model.active) revert ModelNotActive(modelId);
            (modelIndex, fee, feeEpoch) = (model.index, model.requestFee, model.feeEpoch);
        }
        if (msg.value != fee) revert IncorrectFee(msg.value, fee);

        imageId = _imageId(msg.sender, cid);
        if (_records[imageId].status != Status.None) revert AlreadyRegistered(imageId);
        _records[imageId] = Record({
            owner: msg.sender,
            status: Status.Pending,
            modelIndex: modelIndex,
            registeredAt: uint40(block.timestamp),
            feeEpoch: feeEpoch
        });
        emit ImageRegistered(imageId, msg.sender, modelId, cid);
    }

    /// @notice Cancel your own pending request once it has timed out; the fee is refunded.
    /// @param imageId The request to cancel.
    function cancel(bytes32 imageId) external nonReentrant {
        Record storage record = _pendingRecord(imageId);
        if (record.owner != msg.sender) revert NotImageOwner(imageId, msg.sender);
        uint256 deadline = uint256(record.registeredAt) + _config.requestTimeout;
        if (block.timestamp < deadline) revert RequestNotTimedOut(imageId, deadline);
        record.status = Status.Cancelled;
        emit RequestCancelled(imageId, msg.sender);
        _refund(imageId, msg.sender, _feePaid(record));
    }

    /// @notice Withdraw, to any address, the refunds that could not be pushed to you when due
    ///         (an owner contract that cannot receive ether names another recipient).
    /// @param to Recipient of the kept refunds.
    function claimRefund(address payable to) external nonReentrant {
        if (to == address(0)) revert ZeroAddress();
        uint256 amount = _refundsOwed[msg.sender];
        if (amount == 0) revert NothingToClaim(msg.sender);
        _refundsOwed[msg.sender] = 0;
        emit RefundClaimed(msg.sender, to, amount);
        _send(to, amount);
    }

    // ------------------------------------------------------------------ oracles

    /// @notice Commit the result of a pending request.
    /// @param imageId The request.
    /// @param resultHash keccak256 of the RFC 8785 canonical result document (never zero).
    function postResult(bytes32 imageId, bytes32 resultHash) external onlyRole(ORACLE_ROLE) {
        if (resultHash == bytes32(0)) revert EmptyResultHash(imageId);
        Record storage record = _pendingRecord(imageId);
        uint256 earned = _settle(imageId, record, resultHash);
        if (earned != 0) _earnedFees += earned;
    }

    /// @notice Commit several results at once. Requests that are no longer pending (another oracle
    ///         got there first) or unknown are skipped, not reverted.
    /// @param imageIds The requests.
    /// @param resultHashes Their result hashes, in the same order (none zero).
    /// @return posted How many results were committed.
    function postResults(bytes32[] calldata imageIds, bytes32[] calldata resultHashes)
        external
        onlyRole(ORACLE_ROLE)
        returns (uint256 posted)
    {
        if (imageIds.length != resultHashes.length) revert LengthMismatch(imageIds.length, resultHashes.length);
        uint256 earned;
        for (uint256 i; i < imageIds.length; ++i) {
            bytes32 imageId = imageIds[i];
            if (resultHashes[i] == bytes32(0)) revert EmptyResultHash(imageId);
            Record storage record = _records[imageId];
            if (record.status != Status.Pending) continue;
            earned += _settle(imageId, record, resultHashes[i]);
            ++posted;
        }
        if (earned != 0) _earnedFees += earned;
    }

    /// @notice Report that a pending request cannot be classified; the fee is refunded minus the
    ///         failure fee of its epoch, which the oracles earn (garbage costs its sender).
    /// @param imageId The request.
    /// @param reason A `FailureReason` other than None.
    function reportFailure(bytes32 imageId, uint8 reason) external onlyRole(ORACLE_ROLE) nonReentrant {
        _checkReason(reason);
        uint256 kept = _fail(imageId, _pendingRecord(imageId), reason);
        if (kept != 0) _earnedFees += kept;
    }

    /// @notice Report several failures at once. Requests that are no longer pending are skipped.
    /// @param imageIds The requests.
    /// @param reasons Their `FailureReason`s, in the same order (none None).
    /// @return reported How many failures were recorded.
    function reportFailures(bytes32[] calldata imageIds, uint8[] calldata reasons)
        external
        onlyRole(ORACLE_ROLE)
        nonReentrant
        returns (uint256 reported)
    {
        if (imageIds.length != reasons.length) revert LengthMismatch(imageIds.length, reasons.length);
        uint256 kept;
        for (uint256 i; i < imageIds.length; ++i) {
            _checkReason(reasons[i]);
            Record storage record = _records[imageIds[i]];
            if (record.status != Status.Pending) continue;
            kept += _fail(imageIds[i], record, reasons[i]);
            ++reported;
        }
        if (kept != 0) _earnedFees += kept;
    }

    /// @notice Publish the caller's X25519 public key, to which patients encrypt their images.
    /// @param key The raw 32-byte X25519 public key (an age `age1…` recipient, bech32-decoded).
    function setEncryptionKey(bytes32 key) external onlyRole(ORACLE_ROLE) {
        if (key == bytes32(0)) revert InvalidEncryptionKey();
        if (_keyHolderPosition[msg.sender] == 0) {
            _keyHolders.push(msg.sender);
            _keyHolderPosition[msg.sender] = _keyHolders.length;
        }
        _encryptionKeys[msg.sender] = key;
        emit EncryptionKeySet(msg.sender, key);
    }

    // ------------------------------------------------------------------ admin

    /// @notice Register a model with its fee. `modelId` commits to the weights, the preprocessing
    ///         and the labels.
    /// @param modelId Non-zero id computed from the model card.
    /// @param name Human-readable name (event only).
    /// @param metadataURI Where the model card can be read (event only).
    /// @param fee Wei a registration for this model must pay exactly.
    /// @param failureFee Wei a failed request keeps of its fee, at most `fee`.
    function registerModel(
        bytes32 modelId,
        string calldata name,
        string calldata metadataURI,
        uint96 fee,
        uint96 failureFee
    ) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (modelId == bytes32(0)) revert InvalidModelId();
        if (_models[modelId].index != 0) revert ModelAlreadyRegistered(modelId);
        uint16 index = _config.modelCount + 1;
        if (index == type(uint16).max) revert TooManyModels();
        _config.modelCount = index;
        ModelState storage model = _models[modelId];
        model.index = index;
        model.active = true;
        _modelIds[index] = modelId;
        emit ModelRegistered(modelId, index, name, metadataURI);
        _setModelFee(modelId, model, fee, failureFee);
    }

    /// @notice Set a model's fee for new registrations; pending requests keep the terms they
    ///         registered under.
    /// @param modelId A registered model.
    /// @param fee Wei a registration for this model must pay exactly.
    /// @param failureFee Wei a failed request keeps of its fee: at least what reporting a failure
    ///        costs the oracle (garbage costs its sender what it costs us), at most `fee`.
    function setModelFee(bytes32 modelId, uint96 fee, uint96 failureFee) external onlyRole(DEFAULT_ADMIN_ROLE) {
        ModelState storage model = _models[modelId];
        if (model.index == 0) revert UnknownModel(modelId);
        _setModelFee(modelId, model, fee, failureFee);
    }

    /// @notice Stop accepting new requests for a model; its pending requests can still be answered.
    /// @param modelId An active model that is not the default.
    function retireModel(bytes32 modelId) external onlyRole(DEFAULT_ADMIN_ROLE) {
        ModelState storage model = _activeModel(modelId);
        if (model.index == _config.defaultModelIndex) revert CannotRetireDefaultModel(modelId);
        model.active = false;
        emit ModelRetired(modelId);
    }

    /// @notice Choose the model used when a registration passes modelId zero.
    /// @param modelId An active model.
    function setDefaultModel(bytes32 modelId) external onlyRole(DEFAULT_ADMIN_ROLE) {
        ModelState memory model = _activeModel(modelId);
        Config storage config = _config;
        emit DefaultModelChanged(_modelIds[config.defaultModelIndex], modelId);
        (config.defaultModelIndex, config.defaultFee, config.defaultFeeEpoch) =
            (model.index, model.requestFee, model.feeEpoch);
    }

    /// @notice Set how long a request may stay pending before its owner may cancel it.
    /// @param timeout Seconds, from 1 to MAX_REQUEST_TIMEOUT; applies to pending requests too.
    function setRequestTimeout(uint32 timeout) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setRequestTimeout(timeout);
    }

    /// @notice Withdraw fees earned by posted results. Escrowed and owed fees are never touched.
    /// @param to Recipient.
    /// @param amount Wei, at most `earnedFees()`.
    function withdrawFees(address payable to, uint256 amount) external onlyRole(DEFAULT_ADMIN_ROLE) nonReentrant {
        if (to == address(0)) revert ZeroAddress();
        uint256 available = _earnedFees;
        if (amount > available) revert InsufficientEarnedFees(amount, available);
        _earnedFees = available - amount;
        emit FeesWithdrawn(to, amount);
        _send(to, amount);
    }

    // ------------------------------------------------------------------ views

    /// @notice The encryption keys of every current oracle-role holder that published one.
    /// @return oracles The key holders.
    /// @return keys Their X25519 public keys, in the same order.
    function encryptionKeys() external view returns (address[] memory oracles, bytes32[] memory keys) {
        oracles = _keyHolders;
        keys = new bytes32[](oracles.length);
        for (uint256 i; i < oracles.length; ++i) {
            keys[i] = _encryptionKeys[oracles[i]];
        }
    }

    /// @notice An image's record; `status == None` for an unknown image.
    /// @param imageId The request.
    /// @return image Owner, status, model, result hash, registration time, cancel deadline, fee paid.
    function getImage(bytes32 imageId) external view returns (ImageView memory image) {
        Record storage record = _records[imageId];
        if (record.status == Status.None) return image;
        image = ImageView({
            owner: record.owner,
            status: record.status,
            modelId: _modelIds[record.modelIndex],
            resultHash: _resultHashes[imageId],
            registeredAt: record.registeredAt,
            deadline: uint64(record.registeredAt) + _config.requestTimeout,
            feePaid: _feePaid(record)
        });
    }

    /// @notice Just the status, for the oracle's check before it sends a transaction.
    /// @param imageId The request.
    /// @return The request's status.
    function statusOf(bytes32 imageId) external view returns (Status) {
        return _records[imageId].status;
    }

    /// @notice The id `owner` registers `cid` under.
    /// @param owner The registrant.
    /// @param cid The CID string as registered.
    /// @return `keccak256(abi.encodePacked(owner, bytes(cid)))`.
    function imageIdOf(address owner, string calldata cid) external pure returns (bytes32) {
        return _imageId(owner, cid);
    }

    /// @notice A model's state: `index == 0` means not registered.
    /// @param modelId The model.
    /// @return index Registration order, 1-based.
    /// @return active Whether it accepts new requests.
    function getModel(bytes32 modelId) external view returns (uint16 index, bool active) {
        ModelState memory model = _models[modelId];
        return (model.index, model.active);
    }

    /// @notice The terms of a registration for a model made now.
    /// @param modelId A registered model; zero for the current default model.
    /// @return fee Wei the registration must pay exactly.
    /// @return failureFee Wei a failure keeps of it (the rest is refunded).
    function modelFee(bytes32 modelId) external view returns (uint256 fee, uint256 failureFee) {
        if (modelId == bytes32(0)) {
            uint16 defaultIndex = _config.defaultModelIndex;
            if (defaultIndex == 0) revert NoDefaultModel();
            modelId = _modelIds[defaultIndex];
        }
        ModelState memory model = _models[modelId];
        if (model.index == 0) revert UnknownModel(modelId);
        return (model.requestFee, model.feeEpoch == 0 ? 0 : _feesAt[model.feeEpoch].failure);
    }

    /// @notice The model registered at `index` (1-based, up to `modelCount()`).
    /// @param index Registration order.
    /// @return The model id, zero past `modelCount()`.
    function modelAt(uint16 index) external view returns (bytes32) {
        return _modelIds[index];
    }

    /// @notice How many models were ever registered.
    /// @return The count, retired models included.
    function modelCount() external view returns (uint16) {
        return _config.modelCount;
    }

    /// @notice The model used for registrations that pass modelId zero.
    /// @return The model id, zero if none is set.
    function defaultModel() external view returns (bytes32) {
        return _modelIds[_config.defaultModelIndex];
    }

    /// @notice How long a request stays pending before its owner may cancel it.
    /// @return Seconds.
    function requestTimeout() external view returns (uint32) {
        return _config.requestTimeout;
    }

    /// @notice Fees earned by posted results and failure fees, not yet withdrawn.
    /// @return Wei.
    function earnedFees() external view returns (uint256) {
        return _earnedFees;
    }

    /// @notice Refunds kept for `owner` because pushing them failed.
    /// @param owner The refund's recipient.
    /// @return Wei.
    function refundOwed(address owner) external view returns (uint256) {
        return _refundsOwed[owner];
    }

    // ------------------------------------------------------------------ internals

    /// @dev keccak256(abi.encodePacked(owner, bytes(cid))) without abi.encodePacked's allocation:
    ///      hashed in scratch memory past the free memory pointer, which is left where it was.
    function _imageId(address owner, string calldata cid) private pure returns (bytes32 id) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, shl(96, owner))
            calldatacopy(add(ptr, 20), cid.offset, cid.length)
            id := keccak256(ptr, add(20, cid.length))
        }
    }

    /// @dev Revoking (or renouncing) the oracle role drops the holder's encryption key, so pages
    ///      stop encrypting to an oracle that can no longer answer.
    function _revokeRole(bytes32 role, address account) internal override returns (bool revoked) {
        revoked = super._revokeRole(role, account);
        uint256 position = _keyHolderPosition[account];
        if (!revoked || role != ORACLE_ROLE || position == 0) return revoked;
        address last = _keyHolders[_keyHolders.length - 1];
        _keyHolders[position - 1] = last;
        _keyHolderPosition[last] = position;
        _keyHolders.pop();
        delete _keyHolderPosition[account];
        delete _encryptionKeys[account];
        emit EncryptionKeySet(account, bytes32(0));
    }

    function _pendingRecord(bytes32 imageId) private view returns (Record storage record) {
        record = _records[imageId];
        if (record.status == Status.None) revert UnknownImage(imageId);
        if (record.status != Status.Pending) revert ImageNotPending(imageId, record.status);
    }

    function _activeModel(bytes32 modelId) private view returns (ModelState storage model) {
        model = _models[modelId];
        if (model.index == 0) revert UnknownModel(modelId);
        if (!model.active) revert ModelNotActive(modelId);
    }

    /// @dev Marks the record classified and returns the fee it earned.
    function _settle(bytes32 imageId, Record storage record, bytes32 resultHash) private returns (uint256) {
        record.status = Status.Classified;
        _resultHashes[imageId] = resultHash;
        emit ResultPosted(imageId, _modelIds[record.modelIndex], resultHash);
        return _feePaid(record);
    }

    /// @dev Epoch zero means nothing was paid: no storage read for free requests.
    function _feePaid(Record storage record) private view returns (uint256) {
        uint32 epoch = record.feeEpoch;
        return epoch == 0 ? 0 : _feesAt[epoch].request;
    }

    /// @dev Marks the record failed and refunds its fee minus its epoch's failure fee, which it returns.
    function _fail(bytes32 imageId, Record storage record, uint8 reason) private returns (uint256 kept) {
        record.status = Status.Failed;
        emit ClassificationFailed(imageId, reason);
        uint32 epoch = record.feeEpoch;
        if (epoch == 0) return 0;
        Fees memory fees = _feesAt[epoch];
        kept = fees.failure;
        _refund(imageId, record.owner, fees.request - fees.failure);
    }

    function _checkReason(uint8 reason) private pure {
        if (reason == 0 || reason > uint8(type(FailureReason).max)) revert InvalidFailureReason(reason);
    }

    function _setRequestTimeout(uint32 timeout) private {
        if (timeout == 0 || timeout > MAX_REQUEST_TIMEOUT) revert InvalidTimeout(timeout);
        emit RequestTimeoutChanged(_config.requestTimeout, timeout);
        _config.requestTimeout = timeout;
    }

    /// @dev A paid model gets a fresh fee epoch, so pending requests keep their terms; a free one
    ///      gets epoch zero (no storage read at settlement).
    function _setModelFee(bytes32 modelId, ModelState storage model, uint96 fee, uint96 failureFee) private {
        if (failureFee > fee) revert FailureFeeAboveRequestFee(failureFee, fee);
        uint32 epoch;
        if (fee != 0) {
            epoch = _config.feeEpoch + 1;
            _config.feeEpoch = epoch;
            _feesAt[epoch] = Fees({request: fee, failure: failureFee});
        }
        model.feeEpoch = epoch;
        model.requestFee = fee;
        if (model.index == _config.defaultModelIndex) {
            (_config.defaultFee, _config.defaultFeeEpoch) = (fee, epoch);
        }
        emit ModelFeeChanged(modelId, fee, failureFee);
    }

    /// @dev Pushes with bounded gas and copies no return data (no return-data bomb); an owner that
    ///      cannot receive gets the amount kept for claimRefund.
    function _refund(bytes32 imageId, address owner, uint256 amount) private {
        if (amount == 0) return;
        if (gasleft() < REFUND_GAS_FLOOR) revert InsufficientGasForRefund(gasleft(), REFUND_GAS_FLOOR);
        bool sent;
        assembly ("memory-safe") {
            sent := call(REFUND_GAS, owner, amount, 0, 0, 0, 0)
        }
        if (sent) {
            emit Refunded(imageId, owner, amount);
        } else {
            _refundsOwed[owner] += amount;
            emit RefundDeferred(imageId, owner, amount);
        }
    }

    function _send(address to, uint256 amount) private {
        (bool sent,) = to.call{value: amount}("");
        if (!sent) revert TransferFailed(to, amount);
    }
}
