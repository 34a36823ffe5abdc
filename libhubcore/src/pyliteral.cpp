// SPDX-License-Identifier: BSD-3-Clause
// Python lexer, strict literal parser and repr for configuration files; nothing is ever evaluated.
#include <charconv>
#include <cstring>
#include <limits>
#include <unordered_map>

#include <fmt/format.h>

#include "hubcore/config.h"
#include "hubcore/utf8.h"

namespace hub {
namespace {

// Python itself refuses more than 200 open brackets; the literal parser recurses, so it stops
// far earlier to keep the stack small whatever the input.
constexpr std::size_t kMaxBrackets = 200;
constexpr int kMaxNesting = 64;

// Same wording as config_parser.cpp: users see both as one rule.
std::string unsupported(std::string_view what) {
    return fmt::format(
        "{} is not supported: hubd configuration files contain only c.Class.trait = <literal> assignments",
        what);
}

bool isIdentStart(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           static_cast<unsigned char>(c) >= 0x80;
}
bool isIdentChar(char c) {
    return isIdentStart(c) || (c >= '0' && c <= '9');
}
bool isDec(char c) {
    return c >= '0' && c <= '9';
}
bool isHex(char c) {
    return isDec(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
bool isOct(char c) {
    return c >= '0' && c <= '7';
}
bool isBin(char c) {
    return c == '0' || c == '1';
}
int hexValue(char c) {
    if (isDec(c)) return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Length of the well-formed UTF-8 sequence at s[i] (no overlongs, surrogates or values past
// U+10FFFF), or 0.
// ---------------------------------------------------------------------------------------------
// Lexer

class Lexer {
public:
    Lexer(std::string_view src, std::vector<PyToken>& out) : src_(src), out_(out) {}

    bool run(PySyntaxError& error) {
        findFirstBadByte();
        if (src_.substr(0, 3) == "\xEF\xBB\xBF" && end_ >= 3) pos_ = lineStart_ = 3;
        bool ok = lexAll();
        if (!ok) {
            // Keep only whole logical lines so the caller can still report what precedes.
            out_.resize(completeTokens_);
            error = error_;
        }
        PyToken end;
        end.kind = PyToken::Kind::End;
        end.line = line_;
        out_.push_back(std::move(end));
        return ok;
    }

private:
    // Python refuses NUL bytes and non-UTF-8 source anywhere, so lexing simply stops there.
    void findFirstBadByte() {
        end_ = src_.size();
        for (std::size_t i = 0; i < src_.size();) {
            if (src_[i] == '\0') {
                end_ = i;
                badMessage_ = "source code cannot contain null bytes";
                return;
            }
            const std::size_t n = utf8SequenceLength(src_, i);
            if (n == 0) {
                end_ = i;
                badMessage_ = fmt::format("invalid UTF-8 (byte 0x{:02x}): configuration files must be UTF-8",
                                          static_cast<unsigned char>(src_[i]));
                return;
            }
            i += n;
        }
    }

    bool fail(int line, std::string message) {
        error_.line = line;
        error_.message = std::move(message);
        return false;
    }
    // Reaching end_ early means the bad byte, not a truncated construct, is the problem.
    bool failAtEnd(int line, std::string message) {
        if (end_ < src_.size()) return fail(line_, badMessage_);
        return fail(line, std::move(message));
    }

    void push(PyToken::Kind kind, std::string text, int line, std::size_t start) {
        PyToken t;
        t.kind = kind;
        t.text = std::move(text);
        t.line = line;
        t.column = static_cast<int>(start - tokenLineStart_);
        out_.push_back(std::move(t));
    }

    void endLogicalLine(int line) {
        if (!out_.empty() && out_.back().kind != PyToken::Kind::Newline) {
            PyToken t;
            t.kind = PyToken::Kind::Newline;
            t.line = line;
            out_.push_back(std::move(t));
        }
        completeTokens_ = out_.size();
    }

    // Consumes \n, \r\n or \r.
    void consumeNewline() {
        if (src_[pos_] == '\r' && pos_ + 1 < end_ && src_[pos_ + 1] == '\n') ++pos_;
        ++pos_;
        ++line_;
        lineStart_ = pos_;
    }

    bool lexAll() {
        while (pos_ < end_) {
            const char c = src_[pos_];
            if (c == '\n' || c == '\r') {
                const int line = line_;
                consumeNewline();
                if (brackets_.empty()) endLogicalLine(line);
                continue;
            }
            if (c == ' ' || c == '\t' || c == '\f') {
                ++pos_;
                continue;
            }
            if (c == '#') {
                while (pos_ < end_ && src_[pos_] != '\n' && src_[pos_] != '\r') ++pos_;
                continue;
            }
            if (c == '\\') {
                ++pos_;
                if (pos_ >= end_)
                    return failAtEnd(line_, "unexpected end of file after line continuation character");
                if (src_[pos_] != '\n' && src_[pos_] != '\r')
                    return fail(line_, "unexpected character after line continuation character");
                consumeNewline();
                continue;
            }
            if (const char* name = typographicAt(pos_)) return fail(line_, name);
            // Columns count from the physical line the token starts on.
            tokenLineStart_ = lineStart_;
            if (isIdentStart(c)) {
                if (!lexNameOrPrefixedString()) return false;
            } else if (isDec(c) || (c == '.' && pos_ + 1 < end_ && isDec(src_[pos_ + 1]))) {
                if (!lexNumber()) return false;
            } else if (c == '\'' || c == '"') {
                if (!lexString("", pos_)) return false;
            } else if (!lexOperator()) {
                return false;
            }
        }
        if (end_ < src_.size()) return fail(line_, badMessage_);
        if (!brackets_.empty())
            return fail(brackets_.back().second,
                        fmt::format("'{}' was never closed", brackets_.back().first));
        endLogicalLine(line_);
        return true;
    }

    // Snippets copied from web pages bring non-breaking spaces and curly quotes, which would
    // otherwise lex as parts of names.
    const char* typographicAt(std::size_t i) const {
        static constexpr std::pair<std::string_view, const char*> chars[] = {
            {"\xC2\xA0", "invalid character U+00A0 (a non-breaking space): use a normal space"},
            {"\xE2\x80\x98", "invalid character '\xE2\x80\x98' (U+2018): use straight quotes ' or \""},
            {"\xE2\x80\x99", "invalid character '\xE2\x80\x99' (U+2019): use straight quotes ' or \""},
            {"\xE2\x80\x9C", "invalid character '\xE2\x80\x9C' (U+201C): use straight quotes ' or \""},
            {"\xE2\x80\x9D", "invalid character '\xE2\x80\x9D' (U+201D): use straight quotes ' or \""},
        };
        if (static_cast<unsigned char>(src_[i]) < 0x80) return nullptr;
        for (const auto& [seq, message] : chars)
            if (src_.substr(i, seq.size()) == seq) return message;
        return nullptr;
    }

    bool lexNameOrPrefixedString() {
        const std::size_t start = pos_;
        while (pos_ < end_ && isIdentChar(src_[pos_]) && !typographicAt(pos_)) ++pos_;
        std::string name(src_.substr(start, pos_ - start));
        if (pos_ < end_ && (src_[pos_] == '\'' || src_[pos_] == '"') && name.size() <= 2) {
            std::string lower;
            for (char ch : name) lower += static_cast<char>(ch | 0x20);
            static constexpr std::string_view prefixes[] = {"r", "u", "b", "br", "rb", "f", "fr", "rf"};
            for (auto p : prefixes)
                if (lower == p) return lexString(lower, start);
        }
        push(PyToken::Kind::Name, std::move(name), line_, start);
        return true;
    }

    // Consumes digit (_? digit)*; false when no digit is there.
    bool digits(bool (*pred)(char)) {
        if (pos_ >= end_ || !pred(src_[pos_])) return false;
        while (pos_ < end_) {
            if (pred(src_[pos_])) {
                ++pos_;
            } else if (src_[pos_] == '_' && pos_ + 1 < end_ && pred(src_[pos_ + 1])) {
                pos_ += 2;
            } else {
                break;
            }
        }
        return true;
    }

    bool lexNumber() {
        const std::size_t start = pos_;
        const char second = pos_ + 1 < end_ ? static_cast<char>(src_[pos_ + 1] | 0x20) : 0;
        if (src_[pos_] == '0' && (second == 'x' || second == 'o' || second == 'b')) {
            pos_ += 2;
            if (pos_ < end_ && src_[pos_] == '_') ++pos_;
            bool (*pred)(char) = second == 'x' ? isHex : second == 'o' ? isOct : isBin;
            const char* name = second == 'x' ? "hexadecimal" : second == 'o' ? "octal" : "binary";
            if (!digits(pred)) return fail(line_, fmt::format("invalid {} literal", name));
        } else {
            bool isFloat = false;
            if (src_[pos_] != '.') digits(isDec);
            if (pos_ < end_ && src_[pos_] == '.') {
                isFloat = true;
                ++pos_;
                digits(isDec);
            }
            if (pos_ < end_ && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
                isFloat = true;
                ++pos_;
                if (pos_ < end_ && (src_[pos_] == '+' || src_[pos_] == '-')) ++pos_;
                if (!digits(isDec)) return fail(line_, "invalid float literal");
            }
            if (!isFloat) {
                std::string_view spelled = src_.substr(start, pos_ - start);
                if (spelled.size() > 1 && spelled[0] == '0' &&
                    spelled.find_first_not_of("0_") != std::string_view::npos)
                    return fail(line_,
                                "leading zeros in decimal integer literals are not permitted; use an 0o "
                                "prefix for octal integers");
            }
        }
        if (pos_ < end_ && (src_[pos_] == 'j' || src_[pos_] == 'J'))
            return fail(line_, unsupported("a complex number"));
        if (pos_ < end_ && isIdentChar(src_[pos_]) && !typographicAt(pos_))
            return fail(line_, "invalid decimal literal");
        push(PyToken::Kind::Number, std::string(src_.substr(start, pos_ - start)), line_, start);
        return true;
    }

    bool hexDigits(int count, uint32_t& value) {
        value = 0;
        for (int i = 0; i < count; ++i) {
            if (pos_ >= end_ || !isHex(src_[pos_])) return false;
            value = value * 16 + static_cast<uint32_t>(hexValue(src_[pos_]));
            ++pos_;
        }
        return true;
    }

    bool lexString(std::string_view prefix, std::size_t tokenStart) {
        const bool raw = prefix.find('r') != std::string_view::npos;
        const bool bytes = prefix.find('b') != std::string_view::npos;
        const bool fstring = prefix.find('f') != std::string_view::npos;
        const char quote = src_[pos_];
        const bool triple = pos_ + 2 < end_ && src_[pos_ + 1] == quote && src_[pos_ + 2] == quote;
        const int startLine = line_;
        pos_ += triple ? 3 : 1;
        const std::string unterminated =
            triple ? fmt::format("unterminated triple-quoted string literal (detected at line {})", startLine)
                   : std::string("unterminated string literal");
        std::string out;
        while (true) {
            if (pos_ >= end_) return failAtEnd(startLine, unterminated);
            const char c = src_[pos_];
            if (c == quote) {
                if (!triple) {
                    ++pos_;
                    break;
                }
                if (pos_ + 2 < end_ && src_[pos_ + 1] == quote && src_[pos_ + 2] == quote) {
                    pos_ += 3;
                    break;
                }
                out += c;
                ++pos_;
                continue;
            }
            if (c == '\n' || c == '\r') {
                if (!triple) return fail(startLine, unterminated);
                consumeNewline();
                out += '\n';
                continue;
            }
            if (c == '\\') {
                if (pos_ + 1 >= end_) return failAtEnd(startLine, unterminated);
                const char n = src_[pos_ + 1];
                if (raw || fstring) {
                    // The backslash stays, and only stops the next character closing the string.
                    out += '\\';
                    ++pos_;
                    if (n == '\n' || n == '\r') {
                        consumeNewline();
                        out += '\n';
                    } else {
                        out += n;
                        ++pos_;
                    }
                    continue;
                }
                if (!lexEscape(bytes, out)) return false;
                continue;
            }
            if (bytes && static_cast<unsigned char>(c) >= 0x80)
                return fail(line_, "bytes can only contain ASCII literal characters");
            out += c;
            ++pos_;
        }
        const auto kind = fstring ? PyToken::Kind::FString
                          : bytes ? PyToken::Kind::Bytes
                                  : PyToken::Kind::Str;
        push(kind, std::move(out), startLine, tokenStart);
        return true;
    }

    // At a backslash inside a non-raw string.
    bool lexEscape(bool bytes, std::string& out) {
        const char n = src_[pos_ + 1];
        pos_ += 2;
        switch (n) {
            case '\n':
            case '\r':
                --pos_;
                consumeNewline();
                return true;
            case '\\':
                out += '\\';
                return true;
            case '\'':
                out += '\'';
                return true;
            case '"':
                out += '"';
                return true;
            case 'a':
                out += '\a';
                return true;
            case 'b':
                out += '\b';
                return true;
            case 'f':
                out += '\f';
                return true;
            case 'n':
                out += '\n';
                return true;
            case 'r':
                out += '\r';
                return true;
            case 't':
                out += '\t';
                return true;
            case 'v':
                out += '\v';
                return true;
            default:
                break;
        }
        if (isOct(n)) {
            uint32_t value = static_cast<uint32_t>(n - '0');
            for (int i = 0; i < 2 && pos_ < end_ && isOct(src_[pos_]); ++i, ++pos_)
                value = value * 8 + static_cast<uint32_t>(src_[pos_] - '0');
            if (bytes) {
                if (value > 0xFF) return fail(line_, "octal escape value out of range for bytes");
                out += static_cast<char>(value);
            } else {
                appendUtf8(out, value);
            }
            return true;
        }
        if (n == 'x') {
            uint32_t value = 0;
            if (!hexDigits(2, value)) return fail(line_, "truncated \\xXX escape");
            if (bytes) {
                out += static_cast<char>(value);
            } else {
                appendUtf8(out, value);
            }
            return true;
        }
        if (!bytes && (n == 'u' || n == 'U')) {
            uint32_t value = 0;
            if (!hexDigits(n == 'u' ? 4 : 8, value))
                return fail(line_, n == 'u' ? "truncated \\uXXXX escape" : "truncated \\UXXXXXXXX escape");
            if (value > 0x10FFFF) return fail(line_, "illegal Unicode character in \\U escape");
            if (value >= 0xD800 && value <= 0xDFFF)
                return fail(line_,
                            fmt::format("\\u{:04x} is a surrogate, which cannot be encoded as UTF-8", value));
            appendUtf8(out, value);
            return true;
        }
        if (!bytes && n == 'N')
            return fail(line_, "\\N{...} escapes are not supported: write the character itself");
        // Python keeps unknown escapes verbatim (regular expressions rely on it).
        out += '\\';
        --pos_;
        return true;
    }

    bool lexOperator() {
        static constexpr std::string_view ops[] = {
            "**=", "//=", ">>=", "<<=", "...", "**", "//", "<<", ">>", "<=", ">=", "==",
            "!=",  "->",  "+=",  "-=",  "*=",  "/=", "%=", "&=", "|=", "^=", "@=", ":=",
            "+",   "-",   "*",   "/",   "%",   "@",  "&",  "|",  "^",  "~",  "<",  ">",
            "(",   ")",   "[",   "]",   "{",   "}",  ",",  ":",  ".",  ";",  "="};
        const std::size_t start = pos_;
        const std::string_view rest = src_.substr(pos_, end_ - pos_);
        for (auto op : ops) {
            if (rest.substr(0, op.size()) != op) continue;
            if (op == "(" || op == "[" || op == "{") {
                if (brackets_.size() >= kMaxBrackets) return fail(line_, "too many nested parentheses");
                brackets_.emplace_back(op[0], line_);
            } else if (op == ")" || op == "]" || op == "}") {
                if (brackets_.empty()) return fail(line_, fmt::format("unmatched '{}'", op));
                const char open = brackets_.back().first;
                if ((open == '(' && op != ")") || (open == '[' && op != "]") || (open == '{' && op != "}"))
                    return fail(
                        line_, fmt::format("closing parenthesis '{}' does not match opening parenthesis '{}'",
                                           op, open));
                brackets_.pop_back();
            }
            pos_ += op.size();
            push(PyToken::Kind::Op, std::string(op), line_, start);
            return true;
        }
        const auto c = static_cast<unsigned char>(src_[pos_]);
        if (c < 0x20 || c == 0x7f)
            return fail(line_, fmt::format("invalid non-printable character U+{:04X}", c));
        return fail(line_, fmt::format("invalid character '{}'", static_cast<char>(c)));
    }

    std::string_view src_;
    std::vector<PyToken>& out_;
    std::size_t end_ = 0;  // first NUL or invalid UTF-8 byte, else src_.size()
    std::string badMessage_;
    std::size_t pos_ = 0;
    int line_ = 1;
    std::size_t lineStart_ = 0;
    std::size_t tokenLineStart_ = 0;
    std::size_t completeTokens_ = 0;
    std::vector<std::pair<char, int>> brackets_;  // opening bracket and its line
    PySyntaxError error_;
};

// ---------------------------------------------------------------------------------------------
// Values

const char* typeName(PyValue::Kind k) {
    switch (k) {
        case PyValue::Kind::None:
            return "NoneType";
        case PyValue::Kind::Bool:
            return "bool";
        case PyValue::Kind::Int:
            return "int";
        case PyValue::Kind::Float:
            return "float";
        case PyValue::Kind::Str:
            return "str";
        case PyValue::Kind::Bytes:
            return "bytes";
        case PyValue::Kind::List:
            return "list";
        case PyValue::Kind::Tuple:
            return "tuple";
        case PyValue::Kind::Set:
            return "set";
        case PyValue::Kind::Dict:
            return "dict";
    }
    return "object";
}

std::string floatRepr(double d) {
    std::string s = fmt::format("{}", d);
    if (s.find_first_of(".en") == std::string::npos) s += ".0";  // 'n' covers inf and nan
    return s;
}

void quotedRepr(std::string_view s, bool bytes, std::string& out) {
    const bool hasSingle = s.find('\'') != std::string_view::npos;
    const char quote = hasSingle && s.find('"') == std::string_view::npos ? '"' : '\'';
    if (bytes) out += 'b';
    out += quote;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c == '\\' || c == static_cast<unsigned char>(quote)) {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\r') {
            out += "\\r";
        } else if (c == '\t') {
            out += "\\t";
        } else if (c < 0x20 || c == 0x7f || (bytes && c >= 0x80)) {
            out += fmt::format("\\x{:02x}", c);
        } else if (!bytes && c == 0xC2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) < 0xA0) {
            // C1 controls (U+0080..U+009F), which Python also escapes.
            out += fmt::format("\\x{:02x}", static_cast<unsigned char>(s[i + 1]));
            ++i;
        } else {
            out += static_cast<char>(c);
        }
    }
    out += quote;
}

void reprInto(const PyValue& v, std::string& out) {
    auto items = [&](const std::vector<PyValue>& list) {
        for (std::size_t i = 0; i < list.size(); ++i) {
            if (i) out += ", ";
            reprInto(list[i], out);
        }
    };
    switch (v.kind) {
        case PyValue::Kind::None:
            out += "None";
            break;
        case PyValue::Kind::Bool:
            out += v.boolean ? "True" : "False";
            break;
        case PyValue::Kind::Int:
            out += fmt::format("{}", v.integer);
            break;
        case PyValue::Kind::Float:
            out += floatRepr(v.real);
            break;
        case PyValue::Kind::Str:
            quotedRepr(v.str, false, out);
            break;
        case PyValue::Kind::Bytes:
            quotedRepr(v.str, true, out);
            break;
        case PyValue::Kind::List:
            out += '[';
            items(v.items);
            out += ']';
            break;
        case PyValue::Kind::Tuple:
            out += '(';
            items(v.items);
            if (v.items.size() == 1) out += ',';
            out += ')';
            break;
        case PyValue::Kind::Set:
            if (v.items.empty()) {
                out += "set()";
                break;
            }
            out += '{';
            items(v.items);
            out += '}';
            break;
        case PyValue::Kind::Dict:
            out += '{';
            for (std::size_t i = 0; i < v.dict.size(); ++i) {
                if (i) out += ", ";
                reprInto(v.dict[i].first, out);
                out += ": ";
                reprInto(v.dict[i].second, out);
            }
            out += '}';
            break;
    }
}

// A string equal for values Python considers equal (1 == 1.0 == True), so sets and dict keys
// deduplicate in linear time. False when the value is unhashable.
bool hashKey(const PyValue& v, std::string& key, const char*& unhashable) {
    switch (v.kind) {
        case PyValue::Kind::None:
            key += 'N';
            return true;
        case PyValue::Kind::Bool:
            key += v.boolean ? "I1;" : "I0;";
            return true;
        case PyValue::Kind::Int:
            key += fmt::format("I{};", v.integer);
            return true;
        case PyValue::Kind::Float:
            if (v.real > -9.2e18 && v.real < 9.2e18 &&
                v.real == static_cast<double>(static_cast<int64_t>(v.real))) {
                key += fmt::format("I{};", static_cast<int64_t>(v.real));
            } else {
                key += fmt::format("F{};", floatRepr(v.real));
            }
            return true;
        case PyValue::Kind::Str:
        case PyValue::Kind::Bytes:
            key += fmt::format("{}{}:", v.kind == PyValue::Kind::Str ? 'S' : 'B', v.str.size());
            key += v.str;
            return true;
        case PyValue::Kind::Tuple:
            key += fmt::format("T{}(", v.items.size());
            for (const auto& item : v.items)
                if (!hashKey(item, key, unhashable)) return false;
            key += ')';
            return true;
        default:
            unhashable = typeName(v.kind);
            return false;
    }
}

// ---------------------------------------------------------------------------------------------
// Parser

bool isKeyword(std::string_view s) {
    static constexpr std::string_view words[] = {
        "and",    "as",   "assert", "async",  "await",  "break",  "class",    "continue",
        "def",    "del",  "elif",   "else",   "except", "for",    "finally",  "from",
        "global", "if",   "import", "in",     "is",     "lambda", "nonlocal", "not",
        "or",     "pass", "raise",  "return", "try",    "while",  "with",     "yield"};
    for (auto w : words)
        if (s == w) return true;
    return false;
}

class Parser {
public:
    Parser(const std::vector<PyToken>& tokens, std::size_t pos) : tokens_(tokens), pos_(pos) {}

    std::optional<PyValue> parseTop(PySyntaxError& error, std::size_t& pos) {
        PyValue value;
        if (!parseValue(value, 1)) {
            error = error_;
            return std::nullopt;
        }
        if (isOp(peek(), ",")) {
            // A bare tuple, as in `c.Spawner.args = '--a', '--b'`.
            PyValue tuple;
            tuple.kind = PyValue::Kind::Tuple;
            tuple.items.push_back(std::move(value));
            while (isOp(peek(), ",")) {
                ++pos_;
                if (atStatementEnd()) break;
                PyValue item;
                if (!parseValue(item, 1)) {
                    error = error_;
                    return std::nullopt;
                }
                tuple.items.push_back(std::move(item));
            }
            value = std::move(tuple);
        }
        if (!atStatementEnd()) {
            fail(peek(), fmt::format("invalid syntax: unexpected {}", describe(peek())));
            error = error_;
            return std::nullopt;
        }
        pos = pos_;
        return value;
    }

private:
    const PyToken& peek(std::size_t k = 0) const { return tokens_[std::min(pos_ + k, tokens_.size() - 1)]; }
    static bool isOp(const PyToken& t, std::string_view op) {
        return t.kind == PyToken::Kind::Op && t.text == op;
    }
    static bool isName(const PyToken& t, std::string_view n) {
        return t.kind == PyToken::Kind::Name && t.text == n;
    }
    bool atStatementEnd() const {
        return peek().kind == PyToken::Kind::Newline || peek().kind == PyToken::Kind::End ||
               isOp(peek(), ";");
    }

    bool fail(const PyToken& at, std::string message) {
        error_.line = at.line;
        error_.message = std::move(message);
        return false;
    }

    static std::string describe(const PyToken& t) {
        switch (t.kind) {
            case PyToken::Kind::Name:
                return fmt::format("name '{}'", t.text);
            case PyToken::Kind::Number:
                return fmt::format("number {}", t.text);
            case PyToken::Kind::Str:
            case PyToken::Kind::Bytes:
            case PyToken::Kind::FString:
                return "string";
            case PyToken::Kind::Op:
                return fmt::format("'{}'", t.text);
            case PyToken::Kind::Newline:
                return "end of line";
            case PyToken::Kind::End:
                return "end of file";
        }
        return "token";
    }

    bool parseValue(PyValue& out, int depth) {
        if (depth > kMaxNesting)
            return fail(peek(), fmt::format("literal is nested more than {} levels deep", kMaxNesting));
        if (!parseAtom(out, depth)) return false;
        return checkFollower(out);
    }

    bool parseAtom(PyValue& out, int depth) {
        const PyToken& t = peek();
        switch (t.kind) {
            case PyToken::Kind::Str:
            case PyToken::Kind::Bytes:
            case PyToken::Kind::FString:
                return parseStrings(out);
            case PyToken::Kind::Number:
                ++pos_;
                return numberValue(t, false, out);
            case PyToken::Kind::Name:
                return parseName(out);
            case PyToken::Kind::Newline:
            case PyToken::Kind::End:
                return fail(t, "a value is missing");
            case PyToken::Kind::Op:
                break;
        }
        if (t.text == "-" || t.text == "+") {
            bool negative = false;
            while (isOp(peek(), "-") || isOp(peek(), "+")) {
                negative ^= peek().text == "-";
                ++pos_;
            }
            if (peek().kind != PyToken::Kind::Number)
                return fail(t, unsupported(fmt::format("an expression (unary '{}')", t.text)));
            const PyToken& number = peek();
            ++pos_;
            return numberValue(number, negative, out);
        }
        if (t.text == "[") return parseList(out, depth);
        if (t.text == "(") return parseParen(out, depth);
        if (t.text == "{") return parseBrace(out, depth);
        if (t.text == "...") return fail(t, unsupported("Ellipsis (...)"));
        if (t.text == "*" || t.text == "**")
            return fail(t, unsupported(fmt::format("unpacking ({})", t.text)));
        if (t.text == "~") return fail(t, unsupported("an expression (unary '~')"));
        return fail(t, fmt::format("invalid syntax: unexpected {}", describe(t)));
    }

    bool parseStrings(PyValue& out) {
        const PyToken& first = peek();
        out = PyValue{};
        out.kind = first.kind == PyToken::Kind::Bytes ? PyValue::Kind::Bytes : PyValue::Kind::Str;
        while (true) {
            const PyToken& t = peek();
            if (t.kind == PyToken::Kind::FString) return fail(t, unsupported("an f-string"));
            if (t.kind != PyToken::Kind::Str && t.kind != PyToken::Kind::Bytes) break;
            if ((t.kind == PyToken::Kind::Bytes) != (out.kind == PyValue::Kind::Bytes))
                return fail(t, "cannot mix bytes and nonbytes literals");
            out.str += t.text;
            ++pos_;
        }
        return true;
    }

    bool numberValue(const PyToken& t, bool negative, PyValue& out) {
        std::string s;
        for (char c : t.text)
            if (c != '_') s += c;
        out = PyValue{};
        int base = 10;
        std::size_t skip = 0;
        if (s.size() > 2 && s[0] == '0') {
            const char p = static_cast<char>(s[1] | 0x20);
            if (p == 'x') base = 16, skip = 2;
            if (p == 'o') base = 8, skip = 2;
            if (p == 'b') base = 2, skip = 2;
        }
        if (base == 10 && s.find_first_of(".eE") != std::string::npos) {
            double d = 0;
            auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
            if (ec == std::errc::result_out_of_range)
                return fail(t, fmt::format("float literal {} is out of range", t.text));
            if (ec != std::errc() || ptr != s.data() + s.size())
                return fail(t, fmt::format("invalid float literal {}", t.text));
            out.kind = PyValue::Kind::Float;
            out.real = negative ? -d : d;
            return true;
        }
        uint64_t magnitude = 0;
        auto [ptr, ec] = std::from_chars(s.data() + skip, s.data() + s.size(), magnitude, base);
        const uint64_t limit =
            static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) + (negative ? 1 : 0);
        if (ec == std::errc::result_out_of_range || (ec == std::errc() && magnitude > limit))
            return fail(t, fmt::format("integer {}{} is too large: hubd accepts 64-bit integers",
                                       negative ? "-" : "", t.text));
        if (ec != std::errc() || ptr != s.data() + s.size())
            return fail(t, fmt::format("invalid integer literal {}", t.text));
        out.kind = PyValue::Kind::Int;
        // Two's complement wrap gives INT64_MIN for -2**63 without signed overflow.
        out.integer = negative ? static_cast<int64_t>(0 - magnitude) : static_cast<int64_t>(magnitude);
        return true;
    }

    bool parseName(PyValue& out) {
        const PyToken& t = peek();
        out = PyValue{};
        if (t.text == "True" || t.text == "False") {
            out.kind = PyValue::Kind::Bool;
            out.boolean = t.text == "True";
            ++pos_;
            return true;
        }
        if (t.text == "None") {
            ++pos_;
            return true;
        }
        if (t.text == "bytes" && isOp(peek(1), ".") && isName(peek(2), "fromhex") && isOp(peek(3), "("))
            return parseFromHex(out);
        if (t.text == "lambda") return fail(t, unsupported("a lambda"));
        if (t.text == "not") return fail(t, unsupported("an expression (operator 'not')"));
        if (t.text == "await" || t.text == "yield") return fail(t, unsupported(fmt::format("'{}'", t.text)));
        if (isKeyword(t.text)) return fail(t, fmt::format("invalid syntax: unexpected '{}'", t.text));
        // A dotted name: a variable, module attribute, call or subscript; all need evaluation.
        std::string dotted = t.text;
        std::size_t k = 1;
        while (isOp(peek(k), ".") && peek(k + 1).kind == PyToken::Kind::Name) {
            dotted += '.' + peek(k + 1).text;
            k += 2;
        }
        if (isOp(peek(k), "(")) {
            std::string message = unsupported(fmt::format("calling {}()", dotted));
            if (dotted == "set" || dotted == "frozenset") message += " (write [] for an empty set)";
            if (dotted == "dict") message += " (write {} for an empty dict)";
            if (dotted == "list" || dotted == "tuple") message += " (write [] for an empty list)";
            return fail(t, std::move(message));
        }
        if (isOp(peek(k), "[")) return fail(t, unsupported(fmt::format("subscript {}[...]", dotted)));
        std::string message = unsupported(fmt::format("the name {}", dotted));
        const std::size_t lastDot = dotted.rfind('.');
        const char initial = dotted[lastDot == std::string::npos ? 0 : lastDot + 1];
        if (initial >= 'A' && initial <= 'Z')
            message += fmt::format(" (to name a class, write it as a string: '{}')", dotted);
        return fail(t, std::move(message));
    }

    bool parseFromHex(PyValue& out) {
        const PyToken& start = peek();
        pos_ += 4;  // bytes . fromhex (
        if (peek().kind != PyToken::Kind::Str)
            return fail(start, unsupported("bytes.fromhex() with anything but one string literal"));
        PyValue arg;
        if (!parseStrings(arg)) return false;
        if (isOp(peek(), ",")) ++pos_;
        if (!isOp(peek(), ")"))
            return fail(start, unsupported("bytes.fromhex() with anything but one string literal"));
        ++pos_;
        out.kind = PyValue::Kind::Bytes;
        const std::string& s = arg.str;
        for (std::size_t i = 0; i < s.size();) {
            const char c = s[i];
            if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
                ++i;
                continue;
            }
            if (i + 1 >= s.size() || hexValue(c) < 0 || hexValue(s[i + 1]) < 0)
                return fail(start,
                            "bytes.fromhex() argument is not hexadecimal: replace it with the output of "
                            "`openssl rand -hex 32`");
            out.str += static_cast<char>(hexValue(c) * 16 + hexValue(s[i + 1]));
            i += 2;
        }
        return true;
    }

