// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title NodeDirectory
/// @notice Where each node serves its blobs: every account announces the base URL of its own node (other
///         nodes fetch `URL/blobs/CID`), and a node looks up the accounts whose content it needs (a model
///         version's operators, a round's trainers). Nobody can set or clear another account's entry; no
///         money moves.
/// @dev An entry is a hint, never trusted: nodes check every fetched byte against its CID, so a wrong or
///      stale URL costs a failed fetch, never wrong content. The checks here keep entries usable and
///      printable (a URL with a newline could forge a line of a log that prints it), not honest.
contract NodeDirectory {
    /// @notice The longest URL accepted, in bytes.
    uint256 public constant MAX_URL_BYTES = 256;
    /// @notice The most addresses `endpointsOf` looks up in one call (bounds the answer's size).
    uint256 public constant MAX_LOOKUP = 256;

    bytes7 private constant HTTP = "http://";
    bytes8 private constant HTTPS = "https://";

    mapping(address node => string url) private _endpoints;

    /// @notice `node` now serves its blobs at `url`.
    event EndpointAnnounced(address indexed node, string url);
    /// @notice `node` no longer announces a URL.
    event EndpointWithdrawn(address indexed node);

    /// @notice The URL is empty: to clear an entry, call `withdraw`.
    error EmptyUrl();
    /// @notice The URL is `length` bytes long, more than `max`.
    error UrlTooLong(uint256 length, uint256 max);
    /// @notice The URL does not start with `http://` or `https://` (lower case) followed by a host.
    error UnsupportedScheme();
    /// @notice The URL's byte at `position` (0-based) is a space or a control character.
    error ForbiddenCharacter(uint256 position);
    /// @notice `node` has no entry to withdraw.
    error NoEndpoint(address node);
    /// @notice `endpointsOf` was asked for `count` addresses, more than `max`.
    error TooManyAddresses(uint256 count, uint256 max);

    /// @notice Announces (or replaces) the caller's own URL.
    /// @param url The node's base URL: `http://` or `https://`, then a host, at most MAX_URL_BYTES bytes,
    ///        no space or control character.
    function announce(string calldata url) external {
        _checkUrl(bytes(url));
        _endpoints[msg.sender] = url;
        emit EndpointAnnounced(msg.sender, url);
    }

    /// @notice Clears the caller's own entry.
    function withdraw() external {
        if (bytes(_endpoints[msg.sender]).length == 0) revert NoEndpoint(msg.sender);
        delete _endpoints[msg.sender];
        emit EndpointWithdrawn(msg.sender);
    }

    /// @notice The URL `node` announced; empty when it announced none (or withdrew it).
    /// @param node The account.
    /// @return url Its base URL.
    function endpointOf(address node) external view returns (string memory url) {
        return _endpoints[node];
    }

    /// @notice The URLs of several accounts, in their order; empty where one announced none.
    /// @param nodes At most MAX_LOOKUP accounts.
    /// @return urls Their base URLs.
    function endpointsOf(address[] calldata nodes) external view returns (string[] memory urls) {
        if (nodes.length > MAX_LOOKUP) revert TooManyAddresses(nodes.length, MAX_LOOKUP);
        urls = new string[](nodes.length);
        for (uint256 i = 0; i < nodes.length; ++i) {
            urls[i] = _endpoints[nodes[i]];
        }
    }

    /// @dev Reverts unless `url` is a non-empty http(s) URL of at most MAX_URL_BYTES printable bytes.
    function _checkUrl(bytes calldata url) private pure {
        uint256 length = url.length;
        if (length == 0) revert EmptyUrl();
        if (length > MAX_URL_BYTES) revert UrlTooLong(length, MAX_URL_BYTES);
        uint256 host;
        if (length > 7 && bytes7(url[:7]) == HTTP) host = 7;
        else if (length > 8 && bytes8(url[:8]) == HTTPS) host = 8;
        else revert UnsupportedScheme();
        for (uint256 i = host; i < length; ++i) {
            bytes1 c = url[i];
            if (c <= 0x20 || c == 0x7f) revert ForbiddenCharacter(i);
        }
    }
}
