// SPDX-License-Identifier: BSD-3-Clause
// Tests of the Python literal lexer, parser and repr used by the configuration loader.
#include <doctest/doctest.h>

#include <string>

#include "hubcore/config.h"

using hub::PySyntaxError;
using hub::PyToken;
using hub::PyValue;
using Kind = PyValue::Kind;

namespace {

PyValue ok(std::string_view text) {
    PySyntaxError err;
    auto v = hub::parsePyLiteral(text, err);
    INFO("input: ", std::string(text), " error: ", err.message);
    REQUIRE(v.has_value());
    return *v;
}

PySyntaxError bad(std::string_view text) {
    PySyntaxError err;
    auto v = hub::parsePyLiteral(text, err);
    INFO("input: ", std::string(text));
    REQUIRE_FALSE(v.has_value());
    CHECK_FALSE(err.message.empty());
    return err;
}

bool contains(const std::string& haystack, std::string_view needle) {
    return haystack.find(needle) != std::string::npos;
}

constexpr std::string_view kRule =
    "is not supported: hubd configuration files contain only c.Class.trait = <literal>";

}  // namespace

TEST_CASE("strings: quotes, escapes, raw, triple, concatenation") {
    CHECK(ok("'abc'").str == "abc");
    CHECK(ok("\"abc\"").str == "abc");
    CHECK(ok("''").str.empty());
    CHECK(ok(R"('a\nb\tc\\d\'e\"f')").str == "a\nb\tc\\d'e\"f");
    CHECK(ok(R"('\x41\x7e')").str == "A~");
    CHECK(ok(R"('\u00e9\u20ac')").str == "\xc3\xa9\xe2\x82\xac");
    CHECK(ok(R"('\U0001F600')").str == "\xf0\x9f\x98\x80");
    CHECK(ok(R"('\101\0')").str == std::string("A\0", 2));
    CHECK(ok(R"('\d+')").str == "\\d+");  // unknown escapes stay, as in Python
    CHECK(ok(R"(r'\d+\n')").str == "\\d+\\n");
    CHECK(ok(R"(R"a\"b")").str == "a\\\"b");
    CHECK(ok("'''one\ntwo'''").str == "one\ntwo");
    CHECK(ok("\"\"\"say \"hi\" and 'bye'\"\"\"").str == "say \"hi\" and 'bye'");
    CHECK(ok("'''a\r\nb'''").str == "a\nb");
    CHECK(ok("'a\\\nb'").str == "ab");  // backslash-newline inside a string
    CHECK(ok("'abc' 'def'").str == "abcdef");
    CHECK(ok("('abc'\n  \"def\"\n  r'\\g')").str == "abcdef\\g");
    CHECK(ok("u'x'").str == "x");
    CHECK(ok("'caf\xc3\xa9'").str == "caf\xc3\xa9");

    auto v = ok("b'a\\x00\\xff'");
    CHECK(v.kind == Kind::Bytes);
    CHECK(v.str == std::string("a\0\xff", 3));
    CHECK(ok(R"(br'\x00')").str == "\\x00");
    CHECK(ok(R"(b'\u0041')").str == "\\u0041");  // \u is no escape in bytes
    CHECK(ok("b'ab' b'cd'").str == "abcd");

    CHECK(contains(bad("'a' b'b'").message, "cannot mix bytes and nonbytes"));
    CHECK(contains(bad("b'caf\xc3\xa9'").message, "ASCII"));
    CHECK(contains(bad(R"('\x4')").message, "truncated"));
    CHECK(contains(bad(R"('\u12')").message, "truncated"));
    CHECK(contains(bad(R"('\ud800')").message, "surrogate"));
    CHECK(contains(bad(R"('\U00110000')").message, "illegal"));
    CHECK(contains(bad(R"('\N{BULLET}')").message, "not supported"));
    CHECK(contains(bad("f'{x}'").message, "f-string " + std::string(kRule)));
    CHECK(contains(bad("'a' f'{x}'").message, "f-string"));
    CHECK(contains(bad("rf'{x}'").message, "f-string"));
}

