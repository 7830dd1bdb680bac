"""Reading SqliteStore's journal (DATA_DIR/journal/, server/store/sqlite/journal.h) from the
process tests: its segments and their records, parsed field by field (checksums are not
verified: the tests only need to know where each record starts and what it holds).

Segment: "LRSJRNL1", first_seq (u64); then records: crc32c (u32), payload length (u32), seq
(u64), payload = count (u32), then per entry kind (u8: 1 put, 2 delete), revision (i64), name
length (u32), name, value length (u32), value. Little-endian. Not a test module.
"""
import os
import re
import struct
from collections import namedtuple

MAGIC = b"LRSJRNL1"
SEGMENT_HEADER = 16
RECORD_HEADER = 16
PUT, DELETE = 1, 2
SEGMENT_NAME = re.compile(r"^(\d{20})\.log$")

Record = namedtuple("Record", "offset size seq entries")  # entries: [(kind, revision, name, value)]


def journal_dir(data_dir):
    return os.path.join(str(data_dir), "journal")


def segments(data_dir):
    """The segment paths, oldest first; fails on a file that is not a segment."""
    names = sorted(os.listdir(journal_dir(data_dir)))
    for name in names:
        assert SEGMENT_NAME.match(name), f"not a journal segment: {name}"
    return [os.path.join(journal_dir(data_dir), name) for name in names]


def first_seq(path):
    return int(SEGMENT_NAME.match(os.path.basename(path)).group(1))


def records(path):
    """Every whole record of the segment at `path`, in order (a torn tail ends the list)."""
    data = open(path, "rb").read()
    assert data[:8] == MAGIC, f"{path}: bad magic {data[:8]!r}"
    assert struct.unpack_from("<Q", data, 8)[0] == first_seq(path), path
    out = []
    offset = SEGMENT_HEADER
    while offset + RECORD_HEADER <= len(data):
        _, length, seq = struct.unpack_from("<IIQ", data, offset)
        end = offset + RECORD_HEADER + length
        if end > len(data):
            break
        payload = data[offset + RECORD_HEADER:end]
        (count,), pos, entries = struct.unpack_from("<I", payload, 0), 4, []
        for _ in range(count):
            kind, revision, name_len = struct.unpack_from("<BqI", payload, pos)
            pos += 13
            name = payload[pos:pos + name_len].decode()
            pos += name_len
            (value_len,) = struct.unpack_from("<I", payload, pos)
            pos += 4
            entries.append((kind, revision, name, payload[pos:pos + value_len]))
            pos += value_len
        assert pos == length, f"{path}: record at {offset}: payload of {length} bytes, parsed {pos}"
        out.append(Record(offset, end - offset, seq, entries))
        offset = end
    return out