    // After a complete value only a separator, a closing bracket or the statement end may come;
    // anything else means the source is an expression, which is named for the error.
    bool checkFollower(const PyValue& value) {
        const PyToken& t = peek();
        if (t.kind == PyToken::Kind::Newline || t.kind == PyToken::Kind::End) return true;
        if (t.kind == PyToken::Kind::Op) {
            static constexpr std::string_view fine[] = {",", ")", "]", "}", ":", ";"};
            for (auto f : fine)
                if (t.text == f) return true;
            if (t.text == "(") return fail(t, unsupported("a call"));
            if (t.text == "[") return fail(t, unsupported("a subscript"));
            if (t.text == ".") {
                const std::string attr = peek(1).kind == PyToken::Kind::Name ? peek(1).text : "";
                if (isOp(peek(2), "("))
                    return fail(t, unsupported(fmt::format("calling a method ({}.{}())", typeName(value.kind),
                                                           attr)));
                return fail(t, unsupported(fmt::format("an attribute ({}.{})", typeName(value.kind), attr)));
            }
            if (t.text == "=") return fail(t, unsupported("chained assignment"));
            if (t.text.size() >= 2 && t.text.back() == '=' && t.text != "==" && t.text != "<=" &&
                t.text != ">=" && t.text != "!=")
                return fail(t, unsupported(fmt::format("augmented assignment ({})", t.text)));
            return fail(t, unsupported(fmt::format("an expression (operator '{}')", t.text)));
        }
        if (t.kind == PyToken::Kind::Name) {
            if (t.text == "if" || t.text == "else") return fail(t, unsupported("a conditional expression"));
            if (t.text == "for" || t.text == "async") return fail(t, unsupported("a comprehension"));
            if (t.text == "and" || t.text == "or" || t.text == "in" || t.text == "is" || t.text == "not")
                return fail(t, unsupported(fmt::format("an expression (operator '{}')", t.text)));
        }
        return fail(t,
                    fmt::format("invalid syntax: unexpected {} (perhaps a comma is missing?)", describe(t)));
    }