TEST_CASE("strings: unterminated, NUL bytes, invalid UTF-8, typographic quotes") {
    auto e = bad("'abc");
    CHECK(contains(e.message, "unterminated string literal"));
    CHECK(e.line == 1);
    e = bad("[1,\n'abc\n]");
    CHECK(e.line == 2);
    e = bad("'''abc\n\ndef");
    CHECK(contains(e.message, "unterminated triple-quoted string literal"));
    CHECK(e.line == 1);
    CHECK(contains(bad("'abc\\").message, "unterminated"));
    CHECK(contains(bad("r'abc\\'").message, "unterminated"));

    e = bad(std::string("'a\0b'", 5));
    CHECK(contains(e.message, "null bytes"));
    e = bad(std::string("[\n\n'a\0b']", 9));
    CHECK(e.line == 3);

    CHECK(contains(bad("'\xff'").message, "invalid UTF-8"));
    CHECK(contains(bad("'\xc0\xaf'").message, "invalid UTF-8"));      // overlong '/'
    CHECK(contains(bad("'\xed\xa0\x80'").message, "invalid UTF-8"));  // encoded surrogate
    CHECK(contains(bad("'\xe2\x82'").message, "invalid UTF-8"));      // truncated sequence
    CHECK(contains(bad("# caf\xe9\n1").message, "invalid UTF-8"));    // even in comments, like Python

    CHECK(contains(bad("\xe2\x80\x98wheel\xe2\x80\x99").message, "straight quotes"));
    CHECK(contains(bad("[1,\xc2\xa0"
                       "2]")
                       .message,
                   "non-breaking space"));
}

TEST_CASE("numbers") {
    CHECK(ok("0").integer == 0);
    CHECK(ok("42").integer == 42);
    CHECK(ok("-42").integer == -42);
    CHECK(ok("+7").integer == 7);
    CHECK(ok("- -3").integer == 3);
    CHECK(ok("1_000_000").integer == 1000000);
    CHECK(ok("0xff").integer == 255);
    CHECK(ok("0XFF").integer == 255);
    CHECK(ok("0x_ff").integer == 255);
    CHECK(ok("0o17").integer == 15);
    CHECK(ok("0b101").integer == 5);
    CHECK(ok("00").integer == 0);
    CHECK(ok("9223372036854775807").integer == INT64_MAX);
    CHECK(ok("-9223372036854775808").integer == INT64_MIN);
    CHECK(contains(bad("9223372036854775808").message, "too large"));
    CHECK(contains(bad("99999999999999999999999").message, "too large"));
    CHECK(contains(bad("0777").message, "leading zeros"));
    CHECK(contains(bad("1__0").message, "invalid"));
    CHECK(contains(bad("1_").message, "invalid"));
    CHECK(contains(bad("0x").message, "invalid hexadecimal"));
    CHECK(contains(bad("0b2").message, "invalid"));
    CHECK(contains(bad("1j").message, "complex number"));
    CHECK(contains(bad("12abc").message, "invalid decimal literal"));

    auto f = ok("1.5");
    CHECK(f.kind == Kind::Float);
    CHECK(f.real == 1.5);
    CHECK(ok("-0.25").real == -0.25);
    CHECK(ok(".5").real == 0.5);
    CHECK(ok("1.").real == 1.0);
    CHECK(ok("1e3").real == 1000.0);
    CHECK(ok("1_0.5e-1").real == doctest::Approx(1.05));
    CHECK(ok("00.5").real == 0.5);
    CHECK(contains(bad("1e").message, "invalid float"));
    CHECK(contains(bad("1e999").message, "out of range"));
}

TEST_CASE("constants, containers, trailing commas") {
    CHECK(ok("True").kind == Kind::Bool);
    CHECK(ok("True").boolean);
    CHECK_FALSE(ok("False").boolean);
    CHECK(ok("None").kind == Kind::None);

    auto l = ok("['a', 1, None,]");
    CHECK(l.kind == Kind::List);
    CHECK(l.items.size() == 3);
    CHECK(ok("[]").items.empty());

    auto t = ok("('a',)");
    CHECK(t.kind == Kind::Tuple);
    CHECK(t.items.size() == 1);
    CHECK(ok("()").kind == Kind::Tuple);
    CHECK(ok("('a')").kind == Kind::Str);  // parentheses alone make no tuple
    CHECK(ok("(1, 2)").items.size() == 2);
    CHECK(ok("((1))").integer == 1);
    auto bare = ok("'--a', '--b'");  // a bare tuple, as Python reads it
    CHECK(bare.kind == Kind::Tuple);
    CHECK(bare.items.size() == 2);
    CHECK(ok("1,").kind == Kind::Tuple);

    auto s = ok("{'b', 'a', 'b',}");
    CHECK(s.kind == Kind::Set);
    REQUIRE(s.items.size() == 2);
    CHECK(s.items[0].str == "b");                   // source order is kept
    CHECK(ok("{1, True, 1.0}").items.size() == 1);  // equal in Python
    CHECK(ok("{(1, 2), (1, 2)}").items.size() == 1);
    CHECK(ok("{'1', 1}").items.size() == 2);

    auto d = ok("{'a': 1, 'b': [1, {'c': (2,)}], 'a': 3,}");
    CHECK(d.kind == Kind::Dict);
    REQUIRE(d.dict.size() == 2);
    CHECK(d.dict[0].first.str == "a");
    CHECK(d.dict[0].second.integer == 3);  // last value, first position
    CHECK(ok("{}").kind == Kind::Dict);

    CHECK(contains(bad("{[1]: 2}").message, "unhashable type: 'list'"));
    CHECK(contains(bad("{[1], 2}").message, "unhashable type: 'list'"));
    CHECK(contains(bad("{(1, [2])}").message, "unhashable"));
    CHECK(contains(bad("[1 2]").message, "comma"));
    CHECK(contains(bad("[1,,2]").message, "unexpected"));
    CHECK(contains(bad("{1: 2, 3}").message, "expected ':'"));
    CHECK(contains(bad("(1 2)").message, "comma"));
    CHECK(contains(bad("[1, 2").message, "never closed"));
    CHECK(contains(bad("[1, 2)").message, "does not match"));
    CHECK(contains(bad("1]").message, "unmatched"));
    CHECK(contains(bad("").message, "missing"));
    CHECK(contains(bad("# only a comment").message, "missing"));
}

