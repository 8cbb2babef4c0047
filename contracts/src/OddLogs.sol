// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.28;

/// @title OddLogs
/// @notice Emits logs that share the ERC-20 `Transfer(address,address,uint256)` topic0 but are not
///         ERC-20 transfers, plus one well-formed one, for paytrace's decoder tests.
contract OddLogs {
    /// Emits, in order:
    ///  0. ERC-721 style: 4 topics (from, to, tokenId 42), no data        -> not a token transfer
    ///  1. 3 topics, 16 bytes of data                                      -> not a token transfer
    ///  2. 2 topics (from only), 32 bytes of data                          -> not a token transfer
    ///  3. 3 topics, 64 bytes of data                                      -> not a token transfer
    ///  4. 3 topics, exactly 32 bytes of data (`amount`)                   -> a token transfer of
    ///     this contract's "token"
    function emitOdd(address from, address to, uint256 amount) external {
        assembly {
            let sig := 0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef
            let p := mload(0x40)
            mstore(p, amount)
            mstore(add(p, 0x20), 7)
            log4(p, 0, sig, from, to, 42)
            log3(p, 16, sig, from, to)
            log2(p, 32, sig, from)
            log3(p, 64, sig, from, to)
            log3(p, 32, sig, from, to)
        }
    }
}
