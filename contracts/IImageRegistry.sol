// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title IImageRegistry
/// @notice What the registry shares with the oracle, the page and the tests: its types, events,
///         errors and external functions. Roles, models and admin settings are in the contract.
interface IImageRegistry {
    /// @notice Lifecycle of a request. Status only ever moves from Pending to one terminal state.
    enum Status {
        None,
        Pending,
        Classified,
        Failed,
        Cancelled
    }

    /// @notice Why an oracle could not classify an image; shared with the oracle
    ///         (oracle/chain/reasons.py) and the page (frontend/src/registry.mjs), checked by tests.
    enum FailureReason {
        None,
        ContentUnreachable,
        ContentMismatch,
        UnsupportedImage,
        TooLarge,
        ModelError,
        InvalidCid,
        ModelUnavailable,
        NotDecryptable,
        WrongBinding,
        NotTissue
    }

    /// @notice An image's record as the outside world sees it.
    struct ImageView {
        address owner;
        Status status;
        bytes32 modelId;
        bytes32 resultHash;
        uint64 registeredAt;
        uint64 deadline;
        uint256 feePaid;
    }

    /// @notice `owner` registered `cid` (the CID of an encrypted image) for classification by `modelId`.
    event ImageRegistered(bytes32 indexed imageId, address indexed owner, bytes32 indexed modelId, string cid);
    /// @notice An oracle committed the result document's hash.
    event ResultPosted(bytes32 indexed imageId, bytes32 indexed modelId, bytes32 resultHash);
    /// @notice An oracle could not classify the image; `reason` is a FailureReason.
    event ClassificationFailed(bytes32 indexed imageId, uint8 reason);
    /// @notice The owner cancelled a timed-out request.
    event RequestCancelled(bytes32 indexed imageId, address indexed owner);
    /// @notice A fee went back to the owner.
    event Refunded(bytes32 indexed imageId, address indexed owner, uint256 amount);
    /// @notice The owner could not receive a refund; it is kept for `claimRefund`.
    event RefundDeferred(bytes32 indexed imageId, address indexed owner, uint256 amount);
    /// @notice An owner withdrew kept refunds to `to`.
    event RefundClaimed(address indexed owner, address indexed to, uint256 amount);
    /// @notice An oracle published the X25519 public key images are encrypted to; zero when its
    ///         role was revoked and its key dropped.
    event EncryptionKeySet(address indexed oracle, bytes32 key);
    /// @notice A model became available under `index`.
    event ModelRegistered(bytes32 indexed modelId, uint16 index, string name, string metadataURI);
    /// @notice A model stopped accepting new requests.
    event ModelRetired(bytes32 indexed modelId);
    /// @notice The model for registrations that pass modelId zero changed.
    event DefaultModelChanged(bytes32 indexed previousModelId, bytes32 indexed modelId);
    /// @notice A model's terms for new registrations: the exact fee, and what a failure keeps of it.
    event ModelFeeChanged(bytes32 indexed modelId, uint256 fee, uint256 failureFee);
    /// @notice The time after which pending requests may be cancelled changed.
    event RequestTimeoutChanged(uint32 previousTimeout, uint32 timeout);
    /// @notice An admin withdrew earned fees.
    event FeesWithdrawn(address indexed to, uint256 amount);

    /// @notice The CID is empty or longer than MAX_CID_LENGTH bytes.
    error InvalidCid(uint256 length);
    /// @notice This owner registered this CID before.
    error AlreadyRegistered(bytes32 imageId);
    /// @notice No image was registered under this id.
    error UnknownImage(bytes32 imageId);
    /// @notice The request already reached a final status.
    error ImageNotPending(bytes32 imageId, Status status);
    /// @notice Only the image's owner may do this.
    error NotImageOwner(bytes32 imageId, address caller);
    /// @notice The request may be cancelled from `deadline` on.
    error RequestNotTimedOut(bytes32 imageId, uint256 deadline);
    /// @notice A registration must pay exactly its model's fee.
    error IncorrectFee(uint256 sent, uint256 required);
    /// @notice A result hash of zero is never a commitment.
    error EmptyResultHash(bytes32 imageId);
    /// @notice Batch arrays differ in length.
    error LengthMismatch(uint256 imageIds, uint256 resultHashes);
    /// @notice The reason is not a FailureReason other than None.
    error InvalidFailureReason(uint8 reason);
    /// @notice A failure may keep at most the model's whole fee.
    error FailureFeeAboveRequestFee(uint256 failureFee, uint256 requestFee);
    /// @notice An encryption key of zero is no key.
    error InvalidEncryptionKey();
    /// @notice Model id zero is reserved for "the default model".
    error InvalidModelId();
    /// @notice A model is registered once.
    error ModelAlreadyRegistered(bytes32 modelId);
    /// @notice No model was registered under this id.
    error UnknownModel(bytes32 modelId);
    /// @notice The model was retired.
    error ModelNotActive(bytes32 modelId);
    /// @notice Model id zero was passed and no default model is set.
    error NoDefaultModel();
    /// @notice Choose another default model first.
    error CannotRetireDefaultModel(bytes32 modelId);
    /// @notice The model index space is full.
    error TooManyModels();
    /// @notice Timeouts are between 1 second and MAX_REQUEST_TIMEOUT.
    error InvalidTimeout(uint32 timeout);
    /// @notice Only earned fees can be withdrawn.
    error InsufficientEarnedFees(uint256 requested, uint256 available);
    /// @notice No refund is kept for this owner.
    error NothingToClaim(address owner);
    /// @notice Sending ether failed.
    error TransferFailed(address to, uint256 amount);
    /// @notice The zero address is not allowed here.
    error ZeroAddress();
    /// @notice Too little gas left to push a refund and to keep it if the push fails.
    error InsufficientGasForRefund(uint256 gasLeft, uint256 required);