TEST_CASE("bytes.fromhex is the only call") {
    auto v = ok("bytes.fromhex('00ff10')");
    CHECK(v.kind == Kind::Bytes);
    CHECK(v.str == std::string("\x00\xff\x10", 3));
    CHECK(ok("bytes.fromhex('00 ff\\n10 ')").str == std::string("\x00\xff\x10", 3));
    CHECK(ok("bytes.fromhex('ab' 'cd',)").str == "\xab\xcd");
    CHECK(ok("bytes.fromhex('')").str.empty());
    const std::string hint =
        "bytes.fromhex() argument is not hexadecimal: replace it with the output of `openssl rand -hex 32`";
    CHECK(bad("bytes.fromhex('64 CHAR HEX STRING')").message == hint);
    CHECK(bad("bytes.fromhex('abc')").message == hint);
    CHECK(bad("bytes.fromhex('a b')").message == hint);
    CHECK(contains(bad("bytes.fromhex(x)").message, kRule));
    CHECK(contains(bad("bytes.fromhex('ab', 'cd')").message, kRule));
    CHECK(contains(bad("bytes('ab')").message, "calling bytes() " + std::string(kRule)));
    CHECK(contains(bad("set()").message, "write [] for an empty set"));
    CHECK(contains(bad("open('/etc/secret').read()").message, "calling open()"));
    CHECK(contains(bad("os.environ['X']").message, "subscript os.environ[...]"));
    CHECK(contains(bad("os.environ.get('X')").message, "calling os.environ.get()"));
}

TEST_CASE("expressions are refused by name") {
    CHECK(contains(bad("1+2").message, "an expression (operator '+') " + std::string(kRule)));
    CHECK(contains(bad("[1, 2] * 3").message, "operator '*'"));
    CHECK(contains(bad("'a' % x").message, "operator '%'"));
    CHECK(contains(bad("'{}'.format(1)").message, "calling a method (str.format())"));
    CHECK(contains(bad("x").message, "the name x " + std::string(kRule)));
    CHECK(contains(bad("SudoSpawner").message, "write it as a string"));
    CHECK(contains(bad("[1 for x in y]").message, "comprehension"));
    CHECK(contains(bad("1 if a else 2").message, "conditional expression"));
    CHECK(contains(bad("lambda: 1").message, "lambda"));
    CHECK(contains(bad("not True").message, "operator 'not'"));
    CHECK(contains(bad("True and False").message, "operator 'and'"));
    CHECK(contains(bad("[*a]").message, "unpacking"));
    CHECK(contains(bad("{**a}").message, "unpacking"));
    CHECK(contains(bad("...").message, "Ellipsis"));
    CHECK(contains(bad("-x").message, "unary '-'"));
    CHECK(contains(bad("~1").message, "unary '~'"));
    CHECK(contains(bad("(1)(2)").message, "a call"));
    CHECK(contains(bad("[1][0]").message, "a subscript"));
    CHECK(contains(bad("1 == 1").message, "operator '=='"));
    CHECK(contains(bad("$").message, "invalid character"));
}

TEST_CASE("comments and continuations") {
    auto v = ok("[  # users\n  'a',  # first\n\n  'b'\n]  # done");
    CHECK(v.items.size() == 2);
    CHECK(ok("{\n'a':\n1}").dict.size() == 1);
    CHECK(ok("1 \\\n").integer == 1);
    CHECK(ok("'a' \\\n 'b'").str == "ab");
    CHECK(contains(bad("1 \\ 2").message, "continuation"));
    CHECK(contains(bad("[1,\n2]\n3").message, "only one value"));
}

