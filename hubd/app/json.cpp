// SPDX-License-Identifier: BSD-3-Clause
// JSON parsing and writing for the REST API.
#include "app/json.h"

#include "hubcore/utf8.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace hubd {

Json Json::boolean(bool b) {
    Json j;
    j.type_ = Type::Bool;
    j.bool_ = b;
    return j;
}

Json Json::number(double d) {
    Json j;
    j.type_ = Type::Number;
    j.number_ = d;
    return j;
}

Json Json::string(std::string s) {
    Json j;
    j.type_ = Type::String;
    j.string_ = std::move(s);
    return j;
}

Json Json::array() {
    Json j;
    j.type_ = Type::Array;
    return j;
}

Json Json::object() {
    Json j;
    j.type_ = Type::Object;
    return j;
}

const Json* Json::find(std::string_view key) const {
    for (const auto& [k, v] : members_)
        if (k == key) return &v;
    return nullptr;
}

void Json::set(std::string key, Json value) {
    for (auto& [k, v] : members_)
        if (k == key) {
            v = std::move(value);
            return;
        }
    members_.emplace_back(std::move(key), std::move(value));
}

namespace {

class Parser {
public:
    Parser(std::string_view text, int maxDepth) : s_(text), maxDepth_(maxDepth) {}

    std::optional<Json> parseDocument() {
        skipSpace();
        auto v = parseValue(0);
        if (!v) return std::nullopt;
        skipSpace();
        if (pos_ != s_.size()) return fail("unexpected data after the JSON value");
        return v;
    }

    JsonParseError error;

private:
    std::nullopt_t fail(std::string message) {
        if (error.message.empty()) {
            error.offset = pos_;
            error.message = std::move(message);
        }
        return std::nullopt;
    }

