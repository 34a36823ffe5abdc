// SPDX-License-Identifier: BSD-3-Clause
// A small JSON value, a strict bounded parser for request bodies, and a
// fast writer for responses (the API's hot path builds large user lists).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hubd {

class Json {
public:
    enum class Type { Null, Bool, Number, String, Array, Object };

    Json() = default;
    static Json boolean(bool b);
    static Json number(double d);
    static Json string(std::string s);
    static Json array();
    static Json object();

    Type type() const { return type_; }
    bool isNull() const { return type_ == Type::Null; }
    bool isBool() const { return type_ == Type::Bool; }
    bool isNumber() const { return type_ == Type::Number; }
    bool isString() const { return type_ == Type::String; }
    bool isArray() const { return type_ == Type::Array; }
    bool isObject() const { return type_ == Type::Object; }

    bool asBool() const { return bool_; }
    double asNumber() const { return number_; }
    const std::string& asString() const { return string_; }
    const std::vector<Json>& items() const { return items_; }
    // Object members in document order; duplicate keys are rejected by the parser.
    const std::vector<std::pair<std::string, Json>>& members() const { return members_; }
    const Json* find(std::string_view key) const;

    void push(Json value) { items_.push_back(std::move(value)); }
    void set(std::string key, Json value);

private:
    Type type_ = Type::Null;
    bool bool_ = false;
    double number_ = 0;
    std::string string_;
    std::vector<Json> items_;
    std::vector<std::pair<std::string, Json>> members_;
};

struct JsonParseError {
    size_t offset = 0;
    std::string message;
};

// RFC 8259, strictly: no trailing commas, no comments, valid UTF-8 only,
// nesting at most maxDepth, no duplicate object keys.
std::optional<Json> parseJson(std::string_view text, JsonParseError* error = nullptr, int maxDepth = 32);

// Appends JSON to a string without building a tree.
class JsonWriter {
public:
    explicit JsonWriter(std::string& out) : out_(out) {}
    JsonWriter& beginObject();
    JsonWriter& endObject();
    JsonWriter& beginArray();
    JsonWriter& endArray();
    JsonWriter& key(std::string_view k);
    JsonWriter& value(std::string_view s);
    JsonWriter& value(const char* s) { return value(std::string_view(s)); }
    JsonWriter& value(const std::string& s) { return value(std::string_view(s)); }
    JsonWriter& value(bool b);
    JsonWriter& value(int64_t n);
    JsonWriter& value(int n) { return value(static_cast<int64_t>(n)); }
    JsonWriter& value(double d);
    JsonWriter& null();
    JsonWriter& value(const Json& j);
    JsonWriter& stringArray(const std::vector<std::string>& items);
    // Inserts pre-serialised JSON.
    JsonWriter& raw(std::string_view json);

private:
    void separate();
    std::string& out_;
    // true = first element in the current container not written yet
    std::vector<bool> first_;
    bool afterKey_ = false;
};

void appendJsonString(std::string& out, std::string_view s);
std::string toJson(const Json& j);

}  // namespace hubd
