// SPDX-License-Identifier: BSD-3-Clause
#include "hubcore/idle_culler_command.h"

#include <algorithm>
#include <charconv>
#include <sstream>

#include <fmt/format.h>

namespace hub {
namespace {

std::vector<std::string> words(const std::vector<std::string>& command) {
    std::vector<std::string> out;
    for (const auto& item : command) {
        std::istringstream in(item);
        for (std::string w; in >> w;) out.push_back(w);
    }
    return out;
}

// `python3 -m jupyterhub_idle_culler` or a script named after it.
bool namesCuller(std::string_view word) {
    if (auto slash = word.rfind('/'); slash != std::string_view::npos) word.remove_prefix(slash + 1);
    return word == "jupyterhub_idle_culler" || word == "jupyterhub-idle-culler";
}

// tornado's bool option: anything but false/0/f (any case) is true.
bool tornadoBool(std::string_view value) {
    std::string v(value);
    std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
    return v != "false" && v != "0" && v != "f";
}

}  // namespace

std::optional<IdleCullerCommand> readIdleCullerCommand(const std::vector<std::string>& command) {
    const auto w = words(command);
    auto at = std::find_if(w.begin(), w.end(), [](const std::string& s) { return namesCuller(s); });
    if (at == w.end()) return std::nullopt;
    IdleCullerCommand out;
    out.settings.timeout = 600;  // the culler's default --timeout
    for (auto it = at + 1; it != w.end(); ++it) {
        const std::string& word = *it;
        if (word.rfind("--", 0) != 0) {
            out.ignored.push_back(word);
            continue;
        }
        std::string name = word.substr(2, word.find('=') - 2);
        std::replace(name.begin(), name.end(), '_', '-');
        const bool hasValue = word.find('=') != std::string::npos;
        const std::string value = hasValue ? word.substr(word.find('=') + 1) : std::string();
        auto seconds = [&](int64_t& field) {
            int64_t n = -1;
            auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
            if (!hasValue || ec != std::errc() || end != value.data() + value.size() || n < 0)
                out.problems.push_back(
                    fmt::format("{} needs a whole number of seconds, written --{}=N", word, name));
            else
                field = n;
        };
        if (name == "timeout") {
            seconds(out.settings.timeout);
        } else if (name == "max-age") {
            seconds(out.settings.maxAge);
        } else if (name == "cull-every") {
            seconds(out.settings.cullEvery);
        } else if (name == "cull-users") {
            out.settings.cullUsers = !hasValue || tornadoBool(value);
        } else if (name == "cull-admin-users") {
            out.settings.cullAdminUsers = !hasValue || tornadoBool(value);
        } else {
            out.ignored.push_back(word);  // --url, --concurrency, --ssl-enabled, ...: the hub needs none
        }
    }
    return out;
}

}  // namespace hub