    // Consumes the separator after an item: true to go on, false at the closer (consumed).
    // Sets failed_ when neither comes.
    bool nextItem(std::string_view closer) {
        if (isOp(peek(), ",")) {
            ++pos_;
            if (isOp(peek(), closer)) {
                ++pos_;
                return false;
            }
            return true;
        }
        if (isOp(peek(), closer)) {
            ++pos_;
            return false;
        }
        failed_ = true;
        fail(peek(), fmt::format("invalid syntax: expected ',' or '{}', got {}", closer, describe(peek())));
        return false;
    }

    bool parseItems(std::vector<PyValue>& items, std::string_view closer, int depth) {
        if (isOp(peek(), closer)) {
            ++pos_;
            return true;
        }
        do {
            PyValue item;
            if (!parseValue(item, depth + 1)) return false;
            items.push_back(std::move(item));
        } while (nextItem(closer));
        return !failed_;
    }

    bool parseList(PyValue& out, int depth) {
        ++pos_;
        out = PyValue{};
        out.kind = PyValue::Kind::List;
        return parseItems(out.items, "]", depth);
    }

    bool parseParen(PyValue& out, int depth) {
        ++pos_;
        out = PyValue{};
        out.kind = PyValue::Kind::Tuple;
        if (isOp(peek(), ")")) {
            ++pos_;
            return true;
        }
        PyValue first;
        if (!parseValue(first, depth + 1)) return false;
        if (isOp(peek(), ")")) {  // parentheses around one value make no tuple
            ++pos_;
            out = std::move(first);
            return true;
        }
        out.items.push_back(std::move(first));
        if (!isOp(peek(), ","))
            return fail(peek(), fmt::format("invalid syntax: expected ',' or ')', got {}", describe(peek())));
        if (!nextItem(")")) return !failed_;
        return parseItems(out.items, ")", depth);
    }