    void skipSpace() {
        while (pos_ < s_.size() &&
               (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
            ++pos_;
    }

    bool literal(std::string_view word) {
        if (s_.substr(pos_, word.size()) != word) return false;
        pos_ += word.size();
        return true;
    }

    std::optional<Json> parseValue(int depth) {
        if (depth > maxDepth_) return fail("JSON nested too deeply");
        if (pos_ >= s_.size()) return fail("unexpected end of JSON");
        char c = s_[pos_];
        if (c == '{') return parseObject(depth);
        if (c == '[') return parseArray(depth);
        if (c == '"') {
            auto str = parseString();
            if (!str) return std::nullopt;
            return Json::string(std::move(*str));
        }
        if (c == 't' && literal("true")) return Json::boolean(true);
        if (c == 'f' && literal("false")) return Json::boolean(false);
        if (c == 'n' && literal("null")) return Json();
        if (c == '-' || (c >= '0' && c <= '9')) return parseNumber();
        return fail("invalid JSON value");
    }

    std::optional<Json> parseNumber() {
        size_t start = pos_;
        if (s_[pos_] == '-') ++pos_;
        if (pos_ >= s_.size()) return fail("invalid number");
        if (s_[pos_] == '0') {
            ++pos_;
        } else if (s_[pos_] >= '1' && s_[pos_] <= '9') {
            while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) ++pos_;
        } else {
            return fail("invalid number");
        }
        if (pos_ < s_.size() && s_[pos_] == '.') {
            ++pos_;
            size_t digits = pos_;
            while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) ++pos_;
            if (pos_ == digits) return fail("invalid number");
        }
        if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
            ++pos_;
            if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
            size_t digits = pos_;
            while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) ++pos_;
            if (pos_ == digits) return fail("invalid number");
        }
        if (pos_ - start > 64) return fail("number too long");
        std::string copy(s_.substr(start, pos_ - start));
        double d = std::strtod(copy.c_str(), nullptr);
        if (!std::isfinite(d)) return fail("number out of range");
        return Json::number(d);
    }

    std::optional<uint32_t> hex4() {
        if (pos_ + 4 > s_.size()) return std::nullopt;
        uint32_t v = 0;
        for (int i = 0; i < 4; ++i) {
            char c = s_[pos_++];
            v <<= 4;
            if (c >= '0' && c <= '9')
                v |= static_cast<uint32_t>(c - '0');
            else if (c >= 'a' && c <= 'f')
                v |= static_cast<uint32_t>(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F')
                v |= static_cast<uint32_t>(c - 'A' + 10);
            else
                return std::nullopt;
        }
        return v;
    }

    std::optional<std::string> parseString() {
        ++pos_;  // opening quote
        std::string out;
        while (true) {
            if (pos_ >= s_.size()) {
                fail("unterminated string");
                return std::nullopt;
            }
            unsigned char c = static_cast<unsigned char>(s_[pos_]);
            if (c == '"') {
                ++pos_;
                return out;
            }
            if (c < 0x20) {
                fail("control character in string");
                return std::nullopt;
            }
            if (c == '\\') {
                ++pos_;
                if (pos_ >= s_.size()) break;
                char e = s_[pos_++];
                switch (e) {
                    case '"':
                        out += '"';
                        break;
                    case '\\':
                        out += '\\';
                        break;
                    case '/':
                        out += '/';
                        break;
                    case 'b':
                        out += '\b';
                        break;
                    case 'f':
                        out += '\f';
                        break;
                    case 'n':
                        out += '\n';
                        break;
                    case 'r':
                        out += '\r';
                        break;
                    case 't':
                        out += '\t';
                        break;
                    case 'u': {
                        auto cp = hex4();
                        if (!cp) {
                            fail("invalid \\u escape");
                            return std::nullopt;
                        }
                        uint32_t code = *cp;
                        if (code >= 0xD800 && code <= 0xDBFF) {
                            if (!literal("\\u")) {
                                fail("unpaired surrogate");
                                return std::nullopt;
                            }
                            auto lo = hex4();
                            if (!lo || *lo < 0xDC00 || *lo > 0xDFFF) {
                                fail("unpaired surrogate");
                                return std::nullopt;
                            }
                            code = 0x10000 + ((code - 0xD800) << 10) + (*lo - 0xDC00);
                        } else if (code >= 0xDC00 && code <= 0xDFFF) {
                            fail("unpaired surrogate");
                            return std::nullopt;
                        }
                        hub::appendUtf8(out, code);
                        break;
                    }
                    default:
                        fail("invalid escape");
                        return std::nullopt;
                }
                continue;
            }
            size_t n = hub::utf8SequenceLength(s_, pos_);
            if (n == 0) {
                fail("invalid UTF-8 in string");
                return std::nullopt;
            }
            out.append(s_.substr(pos_, n));
            pos_ += n;
        }
        fail("unterminated string");
        return std::nullopt;
    }

    std::optional<Json> parseArray(int depth) {
        ++pos_;
        Json arr = Json::array();
        skipSpace();
        if (pos_ < s_.size() && s_[pos_] == ']') {
            ++pos_;
            return arr;
        }
        while (true) {
            skipSpace();
            auto v = parseValue(depth + 1);
            if (!v) return std::nullopt;
            arr.push(std::move(*v));
            skipSpace();
            if (pos_ >= s_.size()) return fail("unterminated array");
            if (s_[pos_] == ',') {
                ++pos_;
                continue;
            }
            if (s_[pos_] == ']') {
                ++pos_;
                return arr;
            }
            return fail("expected ',' or ']'");
        }
    }

    std::optional<Json> parseObject(int depth) {
        ++pos_;
        Json obj = Json::object();
        skipSpace();
        if (pos_ < s_.size() && s_[pos_] == '}') {
            ++pos_;
            return obj;
        }
        while (true) {
            skipSpace();
            if (pos_ >= s_.size() || s_[pos_] != '"') return fail("expected a string key");
            auto key = parseString();
            if (!key) return std::nullopt;
            if (obj.find(*key)) return fail("duplicate key \"" + *key + "\"");
            skipSpace();
            if (pos_ >= s_.size() || s_[pos_] != ':') return fail("expected ':'");
            ++pos_;
            skipSpace();
            auto v = parseValue(depth + 1);
            if (!v) return std::nullopt;
            obj.set(std::move(*key), std::move(*v));
            skipSpace();
            if (pos_ >= s_.size()) return fail("unterminated object");
            if (s_[pos_] == ',') {
                ++pos_;
                continue;
            }
            if (s_[pos_] == '}') {
                ++pos_;
                return obj;
            }
            return fail("expected ',' or '}'");
        }
    }

    std::string_view s_;
    size_t pos_ = 0;
    int maxDepth_;
};

}  // namespace

