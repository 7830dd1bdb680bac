// Copyright lrsched authors.
//
// Appending JSON text directly, for the state a server writes on every step (Schedule::
// AppendStateMembers): building an nlohmann tree and dumping it costs several times more,
// mostly in allocations. What these functions write parses back (with nlohmann or any JSON
// parser) to exactly the values given, doubles bit for bit. Part of the engine's public face
// (scheduler/README.md): the server writes the rest of each record around
// AppendStateMembers' text with the same functions.
#ifndef LRSCHED_SCHEDULER_JSON_TEXT_H_
#define LRSCHED_SCHEDULER_JSON_TEXT_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace lrsched::json_text {

// The shortest text that reads back as `v`, always as a float ("1.0", not "1"), as nlohmann
// dumps a double. Non-finite values have no JSON form: "null", as nlohmann writes them.
void AppendDouble(double v, std::string* out);
void AppendInt(int64_t v, std::string* out);
// A quoted, escaped string; `s` must be UTF-8 (bytes >= 0x80 are copied as they are).
void AppendString(std::string_view s, std::string* out);
// `"key":`; the key is escaped like any string.
void AppendKey(std::string_view key, std::string* out);

}  // namespace lrsched::json_text

#endif  // LRSCHED_SCHEDULER_JSON_TEXT_H_
