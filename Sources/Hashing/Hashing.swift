import Crypto
import Foundation

// Content fingerprints: the SHA-256 of files, images, manifests and checkpoints, as lower-case hex.
// Its own target so that a module needing a hash (the run store) does not pull in image decoding.

/// Lower-case hex SHA-256 of some bytes.
public func sha256Hex(_ bytes: some DataProtocol) -> String {
    hexString(SHA256.hash(data: bytes))
}

/// Lower-case hex of bytes (a digest), two digits per byte.
public func hexString(_ bytes: some Sequence<UInt8>) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out = [UInt8]()
    for byte in bytes {
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 15)])
    }
    return String(decoding: out, as: UTF8.self)
}
