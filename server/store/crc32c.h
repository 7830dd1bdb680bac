// Copyright lrsched authors.
//
// CRC32C (Castagnoli), the checksum lrsched stores with every durable record (session.h) and
// with the SQLite store's high-water file, as iSCSI, ext4 and LevelDB use it. Hardware
// instructions (SSE 4.2) where the CPU has them, a table otherwise; both give the same value.
//
//   uint32_t c = crc32c::Value(bytes);           // of a whole buffer
//   c = crc32c::Extend(c, more);                 // == Value(bytes + more)
#ifndef LRSCHED_SERVER_CRC32C_H_
#define LRSCHED_SERVER_CRC32C_H_

#include <cstdint>
#include <string_view>

namespace lrsched::crc32c {

// The CRC32C of `init_crc`'s data followed by `data` (init_crc = 0: of `data` alone).
uint32_t Extend(uint32_t init_crc, std::string_view data);
inline uint32_t Value(std::string_view data) { return Extend(0, data); }

}  // namespace lrsched::crc32c

#endif  // LRSCHED_SERVER_CRC32C_H_
