// SPDX-License-Identifier: BSD-3-Clause
// The Report of `hubd check`: its lines for people and its JSON for scripts.
#include <algorithm>

#include "app/json.h"
#include "check/check.h"

namespace hubd::check {
namespace {

const char* label(Status s) {
    switch (s) {
        case Status::Pass:
            return "PASS";
        case Status::Fail:
            return "FAIL";
        case Status::Warn:
            return "WARN";
        case Status::Skip:
            return "SKIP";
    }
    return "?";
}

// Found text comes partly from files and commands: one line, no controls.
std::string oneLine(std::string s) {
    for (char& c : s)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
    return s;
}

}  // namespace

void Report::add(Status s, std::string name, std::string found, std::string fix) {
    results_.push_back({s, std::move(name), oneLine(std::move(found)), oneLine(std::move(fix))});
}

bool Report::anyFailed() const {
    return std::any_of(results_.begin(), results_.end(),
                       [](const Result& r) { return r.status == Status::Fail; });
}

std::string Report::text() const {
    std::string out;
    for (const Result& r : results_) {
        out += std::string(label(r.status)) + "  " + r.name + ": " + r.found + "\n";
        if ((r.status == Status::Fail || r.status == Status::Warn) && !r.fix.empty())
            out += "      fix: " + r.fix + "\n";
    }
    return out;
}

std::string Report::json() const {
    std::string out;
    JsonWriter w(out);
    w.beginArray();
    for (const Result& r : results_) {
        w.beginObject().key("status").value(label(r.status)).key("name").value(r.name);
        w.key("found").value(r.found).key("fix").value(r.fix).endObject();
    }
    w.endArray();
    return out + "\n";
}

}  // namespace hubd::check
