// Copyright lrsched authors.
//
// The frame around every stored record (server/registry/record_frame.h) and its CRC32C
// (server/store/crc32c.h): every flipped bit, cut or added byte of a record is refused with
// DATA_LOSS, never decoded into another state; records of format 1 (before the frame) still
// read.
#include "server/registry/record_frame.h"

#include <optional>
#include <random>
#include <string>

#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"
#include "server/registry/session.h"
#include "server/store/crc32c.h"

namespace lrsched {
namespace {

TEST(Crc32cTest, KnownValues) {
  // RFC 3720 (iSCSI), B.4, and the usual check value.
  EXPECT_EQ(crc32c::Value("123456789"), 0xe3069283u);
  EXPECT_EQ(crc32c::Value(std::string(32, '\0')), 0x8a9136aau);
  EXPECT_EQ(crc32c::Value(std::string(32, '\xff')), 0x62a8ab43u);
  std::string ascending;
  for (int i = 0; i < 32; ++i) ascending.push_back(static_cast<char>(i));
  EXPECT_EQ(crc32c::Value(ascending), 0x46dd794eu);
  EXPECT_EQ(crc32c::Value(""), 0u);
}

TEST(Crc32cTest, ExtendEqualsTheWholeAtEverySplit) {
  std::mt19937 rng(7);
  for (size_t n : {1u, 7u, 8u, 9u, 63u, 200u}) {
    std::string data(n, '\0');
    for (char& c : data) c = static_cast<char>(rng());
    const uint32_t whole = crc32c::Value(data);
    for (size_t cut = 0; cut <= n; ++cut) {
      std::string_view v(data);
      EXPECT_EQ(crc32c::Extend(crc32c::Value(v.substr(0, cut)), v.substr(cut)), whole);
    }
  }
}

// The one spelling records and the high-water file store: 8 lower-case hex digits, read back
// exactly; any other spelling (upper case, short, long, a sign, a space) is refused.
TEST(Crc32cTest, HexIsEightLowerCaseDigitsAndReadsBack) {
  EXPECT_EQ(crc32c::Hex(0xe3069283u), "e3069283");
  EXPECT_EQ(crc32c::Hex(0), "00000000");
  EXPECT_EQ(crc32c::Hex(0xau), "0000000a");
  EXPECT_EQ(crc32c::Hex(0xffffffffu), "ffffffff");
  std::mt19937 rng(11);
  for (int i = 0; i < 1000; ++i) {
    const uint32_t v = static_cast<uint32_t>(rng());
    EXPECT_EQ(crc32c::ParseHex(crc32c::Hex(v)), v);
  }
  for (std::string_view bad :
       {"E3069283", "e306928", "e30692830", "", "+3069283", "e306928 ", "0x069283", "e306928g"}) {
    EXPECT_EQ(crc32c::ParseHex(bad), std::nullopt) << bad;
  }
}

std::string GoodRecord() {
  auto s = Schedule::Create(nlohmann::json::parse(
      R"({"optimizer": {"type": "SGD", "param_groups": [{"lr": 0.1, "momentum": 0.9}]},
          "scheduler": {"type": "CosineAnnealingLR", "T_max": 40, "eta_min": 0.001}})"));
  EXPECT_TRUE(s.ok()) << s.status();
  for (int i = 0; i < 7; ++i) EXPECT_TRUE((*s)->Step({}).ok());
  SessionMeta meta;
  meta.name = "runs/a";
  meta.labels = {{"team", "vision"}};
  meta.revision = 8;
  meta.create_time = absl::FromUnixSeconds(1764500000);
  meta.update_time = absl::FromUnixSeconds(1764500100);
  absl::StatusOr<std::string> r = EncodeRecord(meta, **s);
  EXPECT_TRUE(r.ok()) << r.status();
  return *r;
}

TEST(RecordFrameTest, RecordsAreFramedAndReadBack) {
  const std::string record = GoodRecord();
  ASSERT_EQ(record.substr(0, kRecordMagic.size() + 2), "#lrsched-record/2 ");
  ASSERT_EQ(record[kRecordHeaderBytes - 1], '\n');
  ASSERT_EQ(record[kRecordHeaderBytes], '{');
  absl::StatusOr<DecodedRecord> d = DecodeRecord(record);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->format, 2);
  EXPECT_EQ(d->meta.name, "runs/a");
  EXPECT_EQ(d->schedule->last_epoch(), 7);
  EXPECT_EQ(*EncodeRecord(d->meta, *d->schedule), record);
}

void ExpectRefused(const std::string& bytes, const std::string& what) {
  absl::StatusOr<DecodedRecord> d = DecodeRecord(bytes);
  ASSERT_FALSE(d.ok()) << what << " was decoded";
  EXPECT_EQ(d.status().code(), absl::StatusCode::kDataLoss) << what << ": " << d.status();
}

TEST(RecordFrameTest, EveryFlippedBitIsRefused) {
  const std::string record = GoodRecord();
  for (size_t i = 0; i < record.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string damaged = record;
      damaged[i] = static_cast<char>(damaged[i] ^ (1 << bit));
      ExpectRefused(damaged, "bit " + std::to_string(bit) + " of byte " + std::to_string(i));
    }
  }
}

TEST(RecordFrameTest, EveryCutAndAnyAddedByteIsRefused) {
  const std::string record = GoodRecord();
  for (size_t n = 0; n < record.size(); ++n) {
    ExpectRefused(record.substr(0, n), "the first " + std::to_string(n) + " bytes");
  }
  ExpectRefused(record + " ", "a trailing space");
  ExpectRefused(record + "}", "a trailing brace");
}

// The edit of the issue that found it: two bytes of the state changed, a plausible record.
TEST(RecordFrameTest, AnEditedStateIsRefused) {
  const std::string record = GoodRecord();
  ASSERT_NE(record.find("\"last_epoch\":7"), std::string::npos);
  ExpectRefused(absl::StrReplaceAll(record, {{"\"last_epoch\":7", "\"last_epoch\":5"}}),
                "last_epoch 7 -> 5");
  ExpectRefused(absl::StrReplaceAll(record, {{"\"_step_count\":8", "\"_step_count\":6"}}),
                "_step_count 8 -> 6");
}

TEST(RecordFrameTest, FormatOneRecordsStillRead) {
  const std::string body = GoodRecord().substr(kRecordHeaderBytes);
  absl::StatusOr<DecodedRecord> d = DecodeRecord(body);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->format, 1);
  EXPECT_EQ(d->schedule->last_epoch(), 7);
}

TEST(RecordFrameTest, ForeignNewerAndMisnamedRecordsAreRefused) {
  ExpectRefused("garbage", "garbage");
  ExpectRefused("", "nothing");
  ExpectRefused("{\"not\": \"a record\"}", "a foreign JSON object");
  std::string newer = GoodRecord();
  newer[kRecordMagic.size()] = '3';
  absl::StatusOr<DecodedRecord> d = DecodeRecord(newer);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("newer"), std::string::npos) << d.status();
  absl::StatusOr<DecodedRecord> other = DecodeRecordOf("runs/b", GoodRecord());
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(other.status().message().find("runs/a"), std::string::npos) << other.status();
  EXPECT_TRUE(DecodeRecordOf("runs/a", GoodRecord()).ok());
}

}  // namespace
}  // namespace lrsched