TEST_CASE("hostile input: depth, size") {
    std::string deep64(64, '[');
    deep64 += std::string(64, ']');
    CHECK(ok(deep64).kind == Kind::List);
    std::string deep65(65, '[');
    deep65 += std::string(65, ']');
    CHECK(contains(bad(deep65).message, "nested more than 64"));
    std::string opens, closes;
    for (int i = 0; i < 150; ++i) {
        opens += i % 3 == 0 ? "[" : i % 3 == 1 ? "(" : "{1: ";
        closes.insert(0, i % 3 == 0 ? "]" : i % 3 == 1 ? ")" : "}");
    }
    CHECK(contains(bad(opens + closes).message, "nested more than 64"));
    CHECK(contains(bad(std::string(100000, '[')).message, "too many nested parentheses"));
    CHECK(contains(bad(std::string(100000, '(') + std::string(100000, ')')).message, "too many nested"));

    const std::string big(1 << 20, 'x');
    auto v = ok("'" + big + "'");
    CHECK(v.str.size() == big.size());
    CHECK(contains(bad("'" + big).message, "unterminated"));
    std::string many = "[";
    for (int i = 0; i < 100000; ++i) many += "1,";
    many += "]";
    CHECK(ok(many).items.size() == 100000);
    std::string manySet = "{";
    for (int i = 0; i < 100000; ++i) manySet += std::to_string(i) + ",";
    manySet += "}";
    CHECK(ok(manySet).items.size() == 100000);
}

TEST_CASE("repr") {
    CHECK(ok("'abc'").repr() == "'abc'");
    CHECK(ok("\"it's\"").repr() == "\"it's\"");
    CHECK(ok("'both \\' \"'").repr() == "'both \\' \"'");
    CHECK(ok("'a\\nb\\t\\\\\\x01\\x7f'").repr() == "'a\\nb\\t\\\\\\x01\\x7f'");
    CHECK(ok("'caf\xc3\xa9'").repr() == "'caf\xc3\xa9'");
    CHECK(ok("'\\x85'").repr() == "'\\x85'");
    CHECK(ok("b'a\\x00\\xff\\''").repr() == "b\"a\\x00\\xff'\"");
    CHECK(ok("42").repr() == "42");
    CHECK(ok("-7").repr() == "-7");
    CHECK(ok("14.0").repr() == "14.0");
    CHECK(ok("0.1").repr() == "0.1");
    CHECK(ok("1e16").repr() == "1e+16");
    CHECK(ok("1e-5").repr() == "1e-05");
    CHECK(ok("True").repr() == "True");
    CHECK(ok("None").repr() == "None");
    CHECK(ok("[1, 'a']").repr() == "[1, 'a']");
    CHECK(ok("('a',)").repr() == "('a',)");
    CHECK(ok("()").repr() == "()");
    CHECK(ok("{'a', 'b'}").repr() == "{'a', 'b'}");
    CHECK(ok("{'a': [1], 'b': {}}").repr() == "{'a': [1], 'b': {}}");
    PyValue empty;
    empty.kind = Kind::Set;
    CHECK(empty.repr() == "set()");
    CHECK(PyValue{}.repr() == "None");
}

TEST_CASE("tokenizer") {
    std::vector<PyToken> tokens;
    PySyntaxError err;
    REQUIRE(hub::tokenizePython("c = get_config()\n\n  # comment\nc.A.b = [1,\n  2]\n", tokens, err));
    using TK = PyToken::Kind;
    std::vector<TK> kinds;
    for (const auto& t : tokens) kinds.push_back(t.kind);
    CHECK(kinds == std::vector<TK>{TK::Name, TK::Op, TK::Name, TK::Op, TK::Op, TK::Newline, TK::Name, TK::Op,
                                   TK::Name, TK::Op, TK::Name, TK::Op, TK::Op, TK::Number, TK::Op, TK::Number,
                                   TK::Op, TK::Newline, TK::End});
    CHECK(tokens[6].line == 4);
    CHECK(tokens[6].column == 0);
    CHECK(tokens[15].line == 5);
    CHECK(tokens[15].column == 2);

    // After a lexical error the complete lines before it remain.
    CHECK_FALSE(hub::tokenizePython("a = 1\nb = 'x\nc = 2\n", tokens, err));
    CHECK(err.line == 2);
    CHECK(tokens.size() == 5);  // a = 1 Newline End
    CHECK(tokens.back().kind == TK::End);

    // A UTF-8 byte order mark is skipped.
    REQUIRE(hub::tokenizePython("\xef\xbb\xbfx", tokens, err));
    CHECK(tokens[0].text == "x");
    CHECK(tokens[0].column == 0);
}
