#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Seeded generator of TOML documents for the differential test.

Documents are built from the constructs profiles use (bare/quoted/dotted keys,
tables, every kind of string and escape, integers in every base, booleans,
nested and multi-line arrays) with a small key alphabet, so that duplicate
keys and table redefinitions happen often; some use constructs the reader
does not support (floats, dates, inline tables, arrays of tables); about half
are then mutated byte by byte. Whether a document is valid is not decided
here: tomllib is the oracle.

Usage: generate.py [--seed N] [--count N] OUTDIR   (writes gen-NNNNN.toml)
"""

import argparse
import os
import random

BARE_KEYS = ["a", "b", "c", "a-b", "_", "1", "key", "Key", "x_1", "0x1", "true", "-"]
QUOTED_KEYS = ['"a"', "'b'", '""', '"a.b"', '"\\u00e9"', "'é'", '"\\n"', '" "', "'a b'",
               '"\\"q"', '"c"', "''"]
VALID_STRING_PIECES = ["a", "é", "日本", "😀", " ", "\t", "\\\\", '\\"', "\\b", "\\t", "\\n",
                       "\\f", "\\r", "\\u0041", "\\u00E9", "\\U0001F600", "\\u0000", "'", "#",
                       "=", "[", "\u0085", "\\u007F", "\\U0010FFFF", "\\uFFFF"]
VALID_INTEGERS = ["0", "1", "-1", "+1", "42", "1_000", "-0", "+0", "0x1F", "0xdead_BEEF", "0o17",
                  "0b101", "0b1_0", "9223372036854775807", "-9223372036854775808",
                  "0x7fffffffffffffff", "0o777777777777777777777", "1_2_3", "-12_345"]
STRING_PIECES = ["a", "é", "日本", "😀", " ", "\t", "\\\\", '\\"', "\\b", "\\t", "\\n", "\\f",
                 "\\r", "\\u0041", "\\u00E9", "\\U0001F600", "\\u0000", "\\uD800", "\\U00110000",
                 "\\x41", "\\e", "\\", "'", '"', "#", "=", "[", "\x7f", "\x01", "\u0085"]
INTEGERS = ["0", "1", "-1", "+1", "42", "1_000", "1__0", "_1", "1_", "01", "00", "-0", "+0",
            "0x1F", "0xdead_BEEF", "0x_1", "0X1", "0o17", "0o8", "0b101", "0b2", "+0x1", "-0b1",
            "9223372036854775807", "-9223372036854775808", "9223372036854775808",
            "-9223372036854775809", "0x7fffffffffffffff", "0x8000000000000000",
            "0o777777777777777777777", "0o1000000000000000000000", "123456789012345678901234"]
UNSUPPORTED_VALUES = ["1.5", "-0.0", "1e3", "6.02E+23", "inf", "-nan", "1979-05-27",
                      "1979-05-27T07:32:00Z", "1979-05-27 07:32:00.999+01:00", "07:32:00",
                      "{}", "{ a = 1 }", "{ a.b = [1] }"]
WS = ["", " ", "  ", "\t"]


class Gen:
    """@valid: draw only valid values and strings (structure may still conflict);
    @keys: the bare key alphabet (small means many conflicts)."""

    def __init__(self, rng):
        self.r = rng
        self.valid = False
        self.keys = BARE_KEYS

    def set_mode(self, valid, wide_keys):
        self.valid = valid
        self.keys = (BARE_KEYS + ["k%d" % i for i in range(40)]) if wide_keys else BARE_KEYS

    def ws(self):
        return self.r.choice(WS)

    def key_part(self):
        if self.r.random() < 0.75:
            return self.r.choice(self.keys)
        return self.r.choice(QUOTED_KEYS)

    def key(self):
        n = self.r.choice([1, 1, 1, 2, 2, 3])
        parts = [self.key_part() for _ in range(n)]
        return "".join(p + (self.ws() + "." + self.ws() if i < n - 1 else "")
                       for i, p in enumerate(parts))

    def basic_string(self, multiline):
        alphabet = VALID_STRING_PIECES if self.valid else STRING_PIECES
        pieces = [self.r.choice(alphabet) for _ in range(self.r.randint(0, 5))]
        if multiline:
            if self.r.random() < 0.3:
                pieces.insert(self.r.randint(0, len(pieces)), "\\" + self.r.choice(WS) + "\n   ")
            if self.r.random() < 0.3:
                pieces.insert(self.r.randint(0, len(pieces)), "\n")
            head = "\n" if self.r.random() < 0.5 else ""
            tail = self.r.choice(["", '"', '""'])
            return '"""' + head + "".join(pieces) + tail + '"""'
        return '"' + "".join(pieces) + '"'

    def literal_string(self, multiline):
        alphabet = ["a", "é", "\\", "\\n", '"', " ", "#", "\t", "😀"]
        body = "".join(self.r.choice(alphabet) for _ in range(self.r.randint(0, 6)))
        if multiline:
            if self.r.random() < 0.4:
                body += "\n" + "".join(self.r.choice(alphabet) for _ in range(3))
            head = "\n" if self.r.random() < 0.5 else ""
            tail = self.r.choice(["", "'", "''"])
            return "'''" + head + body + tail + "'''"
        return "'" + body + "'"

    def array(self, depth):
        n = self.r.randint(0, 4)
        multiline = self.r.random() < 0.4
        sep = "\n" + self.ws() if multiline else self.ws()
        items = []
        for _ in range(n):
            item = self.value(depth + 1)
            if multiline and self.r.random() < 0.3:
                item += self.ws() + " # comment"
                item += "\n"
            items.append(item)
        body = ("," + sep).join(items)
        if n and self.r.random() < 0.3:
            body += ","
        if multiline and self.r.random() < 0.3:
            body += " # trailing\n"
        return "[" + sep + body + sep + "]"

    def value(self, depth=0):
        x = self.r.random()
        if x < (0.01 if self.valid else 0.07):
            return self.r.choice(UNSUPPORTED_VALUES)
        if x < 0.25:
            return self.basic_string(False)
        if x < 0.33:
            return self.basic_string(True)
        if x < 0.41:
            return self.literal_string(False)
        if x < 0.47:
            return self.literal_string(True)
        if x < 0.67:
            return self.r.choice(VALID_INTEGERS if self.valid else INTEGERS)
        if x < 0.77:
            return self.r.choice(["true", "false"])
        if depth < 3:
            return self.array(depth)
        return "1"

    def statement(self):
        x = self.r.random()
        if x < 0.7:
            line = self.ws() + self.key() + self.ws() + "=" + self.ws() + self.value()
        elif x < 0.85:
            line = self.ws() + "[" + self.ws() + self.key() + self.ws() + "]"
        elif x < (0.855 if self.valid else 0.88):
            line = "[[" + self.key() + "]]"
        elif x < 0.95:
            line = "# a comment " + self.r.choice(["", "é", "\t", "#"])
        else:
            line = ""
        if self.r.random() < 0.15:
            line += self.ws() + "# trailing comment"
        return line

    def document(self):
        lines = [self.statement() for _ in range(self.r.randint(1, 12))]
        newline = "\r\n" if self.r.random() < 0.1 else "\n"
        text = newline.join(lines)
        if self.r.random() < 0.8:
            text += newline
        return text.encode("utf-8")

    def mutate(self, data):
        specials = [b'"', b"'", b"\\", b"[", b"]", b"=", b".", b",", b"#", b"\n", b"\r", b"\t",
                    b" ", b"{", b"}", b"_", b"0", b"x", b"e", b"\x00", b"\x7f", b"\x01",
                    "é".encode(), b"\xff", b"\xc3", b"\xed\xa0\x80", b"u", b"+", b"-", b":"]
        data = bytearray(data)
        for _ in range(self.r.randint(1, 3)):
            op = self.r.random()
            pos = self.r.randint(0, len(data))
            if op < 0.35 and data:
                del data[min(pos, len(data) - 1)]
            elif op < 0.7:
                data[pos:pos] = self.r.choice(specials)
            elif op < 0.85:
                lines = bytes(data).split(b"\n")
                i = self.r.randrange(len(lines))
                lines.insert(i, lines[i])
                data = bytearray(b"\n".join(lines))
            elif op < 0.95:
                lines = bytes(data).split(b"\n")
                self.r.shuffle(lines)
                data = bytearray(b"\n".join(lines))
            else:
                del data[pos:]
        return bytes(data)


def generate(seed, count):
    """Yield (name, bytes) for @count documents generated from @seed."""
    rng = random.Random(seed)
    gen = Gen(rng)
    for i in range(count):
        mode = rng.random()
        gen.set_mode(valid=mode < 0.6, wide_keys=mode < 0.2)
        doc = gen.document()
        if mode >= 0.6 and rng.random() < 0.7:
            doc = gen.mutate(doc)
        yield "gen-%05d.toml" % i, doc


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("outdir")
    args = ap.parse_args()
    os.makedirs(args.outdir, exist_ok=True)
    for name, data in generate(args.seed, args.count):
        with open(os.path.join(args.outdir, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
