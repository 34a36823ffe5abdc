// SPDX-License-Identifier: BSD-3-Clause
// The API's JSON parser and writer: strictness and escaping.
#include "app/json.h"

#include <doctest/doctest.h>

using hubd::Json;
using hubd::JsonWriter;
using hubd::parseJson;

TEST_CASE("parses the request bodies the API accepts") {
    auto v = parseJson(R"({"usernames": ["a", "b"], "admin": true, "n": -1.5e2, "x": null})");
    REQUIRE(v);
    REQUIRE(v->isObject());
    CHECK(v->find("usernames")->items().size() == 2);
    CHECK(v->find("admin")->asBool());
    CHECK(v->find("n")->asNumber() == -150);
    CHECK(v->find("x")->isNull());
    CHECK(parseJson(R"("\u00e9\ud83d\ude00")")->asString() == "\xc3\xa9\xf0\x9f\x98\x80");
}

TEST_CASE("rejects malformed and hostile JSON") {
    const char* bad[] = {"",          "{",
                         "[1,]",      "{\"a\":1,}",
                         "{'a':1}",   "01",
                         "1.",        "-",
                         "nul",       "[1] [2]",
                         "\"\\x41\"", "\"\\ud800\"",
                         "\"a\nb\"",  "{\"a\":1,\"a\":2}",
                         "\"\xff\"",  "\"\xc0\xaf\"",
                         "1e999",     "/* c */ 1",
                         "NaN"};
    for (const char* text : bad) {
        hubd::JsonParseError err;
        CHECK_MESSAGE(!parseJson(text, &err), text);
        CHECK(!err.message.empty());
    }
    std::string deep(10000, '[');
    CHECK(!parseJson(deep));
    std::string ok = std::string(30, '[') + std::string(30, ']');
    CHECK(parseJson(ok));
}

TEST_CASE("writer escapes strings so they cannot break out") {
    std::string out;
    JsonWriter w(out);
    w.beginObject().key("name").value(std::string_view("a\"b\\c\n</script>\x01", 16)).key("n").value(3);
    w.key("list").stringArray({"x", "y"}).key("z").null().endObject();
    CHECK(out == R"({"name":"a\"b\\c\n\u003c/script\u003e\u0001","n":3,"list":["x","y"],"z":null})");
    auto back = parseJson(out);
    REQUIRE(back);
    CHECK(back->find("name")->asString() == std::string("a\"b\\c\n</script>\x01"));
}

TEST_CASE("writer separates nested containers") {
    std::string out;
    JsonWriter w(out);
    w.beginArray().beginObject().key("a").beginArray().value(1).value(2).endArray().endObject();
    w.beginObject().endObject().endArray();
    CHECK(out == R"([{"a":[1,2]},{}])");
}
