// LEB128 unsigned varints (7 bits per byte, low group first, the high bit
// set on every byte but the last): the lengths and counts of mnemo's own
// records (db/records.h, db/bm25.h), the outlier positions of the kvq codec
// and the protobuf wire format the tokenizer writes by hand. The same
// encoding as protobuf's, defined once here.
#ifndef MNEMO_COMMON_VARINT_H_
#define MNEMO_COMMON_VARINT_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace mnemo {

// Appends `v` (1 to 10 bytes).
void PutVarint(std::string* out, uint64_t v);

// Decodes the varint at the front of `*in` and advances `*in` past it.
// False, with `*in` and `*v` unspecified, when the input ends inside the
// varint or its value does not fit 64 bits.
bool GetVarint(absl::string_view* in, uint64_t* v);

// GetVarint, and false for a value above 2^32 - 1.
bool GetVarint32(absl::string_view* in, uint32_t* v);

}  // namespace mnemo

#endif  // MNEMO_COMMON_VARINT_H_