    /// @notice Register an encrypted image for classification; the record belongs to the caller.
    /// @param cid The IPFS CID of the image's age envelope (the page registers CIDv1 base32).
    /// @param modelId The model to classify with; zero selects the current default model.
    /// @return imageId `keccak256(abi.encodePacked(msg.sender, bytes(cid)))`.
    function registerImage(string calldata cid, bytes32 modelId) external payable returns (bytes32 imageId);

    /// @notice Cancel your own pending request once it has timed out; the fee is refunded.
    /// @param imageId The request to cancel.
    function cancel(bytes32 imageId) external;

    /// @notice Withdraw, to any address, the refunds that could not be pushed to you when due.
    /// @param to Recipient of the kept refunds.
    function claimRefund(address payable to) external;

    /// @notice Commit the result of a pending request (oracle role).
    /// @param imageId The request.
    /// @param resultHash keccak256 of the RFC 8785 canonical result document (never zero).
    function postResult(bytes32 imageId, bytes32 resultHash) external;

    /// @notice Commit several results at once (oracle role); requests no longer pending are skipped.
    /// @param imageIds The requests.
    /// @param resultHashes Their result hashes, in the same order (none zero).
    /// @return posted How many results were committed.
    function postResults(bytes32[] calldata imageIds, bytes32[] calldata resultHashes)
        external
        returns (uint256 posted);

    /// @notice Report that a pending request cannot be classified (oracle role); the fee is refunded
    ///         minus the failure fee of its epoch.
    /// @param imageId The request.
    /// @param reason A `FailureReason` other than None.
    function reportFailure(bytes32 imageId, uint8 reason) external;

    /// @notice Report several failures at once (oracle role); requests no longer pending are skipped.
    /// @param imageIds The requests.
    /// @param reasons Their `FailureReason`s, in the same order (none None).
    /// @return reported How many failures were recorded.
    function reportFailures(bytes32[] calldata imageIds, uint8[] calldata reasons)
        external
        returns (uint256 reported);

    /// @notice The terms of a registration for a model made now.
    /// @param modelId A registered model; zero for the current default model.
    /// @return fee Wei the registration must pay exactly.
    /// @return failureFee Wei a failure keeps of it (the rest is refunded).
    function modelFee(bytes32 modelId) external view returns (uint256 fee, uint256 failureFee);

    /// @notice Publish the caller's X25519 public key, to which patients encrypt their images (oracle role).
    /// @param key The raw 32-byte X25519 public key (an age `age1…` recipient, bech32-decoded).
    function setEncryptionKey(bytes32 key) external;

    /// @notice The encryption keys of every current oracle-role holder that published one.
    /// @return oracles The key holders.
    /// @return keys Their X25519 public keys, in the same order.
    function encryptionKeys() external view returns (address[] memory oracles, bytes32[] memory keys);

    /// @notice An image's record; `status == None` for an unknown image.
    /// @param imageId The request.
    /// @return image Owner, status, model, result hash, registration time, cancel deadline, fee paid.
    function getImage(bytes32 imageId) external view returns (ImageView memory image);

    /// @notice Just the status, for the oracle's check before it sends a transaction.
    /// @param imageId The request.
    /// @return The request's status.
    function statusOf(bytes32 imageId) external view returns (Status);

    /// @notice The id `owner` registers `cid` under.
    /// @param owner The registrant.
    /// @param cid The CID string as registered.
    /// @return `keccak256(abi.encodePacked(owner, bytes(cid)))`.
    function imageIdOf(address owner, string calldata cid) external pure returns (bytes32);
}
