// SPDX-License-Identifier: BSD-3-Clause
// JupyterHub 3.0 scopes: expansion of roles into scopes with filters
// (!user=, !group=, !server=, !service=), intersection of a token's scopes
// with its owner's, and the access check used by every API route.
//
// MUST: a token never holds more than its owner; a filter never widens.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace hubd {

struct ScopeFilter {
    bool all = false;  // unfiltered
    std::set<std::string> users, groups, servers, services;

    bool empty() const {
        return !all && users.empty() && groups.empty() && servers.empty() && services.empty();
    }
    void merge(const ScopeFilter& other);
};

// scope name -> where it applies
using ScopeSet = std::map<std::string, ScopeFilter>;

// The owner of a set of scopes, to resolve "self", "!user", "!server", "!service".
struct ScopeOwner {
    enum class Kind { User, Service } kind = Kind::User;
    std::string name;
};

// True if name is a scope hubd knows (without filter).
bool isKnownScope(std::string_view name);
// Checks syntax and that the base scope exists; returns an error sentence.
std::optional<std::string> validateScope(std::string_view raw);

// Expands raw scopes (possibly with filters, "self", "inherit" is handled by
// the caller) including all subscopes.
ScopeSet expandScopes(const std::vector<std::string>& raw, const ScopeOwner& owner);
// A token's effective scopes: token ∩ owner. Group filters on one side
// against user filters on the other are resolved with groupsOfUser.
ScopeSet intersectScopes(const ScopeSet& token, const ScopeSet& owner,
                         const std::map<std::string, std::vector<std::string>>& groupsOfUser);
// "read:users!user=bob" strings, sorted.
std::vector<std::string> renderScopes(const ScopeSet& scopes);

// Built-in roles; nullptr if name isn't built in.
const std::vector<std::string>* builtinRoleScopes(std::string_view role);

struct Resource {
    std::string user;                 // user name the URL names, if any
    std::vector<std::string> groups;  // that user's groups
    std::string server;               // "user/servername" if any
    std::string service;
    std::string group;  // group name the URL names, if any
};

enum class ScopeVerdict { Allowed, Missing, FilteredOut };
// Any of `anyOf` applying to the resource allows. Missing = none held at all
// (403); FilteredOut = held but not for this resource (404).
ScopeVerdict checkScopes(const ScopeSet& held, const std::vector<std::string>& anyOf,
                         const Resource& resource);
bool appliesTo(const ScopeFilter& filter, const Resource& resource);
bool holds(const ScopeSet& held, std::string_view scope, const Resource& resource);
bool holdsUnfiltered(const ScopeSet& held, std::string_view scope);
// Holds every scope of the built-in admin role, unfiltered. Granting admin
// needs this, not just admin:users (CVE-2024-41942).
bool isFullAdmin(const ScopeSet& held);

}  // namespace hubd
