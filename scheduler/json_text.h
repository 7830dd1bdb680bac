// Copyright lrsched authors.
//
// Appending JSON text directly, for the state a server writes on every step (Schedule::
// AppendStateMembers) and for `lrsched simulate`'s multi-megabyte traces: building an nlohmann
// tree and dumping it costs several times more, mostly in allocations. What these functions
// write parses back (with nlohmann or any JSON parser) to exactly the values given, doubles bit
// for bit. Part of the engine's public face (scheduler/README.md): the server writes the rest of
// each record around AppendStateMembers' text with the same functions.
#ifndef LRSCHED_SCHEDULER_JSON_TEXT_H_
#define LRSCHED_SCHEDULER_JSON_TEXT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "nlohmann/json.hpp"

namespace lrsched::json_text {

// The shortest text that reads back as `v`, always as a float, in the same text as Python's
// repr(v) (and json.dumps): positional for 1e-4 <= |v| < 1e16 ("0.0001", "1.0",
// "1000000.0"), else an exponent of at least two digits ("1e-05", "1.5e+16", "5e-324"). The
// digits are the shortest that round-trip and, among those, the closest to `v` (std::to_chars),
// as Python's repr chooses them. Non-finite values have no JSON form: "null", as nlohmann
// writes them. The one writer of JSON doubles for the engine, the server and the CLI.
void AppendDouble(double v, std::string* out);
// The same text written at `out`, which has room for kMaxDoubleChars; returns its end.
inline constexpr size_t kMaxDoubleChars = 32;
char* WriteDouble(double v, char* out);
void AppendInt(int64_t v, std::string* out);
void AppendUint(uint64_t v, std::string* out);
// A quoted, escaped string; `s` must be UTF-8 (bytes >= 0x80 are copied as they are).
void AppendString(std::string_view s, std::string* out);
// `"key":`; the key is escaped like any string.
void AppendKey(std::string_view key, std::string* out);
// The text of `j.dump()` (compact, members in the tree's order, the same escapes), except that
// floats are written by AppendDouble (nlohmann's own writer differs from Python's repr for
// 1e15 <= |v| < 1e16 and, rarely, in the digits).
void AppendJson(const nlohmann::json& j, std::string* out);

}  // namespace lrsched::json_text

#endif  // LRSCHED_SCHEDULER_JSON_TEXT_H_
