// Static order-0 rANS (range asymmetric numeral systems) over a small
// alphabet: the lossless entropy stage of the kvq codec (attention/kvq.h).
//
// Symbols are 0..alphabet-1 (alphabet <= kMaxRansAlphabet). Their
// frequencies are quantized to sum to 2^kRansScaleBits; the table is stored
// by the caller beside the stream. State is 32 bits, renormalized a byte at
// a time, interval [kRansLow, 2^32). Stream layout: the final encoder state
// (4 bytes, most significant first) then the renormalization bytes in the
// order the decoder consumes them. A well-formed stream ends with the
// decoder back at kRansLow having consumed every byte.
#ifndef MNEMO_ATTENTION_RANS_H_
#define MNEMO_ATTENTION_RANS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace mnemo::attention {

inline constexpr int kRansScaleBits = 12;
inline constexpr uint32_t kRansScale = 1u << kRansScaleBits;
inline constexpr uint32_t kRansLow = 1u << 23;
inline constexpr int kMaxRansAlphabet = 256;
// No symbol may take more of the scale than this: every symbol then costs
// >= log2(4096 / 4032) = 0.0227 bits, so a stream of n bytes yields at most
// kRansMaxSymbolsPerByte * (n + 1) symbols and decoding work (and what a
// decoder allocates for its output) is bounded by the stream's size.
inline constexpr uint32_t kRansMaxFrequency = kRansScale - 64;
inline constexpr uint64_t kRansMaxSymbolsPerByte = 353;

// Frequencies summing to kRansScale from symbol counts: every symbol that
// occurs gets >= 1, none more than kRansMaxFrequency (the excess goes to
// another symbol). counts.size() in [2, kMaxRansAlphabet]; all-zero counts
// give the first symbol kRansMaxFrequency.
std::vector<uint16_t> QuantizeRansFrequencies(absl::Span<const uint64_t> counts);

// Encodes `symbols` (each < freqs.size(), with freqs[s] >= 1) into *out.
// freqs must sum to kRansScale (QuantizeRansFrequencies).
void RansEncode(absl::Span<const uint8_t> symbols, absl::Span<const uint16_t> freqs,
                std::string* out);

// Decodes exactly out.size() symbols of `stream` with `freqs`. DATA_LOSS
// when the frequencies do not sum to kRansScale, one exceeds
// kRansMaxFrequency, out.size() exceeds what the stream can hold, the stream is truncated,
// has bytes left over or does not end in the initial state. Reads only
// inside `stream`; writes only `out`.
absl::Status RansDecode(absl::string_view stream, absl::Span<const uint16_t> freqs,
                        absl::Span<uint8_t> out);

}  // namespace mnemo::attention

#endif  // MNEMO_ATTENTION_RANS_H_
