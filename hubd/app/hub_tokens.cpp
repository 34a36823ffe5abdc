// SPDX-License-Identifier: BSD-3-Clause
// A user's own API tokens: the checks, log line and audit line that
// POST/DELETE /hub/api/users/:name/tokens and the token page (/hub/token)
// share, so neither way in can issue or revoke what the other would refuse.
//
// MUST: the token itself never reaches a log or audit line; a token never
// holds a scope its owner lacks (JupyterHub 3.0 answers 400 for that).
#include <fmt/format.h>

#include <algorithm>

#include "app/api_call.h"
#include "app/hub.h"
#include "hubcore/audit.h"
#include "hubcore/log.h"
#include "hubcore/utf8.h"

namespace hubd {

namespace {

constexpr size_t kMaxNoteBytes = 1024;
constexpr double kMaxExpiresIn = 1e10;  // seconds, ~300 years: beyond it "never" is meant

// Notes are shown on the token page and in the API; control bytes (other
// than tab and line breaks) and broken UTF-8 have no business there.
std::optional<std::string> checkNote(std::string_view note) {
    if (note.size() > kMaxNoteBytes)
        return fmt::format("note is longer than {} characters: shorten it", kMaxNoteBytes);
    for (size_t i = 0; i < note.size();) {
        auto c = static_cast<unsigned char>(note[i]);
        if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f)
            return std::string("note contains control characters: use printable text");
        size_t len = hub::utf8SequenceLength(note, i);
        if (len == 0) return std::string("note is not valid UTF-8 text: use printable text");
        i += len;
    }
    return std::nullopt;
}

std::string joined(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& s : items) out += (out.empty() ? "" : " ") + s;
    return out;
}

}  // namespace

Hub::TokenOutcome Hub::requestUserToken(const hub::UserRecord& owner, TokenRequest request,
                                        const Principal& by, std::string_view source, std::string_view via) {
    TokenOutcome out;
    if (auto err = checkNote(request.note)) {
        out.error = *err;
        return out;
    }
    if (request.expiresIn && !(*request.expiresIn > 0 && *request.expiresIn <= kMaxExpiresIn)) {
        out.error = "expires_in must be a positive number of seconds";
        return out;
    }
    std::vector<std::string> scopes;
    for (const auto& s : request.scopes) {
        if (auto err = validateScope(s)) {
            out.error = *err;
            return out;
        }
        scopes.push_back(s);
    }
    for (const auto& r : request.roles) {
        const auto* role = builtinRoleScopes(r);
        if (!role) {
            out.error = "Unknown role " + hub::safe(r, 50);
            return out;
        }
        scopes.insert(scopes.end(), role->begin(), role->end());
    }
    if (request.note.empty())
        request.note = fmt::format("Requested via {} by {} {}", via,
                                   by.kind == Principal::Kind::Service ? "service" : "user", by.name);
    if (!scopes.empty() && std::find(scopes.begin(), scopes.end(), "inherit") == scopes.end()) {
        // The owner must hold everything requested (no escalation via tokens).
        ScopeOwner who{ScopeOwner::Kind::User, owner.name};
        ScopeSet requested = expandScopes(scopes, who);
        ScopeSet granted = intersectScopes(requested, userScopes(owner), groupMembership());
        if (renderScopes(requested) != renderScopes(granted)) {
            std::vector<std::string> missing;
            auto grantedList = renderScopes(granted);
            for (const auto& s : renderScopes(requested))
                if (std::find(grantedList.begin(), grantedList.end(), s) == grantedList.end())
                    missing.push_back(s);
            out.error =
                "Not assigning requested scopes " + scopeList(missing) + " not held by user " + owner.name;
            return out;
        }
    }
    out.issued = issueToken(owner.id, std::nullopt, request.note, std::move(scopes), request.expiresIn);
    const hub::TokenRecord& rec = out.issued->record;
    std::string id = "a" + std::to_string(rec.id);
    std::string expires = rec.expiresAt ? hub::isoUtc(*rec.expiresAt) : std::string("never");
    std::string scopeText = joined(rec.scopes);
    hub::logInfo("Issued token {} for {} by {} via {}", id, owner.name, by.name, via);
    hub::audit("token.create", {{"user", owner.name},
                                {"by", by.name},
                                {"source", source},
                                {"via", via},
                                {"token", id},
                                {"note", rec.note},
                                {"scopes", scopeText},
                                {"expires_at", expires}});
    return out;
}

bool Hub::revokeUserToken(const hub::UserRecord& owner, int64_t tokenId, const Principal& by,
                          std::string_view source, std::string_view via) {
    const hub::TokenRecord* t = findToken(tokenId);
    if (!t || t->userId != owner.id) return false;
    std::string client = t->clientId;
    int revoked = 0;
    if (client != "jupyterhub") {
        // Revoking an OAuth token revokes all of that client's tokens for the user (3.0).
        for (const auto& other : tokensOfUser(owner.id))
            if (other.clientId == client) {
                revokeToken(other.id);
                ++revoked;
            }
    } else {
        revokeToken(tokenId);
        revoked = 1;
    }
    std::string id = "a" + std::to_string(tokenId);
    hub::logInfo("Revoked token {} of {} ({} token(s) of client {}) by {} via {}", id, owner.name, revoked,
                 hub::safe(client, 100), by.name, via);
    hub::audit("token.revoke", {{"user", owner.name},
                                {"by", by.name},
                                {"source", source},
                                {"via", via},
                                {"token", id},
                                {"client", client},
                                {"count", std::to_string(revoked)}});
    return true;
}

}  // namespace hubd
