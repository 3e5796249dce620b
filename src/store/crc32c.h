// CRC32C (Castagnoli), the checksum on every journal record.
//
// Why CRC32C and not CRC32: x86-64 since Nehalem computes it in hardware (SSE4.2 `crc32`), ~8 bytes
// per cycle, so checksumming a 1 KiB body costs less than copying it; Redpanda and ext4 use it too.
// The hardware path is picked once at startup with a CPUID check; a slicing-by-8 table is the
// fallback, so the on-disk format never depends on the CPU the file was written on.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace warren::store {

// Extends `crc` (0 for a fresh checksum) with `size` bytes. Chainable:
// crc32c(crc32c(0, a), b) == crc32c(0, a + b).
uint32_t crc32c(uint32_t crc, const void* data, size_t size);
inline uint32_t crc32c(uint32_t crc, std::string_view s) { return crc32c(crc, s.data(), s.size()); }

// The portable implementation, exposed so tests can check it against the hardware one.
uint32_t crc32c_software(uint32_t crc, const void* data, size_t size);

// True when crc32c() uses the SSE4.2 instruction on this machine.
bool crc32c_hardware_available();

}  // namespace warren::store
