// Copyright lrsched authors.
//
// CRC32C (Castagnoli), the checksum lrsched stores with every durable record (session.h) and
// with the SQLite store's high-water file, as iSCSI, ext4 and LevelDB use it. Hardware
// instructions (SSE 4.2) where the CPU has them, a table otherwise; both give the same value.
//
//   uint32_t c = crc32c::Value(bytes);           // of a whole buffer
//   c = crc32c::Extend(c, more);                 // == Value(bytes + more)
//   std::string h = crc32c::Hex(c);              // "0a1b2c3d", as records and files store it
//   std::optional<uint32_t> back = crc32c::ParseHex(h);
#ifndef LRSCHED_SERVER_CRC32C_H_
#define LRSCHED_SERVER_CRC32C_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace lrsched::crc32c {

// The CRC32C of `init_crc`'s data followed by `data` (init_crc = 0: of `data` alone).
uint32_t Extend(uint32_t init_crc, std::string_view data);
inline uint32_t Value(std::string_view data) { return Extend(0, data); }

// A checksum as lrsched writes it (records, the high-water file): exactly 8 lower-case hex
// digits. ParseHex reads only that spelling (any other is damage): nullopt for anything else.
std::string Hex(uint32_t crc);
std::optional<uint32_t> ParseHex(std::string_view hex);

}  // namespace lrsched::crc32c

#endif  // LRSCHED_SERVER_CRC32C_H_
