// Copyright lrsched authors.
#include "server/http/transcode.h"

#include <cstdint>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/util/json_util.h"

namespace lrsched::http {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

const FieldDescriptor* FieldNamed(const Message& msg, absl::string_view name) {
  const auto* d = msg.GetDescriptor();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (f->name() == name || f->json_name() == name) return f;
  }
  return nullptr;
}

absl::Status BadParam(absl::string_view key, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("query parameter ", key, ": ", why));
}

// Sets (or for a repeated field, appends) scalar field `f` of `msg` from the text `v`.
absl::Status SetScalar(Message* msg, const FieldDescriptor* f, absl::string_view key,
                       const std::string& v) {
  const Reflection* r = msg->GetReflection();
  const bool rep = f->is_repeated();
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      rep ? r->AddString(msg, f, v) : r->SetString(msg, f, v);
      return absl::OkStatus();
    case FieldDescriptor::CPPTYPE_BOOL: {
      bool b;
      if (v == "true" || v == "1") {
        b = true;
      } else if (v == "false" || v == "0") {
        b = false;
      } else {
        return BadParam(key, absl::StrCat("expected true or false, got \"", v, "\""));
      }
      rep ? r->AddBool(msg, f, b) : r->SetBool(msg, f, b);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_INT32: {
      int32_t i;
      if (!absl::SimpleAtoi(v, &i)) {
        return BadParam(key, absl::StrCat("expected a 32-bit integer, got \"", v, "\""));
      }
      rep ? r->AddInt32(msg, f, i) : r->SetInt32(msg, f, i);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_INT64: {
      int64_t i;
      if (!absl::SimpleAtoi(v, &i)) {
        return BadParam(key, absl::StrCat("expected a 64-bit integer, got \"", v, "\""));
      }
      rep ? r->AddInt64(msg, f, i) : r->SetInt64(msg, f, i);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_UINT32: {
      uint32_t i;
      if (!absl::SimpleAtoi(v, &i)) {
        return BadParam(key, absl::StrCat("expected an unsigned integer, got \"", v, "\""));
      }
      rep ? r->AddUInt32(msg, f, i) : r->SetUInt32(msg, f, i);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_UINT64: {
      uint64_t i;
      if (!absl::SimpleAtoi(v, &i)) {
        return BadParam(key, absl::StrCat("expected an unsigned integer, got \"", v, "\""));
      }
      rep ? r->AddUInt64(msg, f, i) : r->SetUInt64(msg, f, i);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT: {
      // strtod rounds correctly, so a value printed with 17 significant digits comes back
      // bit-equal.
      double d;
      if (!absl::SimpleAtod(v, &d)) {
        return BadParam(key, absl::StrCat("expected a number, got \"", v, "\""));
      }
      if (f->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE) {
        rep ? r->AddDouble(msg, f, d) : r->SetDouble(msg, f, d);
      } else {
        rep ? r->AddFloat(msg, f, static_cast<float>(d))
            : r->SetFloat(msg, f, static_cast<float>(d));
      }
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_ENUM: {
      const auto* e = f->enum_type()->FindValueByName(v);
      if (e == nullptr) return BadParam(key, absl::StrCat("unknown value \"", v, "\""));
      rep ? r->AddEnum(msg, f, e) : r->SetEnum(msg, f, e);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      break;
  }
  return BadParam(key, "a message field cannot be a query parameter; send it in a JSON body");
}

// `labels[KEY]=VALUE`: one entry of a map<string, string> field.
absl::Status SetMapEntry(Message* msg, absl::string_view key, const std::string& value) {
  size_t open = key.find('[');
  absl::string_view field_name = key.substr(0, open);
  std::string map_key(key.substr(open + 1, key.size() - open - 2));
  const FieldDescriptor* f = FieldNamed(*msg, field_name);
  if (f == nullptr) {
    return BadParam(
        key, absl::StrCat("no field \"", field_name, "\" in ", msg->GetDescriptor()->name()));
  }
  if (!f->is_map() || f->message_type()->map_key()->type() != FieldDescriptor::TYPE_STRING ||
      f->message_type()->map_value()->type() != FieldDescriptor::TYPE_STRING) {
    return BadParam(key, absl::StrCat(field_name, " is not a map of strings"));
  }
  // A repeated key keeps its last value, as a JSON object would.
  const Reflection* r = msg->GetReflection();
  for (int i = 0; i < r->FieldSize(*msg, f); ++i) {
    Message* entry = r->MutableRepeatedMessage(msg, f, i);
    const Reflection* er = entry->GetReflection();
    const FieldDescriptor* k = entry->GetDescriptor()->map_key();
    if (er->GetString(*entry, k) == map_key) {
      er->SetString(entry, entry->GetDescriptor()->map_value(), value);
      return absl::OkStatus();
    }
  }
  Message* entry = r->AddMessage(msg, f);
  const Reflection* er = entry->GetReflection();
  er->SetString(entry, entry->GetDescriptor()->map_key(), map_key);
  er->SetString(entry, entry->GetDescriptor()->map_value(), value);
  return absl::OkStatus();
}

}  // namespace

absl::Status ParseJsonBody(absl::string_view body, Message* msg) {
  if (body.find_first_not_of(" \t\r\n") == absl::string_view::npos) return absl::OkStatus();
  google::protobuf::util::JsonParseOptions opts;
  opts.ignore_unknown_fields = false;
  auto s = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(body.data(), body.size()), msg, opts);
  if (s.ok()) return absl::OkStatus();
  // protobuf's message names the field ("foo: Cannot find field.") or the JSON error.
  return absl::InvalidArgumentError(absl::StrCat(
      "body is not JSON of ", msg->GetDescriptor()->full_name(), ": ", std::string(s.message())));
}

absl::Status ApplyQuery(const std::multimap<std::string, std::string>& params, Message* msg) {
  for (const auto& [key, value] : params) {
    if (!key.empty() && key.back() == ']' && key.find('[') != std::string::npos) {
      if (absl::Status s = SetMapEntry(msg, key, value); !s.ok()) return s;
      continue;
    }
    const FieldDescriptor* f = FieldNamed(*msg, key);
    if (f == nullptr) {
      return BadParam(key, absl::StrCat("no such field in ", msg->GetDescriptor()->name()));
    }
    if (f->is_map()) {
      return BadParam(key, absl::StrCat("a map: give its entries as ", key, "[KEY]=VALUE"));
    }
    if (absl::Status s = SetScalar(msg, f, key, value); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status SetPathName(const std::string& name, Message* msg) {
  const FieldDescriptor* f = msg->GetDescriptor()->FindFieldByName("name");
  if (f == nullptr || f->cpp_type() != FieldDescriptor::CPPTYPE_STRING) {
    return absl::OkStatus();
  }
  const Reflection* r = msg->GetReflection();
  std::string given = r->GetString(*msg, f);
  if (!given.empty() && given != name) {
    return absl::InvalidArgumentError(
        absl::StrCat("name: \"", given, "\" differs from the path's session \"", name, "\""));
  }
  r->SetString(msg, f, name);
  return absl::OkStatus();
}

std::string PrintJson(const Message& msg) {
  google::protobuf::util::JsonPrintOptions opts;
  opts.always_print_primitive_fields = true;
  std::string out;
  // Printing a valid message cannot fail (its only error is an unresolvable Any).
  (void)google::protobuf::util::MessageToJsonString(msg, &out, opts);
  return out;
}

}  // namespace lrsched::http
