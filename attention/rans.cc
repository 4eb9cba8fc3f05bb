// Static order-0 rANS (see rans.h).
#include "attention/rans.h"

#include <algorithm>
#include <numeric>

#include "absl/strings/str_cat.h"

namespace mnemo::attention {

std::vector<uint16_t> QuantizeRansFrequencies(absl::Span<const uint64_t> counts) {
  const uint64_t total = std::accumulate(counts.begin(), counts.end(), uint64_t{0});
  std::vector<uint16_t> f(counts.size(), 0);
  if (total == 0) {
    f[0] = kRansMaxFrequency;
    f[1] = kRansScale - kRansMaxFrequency;
    return f;
  }
  int64_t sum = 0;
  size_t largest = 0;
  for (size_t s = 0; s < counts.size(); ++s) {
    if (counts[s] == 0) continue;
    const uint64_t q = std::max<uint64_t>(1, counts[s] * kRansScale / total);
    f[s] = static_cast<uint16_t>(q);
    sum += q;
    if (counts[s] > counts[largest]) largest = s;
  }
  // Settle the rounding on the symbols with the most room, keeping each >= 1.
  while (sum != kRansScale) {
    if (sum < kRansScale) {
      f[largest] += static_cast<uint16_t>(kRansScale - sum);
      sum = kRansScale;
    } else {
      size_t best = largest;
      for (size_t s = 0; s < f.size(); ++s) {
        if (f[s] > f[best]) best = s;
      }
      const int64_t take = std::min<int64_t>(sum - kRansScale, f[best] - 1);
      f[best] = static_cast<uint16_t>(f[best] - take);
      sum -= take;
    }
  }
  if (f[largest] > kRansMaxFrequency) {
    const size_t other = largest == 0 ? 1 : 0;
    f[other] = static_cast<uint16_t>(f[other] + f[largest] - kRansMaxFrequency);
    f[largest] = kRansMaxFrequency;
  }
  return f;
}

void RansEncode(absl::Span<const uint8_t> symbols, absl::Span<const uint16_t> freqs,
                std::string* out) {
  std::vector<uint32_t> cum(freqs.size() + 1, 0);
  for (size_t s = 0; s < freqs.size(); ++s) cum[s + 1] = cum[s] + freqs[s];
  std::string rev;  // bytes in reverse of the decoder's order
  rev.reserve(symbols.size() / 2 + 8);
  uint32_t x = kRansLow;
  for (size_t i = symbols.size(); i-- > 0;) {
    const uint32_t f = freqs[symbols[i]];
    const uint32_t x_max = ((kRansLow >> kRansScaleBits) << 8) * f;
    while (x >= x_max) {
      rev.push_back(static_cast<char>(x & 0xff));
      x >>= 8;
    }
    x = ((x / f) << kRansScaleBits) + (x % f) + cum[symbols[i]];
  }
  for (int b = 0; b < 4; ++b) rev.push_back(static_cast<char>((x >> (8 * b)) & 0xff));
  out->assign(rev.rbegin(), rev.rend());
}

absl::Status RansDecode(absl::string_view stream, absl::Span<const uint16_t> freqs,
                        absl::Span<uint8_t> out) {
  if (freqs.empty() || freqs.size() > kMaxRansAlphabet) {
    return absl::DataLossError(absl::StrCat("rANS alphabet of ", freqs.size(), " symbols"));
  }
  uint32_t sum = 0;
  for (uint16_t f : freqs) {
    if (f > kRansMaxFrequency) {
      return absl::DataLossError(absl::StrCat("rANS frequency ", f, " above ", kRansMaxFrequency));
    }
    sum += f;
  }
  if (sum != kRansScale) {
    return absl::DataLossError(
        absl::StrCat("rANS frequencies sum to ", sum, ", not ", kRansScale));
  }
  // slot -> symbol, and each symbol's cumulative start.
  uint8_t lut[kRansScale];
  std::vector<uint32_t> cum(freqs.size(), 0);
  uint32_t c = 0;
  for (size_t s = 0; s < freqs.size(); ++s) {
    cum[s] = c;
    std::fill(lut + c, lut + c + freqs[s], static_cast<uint8_t>(s));
    c += freqs[s];
  }
  if (stream.size() < 4) return absl::DataLossError("rANS stream shorter than its state");
  if (out.size() > kRansMaxSymbolsPerByte * (stream.size() + 1)) {
    return absl::DataLossError(absl::StrCat("a rANS stream of ", stream.size(),
                                            " bytes cannot hold ", out.size(), " symbols"));
  }
  const auto* p = reinterpret_cast<const uint8_t*>(stream.data());
  const size_t n = stream.size();
  uint32_t x = (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
  size_t pos = 4;
  for (size_t i = 0; i < out.size(); ++i) {
    const uint32_t slot = x & (kRansScale - 1);
    const uint8_t s = lut[slot];
    out[i] = s;
    x = freqs[s] * (x >> kRansScaleBits) + slot - cum[s];
    while (x < kRansLow) {
      if (pos == n) return absl::DataLossError("rANS stream truncated");
      x = (x << 8) | p[pos++];
    }
  }
  if (pos != n) return absl::DataLossError(absl::StrCat("rANS stream has ", n - pos, " extra bytes"));
  if (x != kRansLow) return absl::DataLossError("rANS stream does not end in its initial state");
  return absl::OkStatus();
}

}  // namespace mnemo::attention