std::optional<Json> parseJson(std::string_view text, JsonParseError* error, int maxDepth) {
    Parser p(text, maxDepth);
    auto v = p.parseDocument();
    if (!v && error) *error = p.error;
    return v;
}

void appendJsonString(std::string& out, std::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    out += '"';
    size_t run = 0;
    for (size_t i = 0; i < s.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        // '<' and '>' are escaped so JSON can never close a <script> or
        // open markup if a browser sniffs it.
        if (c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != 0x7f) continue;
        out.append(s.substr(run, i - run));
        run = i + 1;
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            default:
                out += "\\u00";
                out += kHex[c >> 4];
                out += kHex[c & 15];
        }
    }
    out.append(s.substr(run));
    out += '"';
}

void JsonWriter::separate() {
    if (afterKey_) {
        afterKey_ = false;
        return;
    }
    if (!first_.empty()) {
        if (!first_.back()) out_ += ',';
        first_.back() = false;
    }
}

JsonWriter& JsonWriter::beginObject() {
    separate();
    out_ += '{';
    first_.push_back(true);
    return *this;
}

JsonWriter& JsonWriter::endObject() {
    out_ += '}';
    first_.pop_back();
    return *this;
}

JsonWriter& JsonWriter::beginArray() {
    separate();
    out_ += '[';
    first_.push_back(true);
    return *this;
}

JsonWriter& JsonWriter::endArray() {
    out_ += ']';
    first_.pop_back();
    return *this;
}

JsonWriter& JsonWriter::key(std::string_view k) {
    separate();
    appendJsonString(out_, k);
    out_ += ':';
    afterKey_ = true;
    return *this;
}

JsonWriter& JsonWriter::value(std::string_view s) {
    separate();
    appendJsonString(out_, s);
    return *this;
}

JsonWriter& JsonWriter::value(bool b) {
    separate();
    out_ += b ? "true" : "false";
    return *this;
}

JsonWriter& JsonWriter::value(int64_t n) {
    separate();
    out_ += std::to_string(n);
    return *this;
}

JsonWriter& JsonWriter::value(double d) {
    separate();
    if (!std::isfinite(d)) {
        out_ += "null";
    } else if (d == std::floor(d) && std::fabs(d) < 1e15) {
        out_ += std::to_string(static_cast<int64_t>(d));
    } else {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.17g", d);
        out_ += buf;
    }
    return *this;
}

JsonWriter& JsonWriter::null() {
    separate();
    out_ += "null";
    return *this;
}

JsonWriter& JsonWriter::raw(std::string_view json) {
    separate();
    out_ += json;
    return *this;
}

JsonWriter& JsonWriter::stringArray(const std::vector<std::string>& items) {
    beginArray();
    for (const auto& s : items) value(s);
    return endArray();
}

JsonWriter& JsonWriter::value(const Json& j) {
    switch (j.type()) {
        case Json::Type::Null:
            return null();
        case Json::Type::Bool:
            return value(j.asBool());
        case Json::Type::Number:
            return value(j.asNumber());
        case Json::Type::String:
            return value(j.asString());
        case Json::Type::Array:
            beginArray();
            for (const auto& item : j.items()) value(item);
            return endArray();
        case Json::Type::Object:
            beginObject();
            for (const auto& [k, v] : j.members()) {
                key(k);
                value(v);
            }
            return endObject();
    }
    return *this;
}

std::string toJson(const Json& j) {
    std::string out;
    JsonWriter(out).value(j);
    return out;
}

}  // namespace hubd