    bool parseBrace(PyValue& out, int depth) {
        const PyToken& open = peek();
        ++pos_;
        out = PyValue{};
        out.kind = PyValue::Kind::Dict;
        if (isOp(peek(), "}")) {
            ++pos_;
            return true;
        }
        std::unordered_map<std::string, std::size_t> seen;
        PyValue first;
        if (!parseValue(first, depth + 1)) return false;
        if (!isOp(peek(), ":")) {
            out.kind = PyValue::Kind::Set;
            if (!addUnique(out.items, seen, std::move(first), open)) return false;
            while (nextItem("}")) {
                PyValue item;
                if (!parseValue(item, depth + 1)) return false;
                if (!addUnique(out.items, seen, std::move(item), open)) return false;
            }
            return !failed_;
        }
        PyValue key = std::move(first);
        while (true) {
            ++pos_;  // ':'
            PyValue value;
            if (!parseValue(value, depth + 1)) return false;
            std::string hk;
            const char* unhashable = "";
            if (!hashKey(key, hk, unhashable))
                return fail(open, fmt::format("unhashable type: '{}' cannot be a dict key", unhashable));
            auto [it, inserted] = seen.emplace(std::move(hk), out.dict.size());
            if (inserted) {
                out.dict.emplace_back(std::move(key), std::move(value));
            } else {
                out.dict[it->second].second = std::move(value);  // Python: last value, first position
            }
            if (!nextItem("}")) return !failed_;
            key = PyValue{};
            if (!parseValue(key, depth + 1)) return false;
            if (!isOp(peek(), ":"))
                return fail(peek(), fmt::format("invalid syntax: expected ':' after a dict key, got {}",
                                                describe(peek())));
        }
    }

