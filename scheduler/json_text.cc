// Copyright lrsched authors.
#include "scheduler/json_text.h"

#include <charconv>
#include <cmath>
#include <cstring>

namespace lrsched::json_text {

char* WriteDouble(double v, char* out) {
  if (!std::isfinite(v)) {
    std::memcpy(out, "null", 4);
    return out + 4;
  }
  // Scientific to_chars gives the shortest round-trip digits (the closest of them to v):
  // "[-]d[.ddd]e(+|-)XX[X]", which is already Python's exponent form; Python places the point
  // itself when -4 <= exponent < 16 (float_repr_style "short", repr's 'r' format).
  char sci[kMaxDoubleChars];
  // 32 bytes hold any double's shortest form (at most 24 characters): ec is always success.
  auto [end, ec] = std::to_chars(sci, sci + sizeof sci, v, std::chars_format::scientific);
  (void)ec;
  const char* e = end - 4;  // an exponent has 2 or 3 digits: find the 'e'
  if (*e != 'e') --e;
  int exp = 0;
  for (const char* p = e + 2; p < end; ++p) exp = exp * 10 + (*p - '0');
  if (e[1] == '-') exp = -exp;
  const size_t sci_size = static_cast<size_t>(end - sci);
  if (exp < -4 || exp >= 16) {
    std::memcpy(out, sci, sci_size);
    return out + sci_size;
  }
  const char* p = sci;
  if (*p == '-') *out++ = *p++;
  // The significant digits: `first`, then `rest` (the ones after to_chars' point, if any).
  const char first = *p;
  const char* rest = p[1] == '.' ? p + 2 : p + 1;
  const size_t more = static_cast<size_t>(e - rest);
  if (exp < 0) {  // 0.000ddd
    *out++ = '0';
    *out++ = '.';
    for (int z = -exp - 1; z > 0; --z) *out++ = '0';
    *out++ = first;
    std::memcpy(out, rest, more);
    return out + more;
  }
  *out++ = first;
  const size_t whole = static_cast<size_t>(exp);  // digits of `rest` before the point
  if (more <= whole) {  // ddd000.0: "1.0" keeps the float type, as nlohmann's dump does
    std::memcpy(out, rest, more);
    out += more;
    for (size_t z = more; z < whole; ++z) *out++ = '0';
    *out++ = '.';
    *out++ = '0';
    return out;
  }
  std::memcpy(out, rest, whole);
  out += whole;
  *out++ = '.';
  std::memcpy(out, rest + whole, more - whole);
  return out + (more - whole);
}

void AppendDouble(double v, std::string* out) {
  char buf[kMaxDoubleChars];
  out->append(buf, static_cast<size_t>(WriteDouble(v, buf) - buf));
}

void AppendInt(int64_t v, std::string* out) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  (void)ec;
  out->append(buf, static_cast<size_t>(end - buf));
}

void AppendUint(uint64_t v, std::string* out) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  (void)ec;
  out->append(buf, static_cast<size_t>(end - buf));
}

void AppendString(std::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t plain = 0;  // start of the run of characters copied as they are
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out->append(s.data() + plain, i - plain);
    plain = i + 1;
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\f':
        out->append("\\f");
        break;
      default:
        out->append("\\u00");
        out->push_back(kHex[c >> 4]);
        out->push_back(kHex[c & 0xf]);
    }
  }
  out->append(s.data() + plain, s.size() - plain);
  out->push_back('"');
}

void AppendKey(std::string_view key, std::string* out) {
  AppendString(key, out);
  out->push_back(':');
}

void AppendJson(const nlohmann::json& j, std::string* out) {
  using Type = nlohmann::json::value_t;
  switch (j.type()) {
    case Type::null:
      out->append("null");
      return;
    case Type::boolean:
      out->append(j.get<bool>() ? "true" : "false");
      return;
    case Type::number_integer:
      AppendInt(j.get<int64_t>(), out);
      return;
    case Type::number_unsigned:
      AppendUint(j.get<uint64_t>(), out);
      return;
    case Type::number_float:
      AppendDouble(j.get<double>(), out);
      return;
    case Type::string:
      AppendString(j.get_ref<const std::string&>(), out);
      return;
    case Type::array: {
      out->push_back('[');
      bool first = true;
      for (const nlohmann::json& v : j) {
        if (!first) out->push_back(',');
        first = false;
        AppendJson(v, out);
      }
      out->push_back(']');
      return;
    }
    case Type::object: {
      out->push_back('{');
      bool first = true;
      for (auto it = j.begin(); it != j.end(); ++it) {
        if (!first) out->push_back(',');
        first = false;
        AppendKey(it.key(), out);
        AppendJson(it.value(), out);
      }
      out->push_back('}');
      return;
    }
    default:  // binary and discarded values: no tree the engine or the CLI builds has them
      out->append(j.dump());
  }
}

}  // namespace lrsched::json_text
