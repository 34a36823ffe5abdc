// SPDX-License-Identifier: BSD-3-Clause
// RFC 4514 / RFC 4515 escaping and ldapauthenticator's "{name}" templates.
#include "hubcore/ldap_escape.h"

#include <fmt/format.h>

namespace hub::ldap {

namespace {

void appendHex(std::string& out, unsigned char c) {
    static constexpr char kHex[] = "0123456789abcdef";
    out += '\\';
    out += kHex[c >> 4];
    out += kHex[c & 0x0F];
}

}  // namespace

std::string escapeFilterValue(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        if (c == '*' || c == '(' || c == ')' || c == '\\' || c == '\0')
            appendHex(out, static_cast<unsigned char>(c));
        else
            out += c;
    }
    return out;
}

std::string escapeDnValue(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (size_t i = 0; i < value.size(); ++i) {
        const char c = value[i];
        const bool edgeSpace = c == ' ' && (i == 0 || i + 1 == value.size());
        if (c == '\0') {
            appendHex(out, 0);
        } else if (c == ',' || c == '+' || c == '"' || c == '\\' || c == '<' || c == '>' || c == ';' ||
                   c == '=' || edgeSpace || (c == '#' && i == 0)) {
            out += '\\';
            out += c;
        } else {
            out += c;
        }
    }
    return out;
}

std::optional<std::string> formatTemplate(std::string_view tmpl, const TemplateValues& values,
                                          std::string& error) {
    std::string out;
    for (size_t i = 0; i < tmpl.size(); ++i) {
        const char c = tmpl[i];
        if (c == '}') {
            if (i + 1 < tmpl.size() && tmpl[i + 1] == '}') {
                out += '}';
                ++i;
                continue;
            }
            error = "a single '}' must be written '}}'";
            return std::nullopt;
        }
        if (c != '{') {
            out += c;
            continue;
        }
        if (i + 1 < tmpl.size() && tmpl[i + 1] == '{') {
            out += '{';
            ++i;
            continue;
        }
        const size_t close = tmpl.find('}', i);
        if (close == std::string_view::npos) {
            error = "a '{' has no matching '}' (write '{{' for a literal brace)";
            return std::nullopt;
        }
        const std::string_view name = tmpl.substr(i + 1, close - i - 1);
        const std::pair<std::string_view, std::string>* found = nullptr;
        for (const auto& v : values)
            if (v.first == name) found = &v;
        if (!found) {
            std::string known;
            for (const auto& v : values) known += fmt::format("{}{{{}}}", known.empty() ? "" : ", ", v.first);
            error = fmt::format("unknown placeholder {{{}}}: only {} can be used", name, known);
            return std::nullopt;
        }
        out += found->second;
        i = close;
    }
    return out;
}

std::optional<std::string> userDn(std::string_view tmpl, std::string_view username, std::string& error) {
    return formatTemplate(tmpl, {{"username", escapeDnValue(username)}}, error);
}

std::optional<std::string> lookupFilter(std::string_view tmpl, std::string_view loginAttr,
                                        std::string_view login, std::string& error) {
    return formatTemplate(tmpl, {{"login_attr", std::string(loginAttr)}, {"login", escapeFilterValue(login)}},
                          error);
}

std::optional<std::string> userFilter(std::string_view tmpl, std::string_view userAttr,
                                      std::string_view username, std::string& error) {
    TemplateValues values{{"username", escapeFilterValue(username)}};
    if (!userAttr.empty()) values.emplace_back("userattr", std::string(userAttr));
    return formatTemplate(tmpl, values, error);
}

std::optional<std::string> groupFilter(std::string_view tmpl, std::string_view userDn, std::string_view uid,
                                       std::string& error) {
    return formatTemplate(tmpl, {{"userdn", escapeFilterValue(userDn)}, {"uid", escapeFilterValue(uid)}},
                          error);
}

bool blankPassword(std::string_view password) {
    for (char c : password)
        if (!(c == ' ' || (c >= '\t' && c <= '\r'))) return false;
    return true;
}

}  // namespace hub::ldap