    bool addUnique(std::vector<PyValue>& items, std::unordered_map<std::string, std::size_t>& seen, PyValue v,
                   const PyToken& open) {
        std::string hk;
        const char* unhashable = "";
        if (!hashKey(v, hk, unhashable))
            return fail(open, fmt::format("unhashable type: '{}' cannot be in a set", unhashable));
        if (seen.emplace(std::move(hk), items.size()).second) items.push_back(std::move(v));
        return true;
    }

    const std::vector<PyToken>& tokens_;
    std::size_t pos_;
    bool failed_ = false;
    PySyntaxError error_;
};

}  // namespace

std::string PyValue::repr() const {
    std::string out;
    reprInto(*this, out);
    return out;
}

bool tokenizePython(std::string_view text, std::vector<PyToken>& tokens, PySyntaxError& error) {
    tokens.clear();
    Lexer lexer(text, tokens);
    return lexer.run(error);
}

std::optional<PyValue> parsePyLiteral(const std::vector<PyToken>& tokens, std::size_t& pos,
                                      PySyntaxError& error) {
    if (tokens.empty() || pos >= tokens.size()) {
        error.line = 0;
        error.message = "a value is missing";
        return std::nullopt;
    }
    Parser parser(tokens, pos);
    return parser.parseTop(error, pos);
}

std::optional<PyValue> parsePyLiteral(std::string_view text, PySyntaxError& error) {
    std::vector<PyToken> tokens;
    if (!tokenizePython(text, tokens, error)) return std::nullopt;
    std::size_t pos = 0;
    auto value = parsePyLiteral(tokens, pos, error);
    if (!value) return std::nullopt;
    while (tokens[pos].kind == PyToken::Kind::Newline) ++pos;
    if (tokens[pos].kind != PyToken::Kind::End) {
        error.line = tokens[pos].line;
        error.message = "invalid syntax: only one value is expected";
        return std::nullopt;
    }
    return value;
}

}  // namespace hub
